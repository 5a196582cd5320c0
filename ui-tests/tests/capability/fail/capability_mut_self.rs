// `&mut self` in a capability: topologies are shared.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    fn publish(&mut self, name: &str);
}

fn main() {}
