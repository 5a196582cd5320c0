//! Functions whose only work is their bounds: `app!` and `#[derive(Score)]`
//! call them so that a pairing the types refuse is a compile error at the
//! user's token. rustc's notes name them ("required by a bound in
//! `releases_on_topologies`", "the trait `score_secret` is not implemented for
//! `&str`"), so each is named for the key, attribute or rule the user wrote
//! (`score`, `requires`, `score_secret`, `score_smoke`, `harmony_capability`,
//! `builder::takes_the_release_context`), never for the machinery;
//! `scripts/test` fails on a message that shows another of its names.

use crate::capability::{IsCapability, K8sDeploy};
use crate::release::capability::StageSmoke;
use crate::release::{ContainerBuilder, ContinuousDelivery, HelmRegistry, OciRegistry};
use crate::score::{IsScore, Score};
use crate::topology::SelectableTopology;
use std::marker::PhantomData;

/// Fails to compile unless `recipe` is a build recipe: `image: Buildable(recipe)`.
pub fn buildable<B: crate::build::Buildable + 'static>(recipe: B) -> B {
    recipe
}

/// Fails to compile unless `make` makes a Score.
pub fn score<S: IsScore>(_make: impl Fn() -> S) {}

/// `app! { topologies: [T] }`: the app's Score, made by `F`, runs on topology
/// `T`. Asked by autoref only of a Score, so that a `score` that is not one
/// is the one error `score` reports.
#[derive(Debug)]
pub struct Promise<T, F>(pub F, pub PhantomData<T>);

/// Fails to compile, naming the missing capability, unless the Score runs on
/// `T`. Named for the key, which rustc's notes name.
#[allow(non_camel_case_types)]
pub trait app_topologies<T, S> {
    /// Compiles only where the Score runs on `T`; its bounds are the check.
    fn run_the_score(&self)
    where
        T: SelectableTopology + K8sDeploy,
        S: Score<T>,
    {
    }
}

impl<T, S: IsScore, F: Fn() -> S> app_topologies<T, S> for Promise<T, F> {}

/// What autoref picks when `app!`'s `score` is not a Score: no second error,
/// since `score` already reports it.
pub trait NotAScorePromise {
    /// Asks nothing.
    fn run_the_score(&self) {}
}

impl<T, F> NotAScorePromise for &Promise<T, F> {}

/// Fails to compile, naming the missing capability, unless topology `T` can
/// release an app smoke-tested by `S`: `app! { topologies: [T], image: .. }`.
pub fn releases_on_topologies<T, S>()
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
    /// The capability's name, as the CLI's `list` and errors show it.
    const NAME: &'static str;
}

#[diagnostic::do_not_recommend]
impl<C: ?Sized + IsCapability> Capability for C {
    const NAME: &'static str = C::NAME;
}

/// The name of capability `C`; fails to compile unless `C` is one.
pub const fn requires<C: ?Sized + Capability>() -> &'static str {
    C::NAME
}

/// What a `smoke = ..` function must be: an async fn of the Score and the
/// topology, for any topology. `#[derive(Score)]` calls it through this trait.
#[allow(non_camel_case_types)] // named for the rule, which rustc's notes show
pub trait smoke_for_any_topology<'a, S: ?Sized, T: ?Sized> {
    /// Runs the smoke test of `score` on `topology`.
    fn call(self, score: &'a S, topology: &'a T) -> crate::BoxFuture<'a, Result<(), crate::SmokeError>>;
}

impl<'a, S, T, F, Test> smoke_for_any_topology<'a, S, T> for F
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

/// A `smoke = ..` function of another shape (one topology, no `&self`, not
/// `async`, another result): asked by autoref, so that every wrong shape is
/// one error in these words, at the path, showing the function's type, and
/// not rustc's closure-signature advice (which `smoke =` cannot take).
#[diagnostic::on_unimplemented(
    message = "`smoke = ..` must name an `async fn` of `&self` and the topology, for any topology: `async fn(&self, topology: &T) -> Result<(), SmokeError>`",
    label = "this is `{Self}`",
    note = "a smoke test runs after the deploy, on whichever topology the Score runs on, and returns `Ok(())` once what was deployed works",
    note = "write it `async fn ping<T: harmony::Topology>(&self, topology: &T) -> Result<(), harmony::SmokeError>`; one that reads the cluster takes `T: harmony::K8sClient`, and the Score says `#[score(requires(K8sClient))]`"
)]
#[allow(non_camel_case_types)] // named for the key the user wrote, which rustc's notes then show
pub trait score_smoke {}

