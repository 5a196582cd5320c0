// An associated type in a capability.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    type Record;
    fn zone(&self) -> &str;
}

fn main() {}
