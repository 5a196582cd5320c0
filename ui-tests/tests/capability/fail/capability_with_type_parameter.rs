// A capability with a type parameter cannot be called through `dyn`.
use harmony::Topology;

/// Provides records of one kind.
#[harmony::capability]
pub trait Records<R>: Topology {
    fn count(&self) -> usize;
}

fn main() {}
