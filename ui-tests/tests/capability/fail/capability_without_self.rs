// A capability method without `&self`.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability]
pub trait Dns: Topology {
    fn default_zone() -> String;
}

fn main() {}
