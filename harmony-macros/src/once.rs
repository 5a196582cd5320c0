//! The rule that a list names each type once, however it is spelled
//! (`requires(..)`, `topologies: [..]`).

use proc_macro2::{Span, TokenStream};
use quote::quote;

/// Each of `types` named once, however it is spelled: for every pair, an
/// error at the later one when the two are the same type (`method` is
/// `each_capability_once` or `each_topology_once`, whose bound says which list). Each
/// type comes with the span of its name, where the error goes.
pub(crate) fn each(h: &TokenStream, types: &[(TokenStream, Span)], method: &TokenStream) -> Option<TokenStream> {
    let checks: Vec<TokenStream> = types
        .iter()
        .enumerate()
        .flat_map(|(j, (b, span))| {
            types[..j]
                .iter()
                .map(move |(a, _)| crate::spans::respan(quote!((&#h::Asked::<#a, #b>::NEW).#method();), *span))
        })
        .collect();
    (!checks.is_empty()).then(|| {
        quote! {
            const _: fn() = || {
                #[allow(unused_imports)]
                use #h::{Different as _, requires_listed_once as _, topologies_listed_once as _};
                #(#checks)*
            };
        }
    })
}
