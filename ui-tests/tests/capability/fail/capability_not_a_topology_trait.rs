// A capability is provided by topologies: a trait without `Topology` as a supertrait is refused.
/// Provides DNS.
#[harmony::capability]
pub trait Dns {
    fn zone(&self) -> &str;
}

fn main() {}
