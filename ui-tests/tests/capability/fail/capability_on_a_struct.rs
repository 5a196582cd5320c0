// `#[harmony::capability]` on a struct: it goes on a trait.
/// Provides DNS.
#[harmony::capability]
pub struct Dns {
    pub zone: String,
}

fn main() {}
