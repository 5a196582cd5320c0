// A capability without a `///` line: `list` and `explain` show that line, so it is required.
use harmony::Topology;

#[harmony::capability]
pub trait Dns: Topology {
    fn zone(&self) -> &str;
}

fn main() {}
