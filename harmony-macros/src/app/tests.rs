//! Expansion snapshots of `app!`: the output parses as Rust, and reads as reviewed.

use quote::quote;

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn an_app_with_a_promise() {
    let out = super::expand(quote! {
        /// The demo.
        name: "demo",
        score: demo::Demo::default(),
        topologies: [Local],
    });
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn a_released_app_under_a_renamed_crate() {
    let out = super::expand(quote! {
        name: "site-web",
        image: Buildable(h::build::RustBinary::new("site-web")),
        chart: builder(crate::site),
        stages: [staging, production],
        smoke: http_get("/healthz"),
        crate: h,
    });
    insta::assert_snapshot!(pretty(out));
}
