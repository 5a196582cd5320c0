//! The procedural macros of `harmony`. Use them through `harmony`, which
//! re-exports them: `#[derive(harmony::Score)]`, `harmony::app! { … }`.
//!
//! Set `HARMONY_MACROS_DEBUG=1` to print every expansion to stderr.

use proc_macro::TokenStream;

mod app;
mod capability;
mod debug;
mod once;
mod score;
mod spans;
// The one did-you-mean, shared with the runtime.
use harmony_suggest as suggest;

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

/// Register an app: a named root Score the CLI can plan, dry-run and apply,
/// and, with `image` and `chart`, release stage by stage.
///
/// ```ignore
/// harmony::app! {
///     /// The demo web application.
///     name: "webapp-server",
///     image: Buildable(harmony::build::RustBinary::new("webapp-server").port(8080)),
///     chart: builder(crate::WebApp::release),
///     stages: [staging, production],
///     smoke: http_get("/healthz"),
///     topologies: [Local, Ci],
/// }
/// ```
///
/// | key | form | meaning |
/// |---|---|---|
/// | `name` | `"my-app"` | lowercase letters, digits and `-`; names its state and its release tags (`<name>-v<semver>`) |
/// | `score` | an expression | the root Score `apply` deploys; not with `chart`: then `apply` deploys the chart (a builder's Score, or a directory's or published chart's objects), as a release does |
/// | `image` | `Dockerfile("path")`, `Dockerfile("path", "context")` | paths relative to the declaring crate's directory |
/// | | `Buildable(expr)` | a daemonless build, e.g. `harmony::build::RustBinary::new("my-crate")` |
/// | `chart` | `builder(path)` | `fn(&harmony::release::ReleaseCx) -> impl Score`: the chart rendered against the released image |
/// | | `dir("path")` | a chart directory, relative to the declaring crate |
/// | | `published("oci://host/ns/chart", "x.y.z")` | a published chart at a pinned version |
/// | `stages` | `[staging, production]` | the stages a release goes through, in order; needs `image` and `chart` |
/// | `smoke` | `http_get("/path")` | after each stage, the released service must answer 2xx; needs `HttpProbe` |
/// | `topologies` | `[Local, my::Edge]` | checked at compile time: the app runs on each; without it, on every linked topology that provides what it needs |
/// | `crate` | `my_harmony` | where `harmony` is, if it was renamed |
///
/// Generates the app's registry entry (its name, doc, needs, and the function
/// that runs it on the selected topology), the release entry with an
/// `AppSpec`, and the compile-time checks of `topologies`. Every mistake is
/// a compile error at the token, with the fix.
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
