//! The procedural macros of `harmony`. Use them through `harmony`, which
//! re-exports them: `#[derive(harmony::Score)]`, `harmony::app! { … }`.
//!
//! Set `HARMONY_MACROS_DEBUG=1` to print every expansion to stderr.

use proc_macro::TokenStream;

mod app;
mod capability;
mod debug;
mod score;
// The one did-you-mean, shared with the runtime: compiled here from its
// source, since a proc-macro crate cannot depend on `harmony`.
#[path = "../../harmony/src/suggest.rs"]
mod suggest;

/// Derive a Score: its capability bounds, its Interpret, its smoke-test
/// companion and its registry entry.
///
/// ```ignore
/// /// The web front end: its Deployment and Service.
/// #[derive(harmony::Score)]
/// #[score(requires(K8sClient), smoke = Self::ping)]
/// pub struct Frontend {
///     pub namespace: String,
///     #[score(secret)]
///     pub api_key: harmony::Secret<String>,
/// }
/// ```
///
/// Struct keys, inside `#[score(..)]`:
///
/// | key | meaning |
/// |---|---|
/// | `requires(Cap, …)` | capabilities the Score needs beyond `K8sDeploy`; each becomes a bound on the topology |
/// | `smoke = path` | an `async fn(&self, &T) -> Result<(), SmokeError>` run after the topology's verification of what was rendered, in addition to it |
/// | `crate = path` | where `harmony` is, if it was renamed |
///
/// Field keys: `child` (the field is a Score deployed before the next child,
/// in declared order; the struct is then a composite whose bounds are its
/// children's) and `secret` (the field is a `harmony::Secret<_>` and is shown as
/// such by `explain`).
///
/// A leaf Score (no `child` field) implements `harmony::Render`.
///
/// Generates `impl<T: Topology + K8sDeploy + Cap…> Score<T>` and
/// `Interpret<T>`, and submits a `ScoreEntry` to the registry.
#[proc_macro_derive(Score, attributes(score))]
pub fn derive_score(input: TokenStream) -> TokenStream {
    score::expand(input.into()).into()
}

/// Register an app: a named root Score the CLI can plan, dry-run and apply.
///
/// ```ignore
/// harmony::app! {
///     /// The demo web application.
///     name: "webapp",
///     score: webapp::WebApp::default(),
///     topologies: [Local],
/// }
/// ```
///
/// | key | meaning |
/// |---|---|
/// | `name` | the app's name: lowercase letters, digits and `-` (it names its state) |
/// | `score` | an expression building the app's root Score |
/// | `topologies` | optional: the topologies it must run on, checked at compile time; without it, every built-in topology its Score runs on |
#[proc_macro]
pub fn app(input: TokenStream) -> TokenStream {
    app::expand(input.into()).into()
}

/// Declare a capability: a trait a topology implements to say what it can do,
/// named after the industry concept (`DnsRecords`, `ObjectStore`), never after
/// the tool behind it. Scores name it in `#[score(requires(..))]`.
///
/// ```ignore
/// /// Creates and verifies DNS records.
/// #[harmony::capability]
/// pub trait DnsRecords: harmony::Topology {
///     fn zone(&self) -> &str;
/// }
/// ```
///
/// The first line of the doc comment is what `list` and `explain` say it
/// provides. The trait must be callable through `dyn`: methods take `&self`,
/// have no type parameters, and return futures as `BoxFuture`.
///
/// Generates the `IsCapability` marker, the registry entry, and the
/// forwarding impl through which the CLI reaches the selected topology's
/// implementation. Key: `crate = path`, where `harmony` is if it was renamed.
#[proc_macro_attribute]
pub fn capability(attr: TokenStream, item: TokenStream) -> TokenStream {
    capability::expand(attr.into(), item.into()).into()
}