/// The function `smoke = ..` names.
#[derive(Debug)]
pub struct SmokeFn<F>(pub F);

/// A `smoke = ..` function of the right shape, asked by autoref before [`smoke`].
pub trait SmokeOfTheRightShape<'a, S: ?Sized, T: ?Sized, F> {
    /// The function itself, to be called through [`smoke_for_any_topology`].
    fn takes_self_and_any_topology(&self) -> F;
}

impl<'a, S: ?Sized + 'a, T: ?Sized + 'a, F: smoke_for_any_topology<'a, S, T> + Clone> SmokeOfTheRightShape<'a, S, T, F> for SmokeFn<F> {
    fn takes_self_and_any_topology(&self) -> F {
        self.0.clone()
    }
}

/// A `smoke = ..` function of another shape: picked by autoref when
/// [`SmokeOfTheRightShape`] does not apply, and refused through [`score_smoke`].
#[allow(non_camel_case_types)]
pub trait smoke<'a, S: ?Sized + 'a, T: ?Sized + 'a, F> {
    /// Compiles only if `F` is [`score_smoke`], which nothing is: the error says what to write.
    #[allow(clippy::type_complexity)]
    fn takes_self_and_any_topology(&self) -> fn(&'a S, &'a T) -> crate::BoxFuture<'a, Result<(), crate::SmokeError>>
    where
        F: score_smoke,
    {
        |_, _| unreachable!("a program whose smoke test has another shape does not compile")
    }
}

impl<'a, S: ?Sized + 'a, T: ?Sized + 'a, F> smoke<'a, S, T, F> for &SmokeFn<F> {}

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
#[allow(non_camel_case_types)] // named for the key the user wrote, which rustc's notes then show
pub trait score_secret {}

impl<T> score_secret for crate::Secret<T> {}

/// An optional secret keeps the promise too.
impl<T> score_secret for Option<crate::Secret<T>> {}

/// A Score is deployed from any thread, so each of its type parameters is
/// `Send + Sync`. One trait for both, so that a type that is neither (an
/// `Rc`) is one error, in these words, where the Score is used.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a Score's type parameter: it is not `Send + Sync`",
    label = "not `Send + Sync`",
    note = "a Score is deployed from any thread, so each of its type parameters must be `Send + Sync`",
    note = "use a thread-safe type: `Arc` for `Rc`, a `Mutex` or an atomic for `Cell` and `RefCell`"
)]
pub trait SendAndSync: Send + Sync {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Send + Sync> SendAndSync for T {}

/// Fails to compile unless `F` is a [`Secret`](crate::Secret).
pub fn score_secret<F: ?Sized + score_secret>() {}

// Rules about what a type does *not* implement, or about two types being the
// same, asked by autoref specialization: `(&Asked::<S>::NEW).rule()` takes
// the method on `Asked` when its impl's bounds hold (the rule is broken) and
// the harmless one on `&Asked` when they do not. The broken rule's method has a bound no
// type meets, a trait named for the rule, whose message is the error, at the
// span the macro gave the call. This works where the types are known: a
// generic Score is checked by coherence instead (`a_Score_with_child_fields_has_no_impl_Render`).

/// The Score type `S`, asked whether it breaks a rule; `A` and `B`, whether
/// they are one type.
#[derive(Debug)]
pub struct Asked<S: ?Sized, B: ?Sized = ()>(pub PhantomData<S>, pub PhantomData<B>);

impl<S: ?Sized, B: ?Sized> Asked<S, B> {
    /// The question, asked as `(&Asked::<S>::NEW).rule()`.
    pub const NEW: Self = Asked(PhantomData, PhantomData);
}

/// A Score with `#[score(child)]` fields deploys its children, and only them:
/// an `impl Render` of its own would never run.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `child` fields, so its own `impl Render` would never run",
    label = "a Score with `child` fields deploys its children, and only them",
    note = "move what `{Self}`'s `impl Render` makes into a child Score (a `#[score(child)]` field of a type with that `impl Render`), or drop the `child` fields"
)]
#[allow(non_camel_case_types)] // named for the rule, which rustc's notes then show
pub trait child_fields_without_impl_Render {}

