//! The topology behind `--topology NAME`, its type erased: the CLI runs every
//! app on it (docs/adr/0009-open-topologies.md).

use std::any::{Any, TypeId};

use crate::BoxFuture;
use crate::capability::IsCapability;
use crate::lock::{Attempt, Holder, LockError};
use crate::topology::{SelectableTopology, Topology};

/// The topology behind `--topology NAME`, its type erased: the CLI runs every
/// app on it. It implements every capability by handing each call to the
/// selected topology; the CLI refuses an app whose needs the topology does not
/// meet before running anything, so a call never reaches a capability the
/// topology lacks.
pub struct AnyTopology {
    name: &'static str,
    topology: Box<dyn Any + Send + Sync>,
    as_topology: for<'a> fn(&'a (dyn Any + Send + Sync)) -> &'a dyn Topology,
    provides: Vec<Provided>,
}

impl std::fmt::Debug for AnyTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyTopology")
            .field("name", &self.name)
            .field("provides", &self.capabilities())
            .finish_non_exhaustive()
    }
}

impl AnyTopology {
    /// `topology`, reached through the capabilities `provides` lists (what
    /// [`topology!`](crate::topology!) found for its type).
    pub fn new<T: SelectableTopology>(topology: T, provides: Vec<Provided>) -> Self {
        Self {
            name: T::NAME,
            topology: Box::new(topology),
            as_topology: |t| t.downcast_ref::<T>().expect("holds a `T`"),
            provides,
        }
    }

    /// Whether it provides capability `C`.
    pub fn provides<C: ?Sized + IsCapability + 'static>(&self) -> bool {
        self.provides.iter().any(|p| p.capability == TypeId::of::<C>())
    }

    /// The names of the capabilities it provides.
    pub fn capabilities(&self) -> Vec<&'static str> {
        self.provides.iter().map(|p| p.name).collect()
    }

    /// The selected topology's implementation of capability `C`.
    ///
    /// # Panics
    /// If the topology does not provide `C`. The CLI compares an app's needs
    /// with the topology's capabilities before it runs anything, and a Score's
    /// needs are its bounds, so no run reaches this.
    pub fn capability<C: ?Sized + IsCapability + 'static>(&self) -> &C {
        self.provides
            .iter()
            .find(|p| p.capability == TypeId::of::<C>())
            .and_then(|p| p.cast.downcast_ref::<Cast<C>>())
            .and_then(|cast| cast(&*self.topology))
            .unwrap_or_else(|| {
                panic!(
                    "topology `{}` does not provide capability `{}`, yet a run asked for it: the needs checked before the run missed it (a bug in harmony)",
                    self.name,
                    C::NAME
                )
            })
    }
}

impl Topology for AnyTopology {
    fn name(&self) -> &str {
        self.name
    }

    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        (self.as_topology)(&*self.topology).try_lock(app, me)
    }
}

/// How [`AnyTopology`] reaches capability `C` of the topology it holds.
type Cast<C> = for<'a> fn(&'a (dyn Any + Send + Sync)) -> Option<&'a C>;

/// One capability a registered topology provides.
pub struct Provided {
    /// The capability's name.
    pub name: &'static str,
    capability: TypeId,
    /// A `Cast<C>`.
    cast: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Provided {
    /// Capability `C`, reached through `cast` (which downcasts to the
    /// topology's type; see [`topology!`](crate::topology!)).
    pub fn new<C: ?Sized + IsCapability + 'static>(cast: Cast<C>) -> Self {
        Self {
            name: C::NAME,
            capability: TypeId::of::<C>(),
            cast: Box::new(cast),
        }
    }
}
