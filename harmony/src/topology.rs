//! Where Scores run. A topology provides capabilities (see [`crate::capability`](mod@crate::capability));
//! which ones it provides decides, at compile time, which Scores it accepts.

use crate::BoxFuture;
use crate::lock::{Attempt, Holder, LockError};

/// A place Scores run on: a local workspace, a CI runner, a cluster.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a topology",
    label = "expected a topology here",
    note = "a topology is where Scores run: use one such as `harmony::Local`, or, if `{Self}` is a type of your own meant to be one, implement `harmony::Topology` for it",
    note = "a function given the topology (a `smoke = ..` test) takes it by reference: `topology: &T`"
)]
pub trait Topology: Send + Sync + 'static {
    /// The name users select it by (`--topology local`).
    fn name(&self) -> &str;

    /// Try to take this target's lock for `app`, so that no other apply or
    /// release of it runs meanwhile (see [`crate::lock`]). The default suits a
    /// topology with nothing two runs could both write: the lock is always free.
    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        let _ = (app, me);
        Box::pin(async { Ok(Attempt::free()) })
    }
}

/// A topology the CLI can select by name (`--topology NAME`) and set up from
/// the environment. Register it with [`topology!`](crate::topology!), next to
/// its type, in any crate the binary links.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a topology the CLI can select",
    label = "`topologies: [..]` takes topologies the generated CLI can select and set up",
    note = "the CLI sets up each topology from the environment: list one such as `harmony::Local`, or, if `{Self}` is a type of your own, implement `harmony::SelectableTopology` for it and register it with `harmony::topology!({Self});`"
)]
pub trait SelectableTopology: Topology + Sized {
    /// The name after `--topology`.
    const NAME: &'static str;
    /// One line on what it is for, shown by `list`.
    const ABOUT: &'static str;
    /// Build it from the process environment; a missing or bad setting is an
    /// error that names it.
    fn from_env() -> Result<Self, TopologyError>;
}

/// Register a topology so that the generated CLI lists it with the
/// capabilities it implements and can run apps on it (`--topology NAME`).
///
/// ```ignore
/// impl harmony::SelectableTopology for Edge { /* NAME, ABOUT, from_env */ }
/// harmony::topology!(Edge);
/// // Capabilities declared outside harmony that `Edge` implements are named
/// // after it (the compiler checks the claim):
/// harmony::topology!(Edge, DnsRecords);
/// ```
///
/// The capabilities harmony ships are found by themselves, from the trait
/// impls: nothing is typed by hand. A capability of your own must be named,
/// because a declaration cannot see traits declared in crates it does not
/// depend on (see `docs/adr/0009-open-topologies.md`).
#[macro_export]
macro_rules! topology {
    ($ty:ty $(, $cap:path)* $(,)?) => {
        const _: () = {
            fn __harmony_provides() -> $crate::__private::Vec<$crate::engine::any_topology::Provided> {
                #[allow(unused_mut)]
                let mut provided = $crate::__private::shipped_capabilities!($ty);
                $(
                    provided.push($crate::engine::any_topology::Provided::new::<dyn $cap>(|t| {
                        t.downcast_ref::<$ty>().map(|t| t as &dyn $cap)
                    }));
                )*
                provided
            }
            fn __harmony_connect() -> ::core::result::Result<$crate::engine::any_topology::AnyTopology, $crate::topology::TopologyError> {
                let topology = <$ty as $crate::topology::SelectableTopology>::from_env()?;
                ::core::result::Result::Ok($crate::engine::any_topology::AnyTopology::new(topology, __harmony_provides()))
            }
            $crate::__private::inventory::submit! {
                $crate::engine::registry::TopologyEntry {
                    name: <$ty as $crate::topology::SelectableTopology>::NAME,
                    type_name: ::core::stringify!($ty),
                    about: <$ty as $crate::topology::SelectableTopology>::ABOUT,
                    provides: __harmony_provides,
                    connect: __harmony_connect,
                }
            }
        };
    };
}

pub use crate::errors::TopologyError;
