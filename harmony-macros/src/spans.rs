//! Spans of generated tokens. rustc reads a token's span to decide whose
//! code it is: generated code spanned on the user's token is reported there,
//! as the user's, without advice meant for derive-generated impls.

use proc_macro2::{Group, Span, TokenStream, TokenTree};

/// Every token of `tokens`, with `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(g) = &tree {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The span of a path's own name, its last segment (`Local` of `harmony::Local`).
pub(crate) fn last_segment(path: &syn::Path) -> Span {
    path.segments
        .last()
        .map_or_else(|| syn::spanned::Spanned::span(path), |s| s.ident.span())
}
