// `#[harmony::capability(..)]` takes only `crate = path`.
use harmony::Topology;

/// Provides DNS.
#[harmony::capability(name = "dns")]
pub trait Dns: Topology {
    fn zone(&self) -> &str;
}

fn main() {}
