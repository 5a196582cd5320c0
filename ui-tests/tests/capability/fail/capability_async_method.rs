// An `async fn` in a capability: capabilities are called through `dyn`, so it says to return a `BoxFuture`.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    async fn publish(&self, name: &str);
}

fn main() {}
