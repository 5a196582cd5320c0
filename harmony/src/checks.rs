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

/// What a `smoke = ..` function must be: an async fn of the Score and the
/// topology. `#[derive(Score)]` calls it through this trait, so a function of
/// another shape is one error, at the `smoke = ..` path, in these words.
#[diagnostic::on_unimplemented(
    message = "`smoke = ..` must name an `async fn(&self, topology: &T) -> Result<(), SmokeError>`",
    label = "this is `{Self}`",
    note = "a smoke test runs after the deploy, with the Score and the topology, and returns `Ok(())` once what was deployed works",
    note = "for example: `async fn ping<T: harmony::K8sClient>(&self, topology: &T) -> Result<(), harmony::SmokeError>`"
)]
pub trait SmokeTest<'a, S: ?Sized, T: ?Sized> {
    fn call(self, score: &'a S, topology: &'a T) -> crate::BoxFuture<'a, Result<(), crate::SmokeError>>;
}

// `do_not_recommend`: a mismatch reports the message above rather than the
// closure-signature details behind it.
#[diagnostic::do_not_recommend]
impl<'a, S, T, F, Test> SmokeTest<'a, S, T> for F
where
    S: ?Sized + 'a,
    T: ?Sized + 'a,
    F: FnOnce(&'a S, &'a T) -> Test,
    Test: std::future::Future<Output = Result<(), crate::SmokeError>> + Send + 'a,
{
    fn call(self, score: &'a S, topology: &'a T) -> crate::BoxFuture<'a, Result<(), crate::SmokeError>> {
        Box::pin(self(score, topology))
    }
}
