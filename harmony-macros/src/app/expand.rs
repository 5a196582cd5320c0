//! Code generation for `app!`: the registry entries (an app `apply` can
//! deploy; and, with `image` and `chart`, a release) and a runner per topology.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{App, ChartKind, Image, Release};

pub(crate) fn expand(app: &App) -> TokenStream {
    let h = quote!(::harmony::__private);
    let (name, doc) = (&app.name, &app.doc);
    // What `apply` deploys: the given Score, or the chart builder's for the working tree.
    let score = match (&app.score, &app.release) {
        (Some(score), _) => quote!(#score),
        (
            None,
            Some(Release {
                chart: ChartKind::Builder(f),
                ..
            }),
        ) => quote!(#f(&#h::ReleaseCx::development(#name))),
        (None, _) => unreachable!("parse requires `score` unless the chart is a builder"),
    };
    // Spanned on the user's expression, so "is not a Score" points at it.
    let score_check = match (&app.score, &app.release) {
        // The path is written out, not interpolated, so that every token of the call carries the span.
        (Some(expr), _) => quote_spanned!(expr.span()=> ::harmony::__private::score_of(|| #expr)),
        (
            None,
            Some(Release {
                chart: ChartKind::Builder(f),
                ..
            }),
        ) => quote_spanned!(f.span()=> ::harmony::__private::score_of(|| #score)),
        _ => quote!(#h::score_of(|| #score)),
    };
    let runners = match &app.topologies {
        // Named topologies are a promise: each must compile, or the error
        // points at the topology that lacks a capability.
        Some(list) => {
            // Spanned on the path's last segment, the topology's own name.
            let each = list.iter().map(|t| {
                let span = t.segments.last().map_or_else(|| t.span(), |s| s.ident.span());
                quote_spanned!(span=> #h::runner::<#t, _>(#name, || #score))
            });
            quote!(#h::Vec::from([#(#each),*]))
        }
        None => quote!(#h::app_runners!(#name, || #score)),
    };
    let release = app.release.as_ref().map(|r| release(app, r, &h));
    quote! {
        const _: () = {
            fn __harmony_runners() -> #h::Vec<#h::Runner> {
                #runners
            }
            fn __harmony_score_type() -> &'static str {
                #h::type_name_of(|| #score)
            }
            #[allow(clippy::redundant_closure)]
            const _: fn() = || #score_check;
            #h::inventory::submit! {
                #h::AppEntry {
                    name: #name,
                    doc: #doc,
                    module: ::core::module_path!(),
                    location: #h::Location { file: ::core::file!(), line: ::core::line!() },
                    score: __harmony_score_type,
                    runners: __harmony_runners,
                }
            }
            #release
        };
    }
}

/// The `AppSpec` (pure data), the release runners, and the release's registry entry.
fn release(app: &App, r: &Release, h: &TokenStream) -> TokenStream {
    let (name, doc) = (&app.name, &app.doc);
    let image = match &r.image {
        Image::Dockerfile { dockerfile, context } => {
            let context = context.as_ref().map_or_else(|| quote!("."), |c| quote!(#c));
            quote!(#h::ImageSource::Dockerfile { dockerfile: ::std::path::PathBuf::from(#dockerfile), context: ::std::path::PathBuf::from(#context) })
        }
        Image::Buildable(expr) => quote_spanned!(expr.span()=> #h::ImageSource::Buildable(::std::sync::Arc::new(#expr))),
    };
    let chart = match &r.chart {
        ChartKind::Builder(f) => quote_spanned!(f.span()=> #h::chart_builder(#name, #f)),
        ChartKind::Dir(d) => quote!(#h::ChartSource::Dir(::std::path::PathBuf::from(#d))),
        ChartKind::Published { url, version } => quote!(#h::ChartSource::Published { url: #url, version: #version }),
    };
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
    let runners = match &app.topologies {
        Some(list) => {
            let each = list.iter().map(|t| {
                let span = t.segments.last().map_or_else(|| t.span(), |s| s.ident.span());
                quote_spanned!(span=> #h::release_runner::<#t, #stage_smoke>(__harmony_spec))
            });
            quote!(#h::Vec::from([#(#each),*]))
        }
        None => quote!(#h::release_runners!(__harmony_spec, #stage_smoke)),
    };
    quote! {
        fn __harmony_spec() -> #h::AppSpec {
            #h::AppSpec {
                name: ::std::string::String::from(#name),
                doc: ::std::string::String::from(#doc),
                dir: ::std::path::PathBuf::from(::core::env!("CARGO_MANIFEST_DIR")),
                image: #image,
                chart: #chart,
                stages: #h::Vec::from([#(::std::string::String::from(#stages)),*]),
                smoke: #smoke,
            }
        }
        fn __harmony_release_runners() -> #h::Vec<#h::ReleaseRunner> {
            #runners
        }
        #h::inventory::submit! {
            #h::ReleaseEntry {
                name: #name,
                location: #h::Location { file: ::core::file!(), line: ::core::line!() },
                stages: &[#(#stages),*],
                runners: __harmony_release_runners,
            }
        }
    }
}
