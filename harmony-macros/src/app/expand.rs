//! Code generation for `app!`: the registry entries (an app `apply` can
//! deploy; and, with `image` and `chart`, a release) and a runner per topology.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{App, ChartKind, Image, Release};
use crate::spans::respan;

pub(crate) fn expand(app: &App) -> TokenStream {
    let krate = app.krate.clone().unwrap_or_else(|| syn::parse_quote!(::harmony));
    let h = quote!(#krate::__private);
    let (name, doc) = (&app.name, &app.doc);
    // What `apply` deploys: the given Score, or else the chart: the builder's
    // Score for the working tree, or a directory's or published chart's objects.
    let score = match (&app.score, &app.release) {
        (Some(score), _) => quote!(#score),
        (
            None,
            Some(Release {
                chart: ChartKind::Builder(f),
                ..
            }),
        ) => {
            let builder = chart_builder(f, &h);
            quote!((#builder)(&#h::ReleaseCx::development(#name)))
        }
        (None, Some(r)) => {
            let chart = chart_source(r, name, &h);
            quote!(#h::ChartObjects::new(#name, #h::PathBuf::from(::core::env!("CARGO_MANIFEST_DIR")), #chart))
        }
        (None, None) => unreachable!("parse requires `score` without a chart"),
    };
    // Spanned on the user's expression, so "is not a Score" points at it.
    let score_check = match (&app.score, &app.release) {
        // The path is written out, not interpolated, so that every token of the call carries the span.
        (Some(expr), _) => {
            let krate = respan(quote!(#krate), expr.span());
            quote_spanned!(expr.span()=> #krate::__private::score(|| #expr))
        }
        // The chart builder's own bound (`builder`) is the check.
        _ => TokenStream::new(),
    };
    // Named topologies are a promise, checked here: the error points at the
    // topology that lacks a capability. At run time the app runs on every
    // topology that provides what it needs.
    let promises = app.topologies.iter().flatten().map(|t| {
        // Spanned on the path's last segment, the topology's own name.
        let span = crate::spans::last_segment(t);
        quote_spanned! {span=> {
            #[allow(unused_imports)]
            use #h::{NotAScorePromise as _, app_topologies as _};
            (&#h::Promise::<#t, _>(|| #score, ::core::marker::PhantomData)).run_the_score();
        }}
    });
    // Without named topologies, a Score that runs on neither built-in one is
    // a warning here (a deprecated fallback method): nothing would check
    // where it runs until run time.
    let placement = app.topologies.is_none().then(|| {
        let span = app.score.as_ref().map_or_else(|| name.span(), Spanned::span);
        quote_spanned! {span=>
            #[allow(unused_imports)]
            use #h::{IsNotAScore as _, RunsOnCi as _, RunsOnLocal as _, app as _};
            (&&&&#h::Placement(|| #score)).topologies();
        }
    });
    // Each topology once, however it is spelled.
    let topologies: Vec<_> = app
        .topologies
        .iter()
        .flatten()
        .map(|t| (quote!(#t), crate::spans::last_segment(t)))
        .collect();
    let listed_once = crate::once::each(&h, &topologies, &quote!(each_topology_once));
    let release = app.release.as_ref().map(|r| release(app, r, &h));
    // One app per name in a crate: a second `app!` of the same name defines
    // this macro again, which rustc reports at its name (ADR 0016). Across
    // crates, the CLI refuses to start (`harmony_registry::check`).
    let once = syn::Ident::new(&format!("app_named_{}", name.value().replace('-', "_")), name.span());
    let once = quote_spanned! {name.span()=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #once { () => {} }
    };
    quote! {
        #once

        const _: () = {
            fn __harmony_score_type() -> &'static str {
                #h::type_name_of(|| #score)
            }
            #[allow(unused_imports)]
            use #h::{AppIsNotScore as _, AppIsScore as _};
            fn __harmony_needs() -> #h::Vec<&'static str> {
                (&&#h::AppFns(|| #score)).needs()
            }
            // What the CLI asks of the app: each command, typed, handed to the app's Score.
            struct __HarmonyApp;
            impl #h::RegisteredApp for __HarmonyApp {
                fn render(
                    &self,
                    topology: &#h::AnyTopology,
                ) -> #h::Result<#h::Vec<#h::Object>, #h::EngineError> {
                    (&&#h::AppFns(|| #score)).render(#name, topology)
                }
                fn plan<'a>(
                    &'a self,
                    topology: &'a #h::AnyTopology,
                ) -> #h::BoxFuture<'a, #h::Result<#h::Plan, #h::EngineError>> {
                    (&&#h::AppFns(|| #score)).plan(#name, topology)
                }
                fn exact_plan<'a>(
                    &'a self,
                    topology: &'a #h::AnyTopology,
                ) -> #h::BoxFuture<'a, #h::Result<#h::ExactPlan, #h::EngineError>> {
                    (&&#h::AppFns(|| #score)).exact_plan(#name, topology)
                }
                fn dry_run<'a>(
                    &'a self,
                    topology: &'a #h::AnyTopology,
                    plan: &'a #h::ExactPlan,
                    progress: #h::Arc<dyn #h::Progress>,
                ) -> #h::BoxFuture<'a, #h::Result<#h::Plan, #h::EngineError>> {
                    (&&#h::AppFns(|| #score)).dry_run(#name, topology, plan, progress)
                }
                fn apply<'a>(
                    &'a self,
                    topology: &'a #h::AnyTopology,
                    plan: &'a #h::ExactPlan,
                    progress: #h::Arc<dyn #h::Progress>,
                ) -> #h::BoxFuture<'a, #h::Result<#h::Plan, #h::EngineError>> {
                    (&&#h::AppFns(|| #score)).apply(#name, topology, plan, progress)
                }
            }
            #[allow(clippy::redundant_closure)]
            const _: fn() = || {
                #score_check;
                #(#promises)*
                #placement
            };
            #h::inventory::submit! {
                #h::AppEntry {
                    name: #name,
                    doc: #doc,
                    module: ::core::module_path!(),
                    location: #h::Location { file: ::core::file!(), line: ::core::line!() },
                    score: __harmony_score_type,
                    needs: __harmony_needs,
                    app: &__HarmonyApp,
                }
            }
            #release
            #listed_once
        };
    }
}

/// The `AppSpec` (pure data), the release runners, and the release's registry entry.
fn release(app: &App, r: &Release, h: &TokenStream) -> TokenStream {
    let (name, doc) = (&app.name, &app.doc);
    let image = match &r.image {
        Image::Dockerfile {
            dockerfile,
            context,
            binaries,
        } => {
            let context = context.as_ref().map_or_else(|| quote!("."), |c| quote!(#c));
            quote!(#h::ImageSource::Dockerfile {
                dockerfile: #h::PathBuf::from(#dockerfile),
                context: #h::PathBuf::from(#context),
                binaries: #h::Vec::from([#(#h::String::from(#binaries)),*]),
            })
        }
        Image::Buildable(expr) => {
            // Through `buildable`, so that a value that is not a recipe is one error, at it.
            let check = respan(quote!(#h::buildable), expr.span());
            quote!(#h::ImageSource::Buildable(#h::Arc::new(#check(#expr))))
        }
    };
    let chart = chart_source(r, name, h);
    let stages: Vec<String> = r.stages.iter().map(ToString::to_string).collect();
    // With `smoke`, releasing also needs `HttpProbe`: the runner says so in its bounds.
    let stage_smoke = match &r.smoke {
        Some(_) => quote!(#h::HttpSmoke),
        None => quote!(#h::NoSmoke),
    };
    let smoke = match &r.smoke {
        Some(path) => quote!(::core::option::Option::Some(#h::HttpCheck::get(#path))),
        None => quote!(::core::option::Option::None),
    };
    let smoked = r.smoke.is_some();
    let promises = app.topologies.iter().flatten().map(|t| {
        let span = crate::spans::last_segment(t);
        quote_spanned!(span=> #h::releases_on_topologies::<#t, #stage_smoke>();)
    });
    quote! {
        fn __harmony_spec() -> #h::AppSpec {
            #h::AppSpec {
                name: #h::String::from(#name),
                doc: #h::String::from(#doc),
                dir: #h::PathBuf::from(::core::env!("CARGO_MANIFEST_DIR")),
                image: #image,
                chart: #chart,
                stages: #h::Vec::from([#(#h::String::from(#stages)),*]),
                smoke: #smoke,
            }
        }
        fn __harmony_release_needs() -> #h::Vec<&'static str> {
            #h::release_needs(#smoked)
        }
        fn __harmony_release(
            topology: #h::Arc<#h::AnyTopology>,
            version: #h::Version,
            mode: #h::Mode,
            progress: #h::Arc<dyn #h::Progress>,
        ) -> #h::BoxFuture<'static, #h::Result<#h::ReleasePlan, #h::ReleaseError>> {
            #h::release::<#stage_smoke>(__harmony_spec(), topology, version, mode, progress)
        }
        const _: fn() = || {
            #(#promises)*
        };
        #h::inventory::submit! {
            #h::ReleaseEntry {
                name: #name,
                location: #h::Location { file: ::core::file!(), line: ::core::line!() },
                stages: &[#(#stages),*],
                needs: __harmony_release_needs,
                run: __harmony_release,
            }
        }
    }
}

/// The release's `ChartSource`.
fn chart_source(r: &Release, name: &syn::LitStr, h: &TokenStream) -> TokenStream {
    match &r.chart {
        // Spanned on the function, so an error is there, not on the whole `app!`.
        ChartKind::Builder(f) => {
            let builder = chart_builder(f, h);
            respan(quote!(#h::builder(#name, #builder)), f.span())
        }
        ChartKind::Dir(d) => quote!(#h::ChartSource::Dir(#h::PathBuf::from(#d))),
        ChartKind::Published { url, version } => quote!(#h::ChartSource::Published { url: #url, version: #version }),
    }
}

/// The chart builder `f`, asked whether it takes the release's context: one
/// error at `f` if not (`harmony::checks::chart_builder`).
fn chart_builder(f: &syn::Path, h: &TokenStream) -> TokenStream {
    respan(
        quote! {{
            #[allow(unused_imports)]
            use #h::{TakesTheReleaseContext as _, builder_of_a_chart as _};
            (&#h::ChartBuilder(#f)).takes_the_release_context()
        }},
        f.span(),
    )
}