/// A Score with `child` fields that also implements `Render`: the rule is broken.
#[allow(non_camel_case_types, non_snake_case)] // named for the rule, which rustc's notes show
pub trait score_child<S: ?Sized> {
    /// Compiles only if `S` is [`child_fields_without_impl_Render`], which nothing is.
    fn without_impl_Render(&self)
    where
        S: child_fields_without_impl_Render,
    {
    }
}

impl<S: ?Sized + crate::score::Render> score_child<S> for Asked<S> {}

/// A Score with `child` fields and no `Render` of its own: the rule holds.
#[allow(non_snake_case)]
pub trait ChildFieldsOnly {
    /// Asks nothing.
    fn without_impl_Render(&self) {}
}

impl<S: ?Sized> ChildFieldsOnly for &Asked<S> {}

/// `requires(..)` names each capability once, however it is spelled.
#[diagnostic::on_unimplemented(
    message = "`requires(..)` names the same capability twice",
    label = "the same capability as one named before it",
    note = "remove the second one"
)]
#[allow(non_camel_case_types)]
pub trait requires_each_capability_once {}

/// `topologies: [..]` names each topology once, however it is spelled.
#[diagnostic::on_unimplemented(
    message = "`topologies: [..]` names topology `{Self}` twice",
    label = "the same topology as one named before it",
    note = "remove the second one"
)]
#[allow(non_camel_case_types)]
pub trait topologies_each_once {}

/// Two capabilities of `requires(..)` that are one type: the rule is broken.
#[allow(non_camel_case_types)]
pub trait requires<A: ?Sized> {
    /// Compiles only if `A` is [`requires_each_capability_once`], which nothing is.
    fn each_capability_once(&self)
    where
        A: requires_each_capability_once,
    {
    }
}

impl<A: ?Sized> requires<A> for Asked<A, A> {}

/// Two topologies of `topologies: [..]` that are one type: the rule is broken.
#[allow(non_camel_case_types)]
pub trait topologies<A: ?Sized> {
    /// Compiles only if `A` is [`topologies_each_once`], which nothing is.
    fn each_topology_once(&self)
    where
        A: topologies_each_once,
    {
    }
}

impl<A: ?Sized> topologies<A> for Asked<A, A> {}

/// Two capabilities, or two topologies, that are different types: the rules hold.
pub trait Different {
    /// Asks nothing.
    fn each_capability_once(&self) {}
    /// Asks nothing.
    fn each_topology_once(&self) {}
}

impl<A: ?Sized, B: ?Sized> Different for &Asked<A, B> {}

/// `chart: builder(f)`: `f` makes the app's Score from the release's context.
/// Asked by autoref, so that a function of another shape is one error in
/// these words, at `f`, and everything built on it still type-checks (it
/// stands in as a builder of `ChartObjects` in a program that never compiles).
#[derive(Debug)]
pub struct ChartBuilder<F>(pub F);

/// What `builder(..)` names: `fn name(cx: &ReleaseCx) -> impl Score`.
#[diagnostic::on_unimplemented(
    message = "a chart builder takes the release's context: `fn(&harmony::release::ReleaseCx) -> impl Score`",
    label = "this function does not take `&ReleaseCx`",
    note = "the context carries the released version and the image the chart deploys (`cx.image`)",
    note = "write it `fn my_chart(cx: &harmony::release::ReleaseCx) -> MyScore`, and take what it needs from `cx`"
)]
#[allow(non_camel_case_types)] // named for the key the user wrote
pub trait chart_builder {}

/// A chart builder of the right shape, asked by autoref before [`builder`].
pub trait TakesTheReleaseContext<S, F> {
    /// The builder itself.
    fn takes_the_release_context(&self) -> F;
}

impl<S, F: Fn(&crate::release::ReleaseCx) -> S + Clone> TakesTheReleaseContext<S, F> for ChartBuilder<F> {
    fn takes_the_release_context(&self) -> F {
        self.0.clone()
    }
}

