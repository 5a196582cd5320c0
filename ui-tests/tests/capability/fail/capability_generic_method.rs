// A generic method in a capability.
use harmony::Topology;
use harmony::capability::BoxFuture;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    fn publish<N: AsRef<str>>(&self, name: N) -> BoxFuture<'_, ()>;
}

fn main() {}
