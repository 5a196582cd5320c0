//! Code generation for `app!`: the registry entry and a runner per topology.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::App;

pub(crate) fn expand(app: &App) -> TokenStream {
    let h = quote!(::harmony::__private);
    let (name, doc, score) = (&app.name, &app.doc, &app.score);
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
    quote! {
        const _: () = {
            fn __harmony_runners() -> #h::Vec<#h::Runner> {
                #runners
            }
            fn __harmony_score_type() -> &'static str {
                #h::type_name_of(|| #score)
            }
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
        };
    }
}