/// What stands in for a chart builder of another shape, in a program that
/// does not compile. Named in the DSL's words: rustc's note shows it.
#[allow(non_camel_case_types)]
pub type a_chart_builder = fn(&crate::release::ReleaseCx) -> crate::release::pipeline::ChartObjects;

/// A chart builder of another shape: picked by autoref when
/// [`TakesTheReleaseContext`] does not apply, and refused through [`chart_builder`].
#[allow(non_camel_case_types)]
pub trait builder<F> {
    /// Compiles only if `F` is [`chart_builder`], which nothing is: the error says what to write.
    fn takes_the_release_context(&self) -> a_chart_builder
    where
        F: chart_builder,
    {
        |_| unreachable!("a program whose chart builder does not take the release's context does not compile")
    }
}

impl<F> builder<F> for &ChartBuilder<F> {}

/// A generic Score with `#[score(child)]` fields and an `impl Render` of its
/// own: the check above needs known types, so this is rustc's "conflicting
/// implementations of trait `a_Score_with_child_fields_has_no_impl_Render`".
#[allow(non_camel_case_types)]
pub trait a_Score_with_child_fields_has_no_impl_Render {}

impl<S: ?Sized + crate::score::Render> a_Score_with_child_fields_has_no_impl_Render for S {}

// Whether an app's Score runs on a built-in topology, asked by `app!` when it
// names no `topologies:`. Autoref specialization picks the first that holds:
// `Local` (on `&&&Placement`), `Ci` (on `&&Placement`), the deprecated
// fallback whose note is the warning (on `&Placement`), and, for what is not
// a Score at all (an error `score` reports), nothing more.

/// The Score an app's `score:` makes, asked where it runs.
#[derive(Debug)]
pub struct Placement<F>(pub F);

/// The app's Score runs on `local`: checked, nothing to say.
pub trait RunsOnLocal {
    /// Asks nothing.
    fn topologies(&self) {}
}

impl<F, S> RunsOnLocal for &&&Placement<F>
where
    F: Fn() -> S,
    S: Score<crate::Local>,
{
}

/// The app's Score runs on `ci`: checked, nothing to say.
pub trait RunsOnCi {
    /// Asks nothing.
    fn topologies(&self) {}
}

impl<F, S> RunsOnCi for &&Placement<F>
where
    F: Fn() -> S,
    S: Score<crate::Ci>,
{
}

/// Named `app`, with its method `topologies`, because the warning names them
/// ("use of deprecated method `harmony::checks::app::topologies`").
#[allow(non_camel_case_types)]
pub trait app {
    /// Warns, through its deprecation note, that the app is checked against no topology.
    #[deprecated(
        note = "this app's Score runs on neither `local` nor `ci`, and the app names no topology it runs on\nhelp: name the topologies that provide what it needs, e.g. `topologies: [harmony_k8s::K8s]`: each is then checked here"
    )]
    fn topologies(&self) {}
}

impl<F, S> app for &Placement<F>
where
    F: Fn() -> S,
    S: IsScore,
{
}

/// What `score:` makes is not a Score: no second error, since `score` already reports it.
pub trait IsNotAScore {
    /// Asks nothing.
    fn topologies(&self) {}
}

impl<F> IsNotAScore for Placement<F> {}

/// What a `#[harmony::capability]` trait must be: a trait of topologies
/// (`pub trait Dns: harmony::Topology`), so that only topologies provide it.
#[diagnostic::on_unimplemented(
    message = "a capability is a trait of topologies: it needs `harmony::Topology` as a supertrait",
    label = "add `: harmony::Topology` to this trait",
    note = "topologies provide capabilities: write `pub trait MyCapability: harmony::Topology {{ … }}`, or name a capability as the supertrait (`: harmony::K8sDeploy`)"
)]
#[allow(non_camel_case_types)] // named for the key the user wrote, which rustc's notes then show
pub trait harmony_capability {}

#[diagnostic::do_not_recommend]
impl<C: ?Sized + crate::Topology> harmony_capability for C {}

/// Fails to compile unless `C` is a trait of topologies.
pub fn harmony_capability<C: ?Sized + harmony_capability>() {}
