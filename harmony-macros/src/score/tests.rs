//! Expansion snapshots: the output parses as Rust, and reads as reviewed.

use quote::quote;

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn leaf_with_requires_and_smoke() {
    let out = super::expand(quote! {
        /// NATS for the fleet.
        #[score(requires(K8sClient), smoke = Self::ping)]
        pub struct Nats {
            /// Where it runs.
            pub namespace: String,
            #[score(secret)]
            pub password: Secret<String>,
        }
    });
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn composite() {
    let out = super::expand(quote! {
        pub struct Stack {
            #[score(child)]
            pub nats: Nats,
            #[score(child)]
            pub operator: Operator,
        }
    });
    insta::assert_snapshot!(pretty(out));
}
