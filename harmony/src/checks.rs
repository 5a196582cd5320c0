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

/// What a `#[score(secret)]` field must be: a [`Secret`](crate::Secret),
/// whose `Debug` and `Serialize` never print the value. Checked by type, not
/// by name: another type called `Secret` (a Kubernetes `Secret` object, say)
/// prints its data.
#[diagnostic::on_unimplemented(
    message = "a `secret` field must have type `harmony::Secret<_>`, which never prints its value",
    label = "`{Self}` is not `harmony::Secret<_>`",
    note = "`#[score(secret)]` promises that the value never reaches a plan, a log or an error; only `harmony::Secret<_>` keeps that promise",
    note = "wrap the value: `harmony::Secret<String>`; a Kubernetes `Secret` object is rendered by the Score, from `harmony::Secret<_>` fields"
)]
pub trait SecretField {}

impl<T> SecretField for crate::Secret<T> {}

/// An optional secret keeps the promise too.
impl<T> SecretField for Option<crate::Secret<T>> {}

/// A Score is deployed from any thread, so each of its type parameters is
/// `Send + Sync`. One trait for both, so that a type that is neither (an
/// `Rc`) is one error, in these words, where the Score is used.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a Score's type parameter: it is not `Send + Sync`",
    label = "not `Send + Sync`",
    note = "a Score is deployed from any thread, so each of its type parameters must be `Send + Sync`",
    note = "use a thread-safe type: `Arc` for `Rc`, a `Mutex` or an atomic for `Cell` and `RefCell`"
)]
pub trait ThreadSafe: Send + Sync {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Send + Sync> ThreadSafe for T {}

/// Fails to compile unless `F` is a [`Secret`](crate::Secret).
pub fn secret_field<F: ?Sized + SecretField>() {}

/// A Score with `#[score(child)]` fields deploys its children, and only them:
/// an `impl Render` of its own would never run. `#[derive(Score)]` implements
/// this trait for every such Score, so that one that also implements `Render`
/// is a compile error: "conflicting implementations of trait
/// `ScoreWithChildrenHasNoRenderOfItsOwn`". Move what it renders into a child
/// Score, or drop the `child` fields.
pub trait ScoreWithChildrenHasNoRenderOfItsOwn {}

impl<S: ?Sized + crate::score::Render> ScoreWithChildrenHasNoRenderOfItsOwn for S {}

// Whether an app's Score runs on a built-in topology, asked by `app!` when it
// names no `topologies:`. Autoref specialization picks the first that holds:
// `Local` (on `&&&Placement`), `Ci` (on `&&Placement`), the deprecated
// fallback whose note is the warning (on `&Placement`), and, for what is not
// a Score at all (an error `score_of` reports), nothing more.

/// The Score an app's `score:` makes, asked where it runs.
#[derive(Debug)]
pub struct Placement<F>(pub F);

pub trait RunsOnLocal {
    fn runs_on_a_topology(&self) {}
}

impl<F, S> RunsOnLocal for &&&Placement<F>
where
    F: Fn() -> S,
    S: Score<crate::Local>,
{
}

pub trait RunsOnCi {
    fn runs_on_a_topology(&self) {}
}

impl<F, S> RunsOnCi for &&Placement<F>
where
    F: Fn() -> S,
    S: Score<crate::Ci>,
{
}

pub trait RunsOnNoBuiltInTopology {
    #[deprecated(
        note = "this app's Score runs on neither `local` nor `ci`, and the app names no topology it runs on\nhelp: name the topologies that provide what it needs, e.g. `topologies: [harmony_k8s::K8s]`: each is then checked here"
    )]
    fn runs_on_a_topology(&self) {}
}

impl<F, S> RunsOnNoBuiltInTopology for &Placement<F>
where
    F: Fn() -> S,
    S: IsScore,
{
}

pub trait IsNotAScore {
    fn runs_on_a_topology(&self) {}
}

impl<F> IsNotAScore for Placement<F> {}

/// What a `#[harmony::capability]` trait must be: a trait of topologies
/// (`pub trait Dns: harmony::Topology`), so that only topologies provide it.
#[diagnostic::on_unimplemented(
    message = "a capability is a trait of topologies: it needs `harmony::Topology` as a supertrait",
    label = "add `: harmony::Topology` to this trait",
    note = "topologies provide capabilities: write `pub trait MyCapability: harmony::Topology {{ … }}`, or name a capability as the supertrait (`: harmony::K8sDeploy`)"
)]
pub trait CapabilityOfTopologies {}

#[diagnostic::do_not_recommend]
impl<C: ?Sized + crate::Topology> CapabilityOfTopologies for C {}

/// Fails to compile unless `C` is a trait of topologies.
pub fn capability_of_topologies<C: ?Sized + CapabilityOfTopologies>() {}
