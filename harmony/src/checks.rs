//! Functions whose only work is their bounds: `app!` and `#[derive(Score)]`
//! call them so that a pairing the types refuse is a compile error at the
//! user's token. Named here, in a public module, because rustc's notes name
//! them ("required by a bound in `harmony::checks::runs_on`").

use crate::capability::{IsCapability, K8sDeploy};
use crate::release::pipeline::StageSmoke;
use crate::release::{ContainerBuilder, ContinuousDelivery, HelmRegistry, OciRegistry};
use crate::score::{IsScore, Score};
use crate::topology::SelectableTopology;

/// Fails to compile unless `make` makes a Score.
pub fn score_of<S: IsScore>(_make: impl Fn() -> S) {}

/// Fails to compile, naming the missing capability, unless the app's Score
/// runs on topology `T`: `app! { topologies: [T] }`.
pub fn runs_on<T, S>(_make: impl Fn() -> S)
where
    T: SelectableTopology + K8sDeploy,
    S: Score<T>,
{
}

/// Fails to compile, naming the missing capability, unless topology `T` can
/// release an app smoke-tested by `S`: `app! { topologies: [T], image: .. }`.
pub fn releases_on<T, S>()
where
    T: SelectableTopology + ContainerBuilder + OciRegistry + HelmRegistry + ContinuousDelivery,
    S: StageSmoke<T>,
{
}

/// What `requires(..)` takes: a capability trait. One impl, for every
/// `IsCapability`, kept out of rustc's "other types implement" lists, so that
/// the error does not list every capability there is.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a capability",
    label = "`requires(..)` takes capability traits only",
    note = "a capability is a trait declared with `#[harmony::capability]`, such as `K8sDeploy` or `K8sClient`; the generated CLI's `list` shows them all",
    note = "to make a trait of yours a capability, put `#[harmony::capability]` above it"
)]
pub trait Capability {
    const NAME: &'static str;
}

#[diagnostic::do_not_recommend]
impl<C: ?Sized + IsCapability> Capability for C {
    const NAME: &'static str = C::NAME;
}

/// The name of capability `C`; fails to compile unless `C` is one.
pub const fn capability_name<C: ?Sized + Capability>() -> &'static str {
    C::NAME
}
