// An associated constant in a capability.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    const TTL: u32;
    fn zone(&self) -> &str;
}

fn main() {}
