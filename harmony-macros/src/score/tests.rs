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

/// Each key of `keys::KEYS`, written as its example at its place, is read
/// without a mistake and lands in its value.
#[test]
fn every_key_is_read_into_its_value() {
    use super::keys::{Errors, KEYS, Place, read};
    for key in KEYS {
        let example: proc_macro2::TokenStream = key.example.parse().expect("the example is tokens");
        let input: syn::DeriveInput = match key.place {
            Place::Struct => syn::parse_quote! {
                #[score(#example)]
                struct S { #[score(child)] a: A }
            },
            Place::Field => syn::parse_quote! {
                struct S { #[score(#example)] a: harmony::Secret<String> }
            },
        };
        let mut errors = Errors::default();
        let read = read(&input, &mut errors);
        errors.finish().unwrap_or_else(|e| panic!("`{}` is rejected: {e}", key.name));
        let landed = match key.name {
            "requires" => !read.requires.is_empty(),
            "smoke" => read.smoke.is_some(),
            "crate" => read.krate.is_some(),
            "child" => read.fields[0].child.is_some(),
            "secret" => read.fields[0].secret.is_some(),
            other => panic!("a test for key `{other}` is missing here"),
        };
        assert!(landed, "`{}` was not read into its value", key.name);
    }
}

/// After mistakes, what could be read is still there for the stub impl.
#[test]
fn values_are_kept_whatever_else_is_wrong() {
    use super::keys::{Errors, read};
    let input: syn::DeriveInput = syn::parse_quote! {
        #[score(crate = h, smok = Self::x, requires = K8sClient)]
        struct S { a: A }
    };
    let mut errors = Errors::default();
    let read = read(&input, &mut errors);
    assert!(errors.finish().is_err());
    assert_eq!(quote::ToTokens::to_token_stream(&read.krate.unwrap()).to_string(), "h");
    assert_eq!(read.requires.len(), 1);
}

/// Key mistakes are reported by the key check, in our words, each on its key.
#[test]
fn key_mistakes_are_ours() {
    let cases: &[(syn::DeriveInput, &str)] = &[
        (
            syn::parse_quote!(
                #[score(smok = Self::ping)]
                struct S {
                    a: A,
                }
            ),
            "unknown key `smok` in `#[score(..)]`\nhelp: did you mean `smoke`?",
        ),
        (
            syn::parse_quote!(
                #[score(smoke = Self::a, smoke = Self::b)]
                struct S {
                    a: A,
                }
            ),
            "`smoke` is given twice\nhelp: keep one of them and remove the other",
        ),
        (
            syn::parse_quote!(
                #[score(smoke)]
                struct S {
                    a: A,
                }
            ),
            "`smoke` needs a value\nhelp: write `smoke = Self::ping`",
        ),
        (
            syn::parse_quote!(
                #[score(smoke = || 1)]
                struct S {
                    a: A,
                }
            ),
            "`smoke` takes the path of an `async fn(&self, topology: &T) -> Result<(), SmokeError>`\nhelp: write `smoke = Self::ping`",
        ),
        (
            syn::parse_quote!(
                #[score(requires)]
                struct S {
                    a: A,
                }
            ),
            "`requires` takes a list in parentheses\nhelp: write `requires(K8sClient)`",
        ),
        (
            syn::parse_quote!(
                #[score(requires())]
                struct S {
                    a: A,
                }
            ),
            "`requires()` lists nothing\nhelp: name at least one, e.g. `requires(K8sClient)`, or remove it",
        ),
        (
            syn::parse_quote!(
                #[score(requires("K8sClient"))]
                struct S {
                    a: A,
                }
            ),
            "`requires(..)` takes the names of capability traits\nhelp: write e.g. `requires(K8sClient)`",
        ),
        (
            syn::parse_quote!(
                #[score(child)]
                struct S {
                    a: A,
                }
            ),
            "`child` goes on a field, not on the struct\nhelp: put `#[score(child)]` on the field it is about",
        ),
        (
            syn::parse_quote!(
                struct S {
                    #[score(child = true)]
                    a: A,
                }
            ),
            "`child` takes no value\nhelp: write `#[score(child)]`",
        ),
        (
            syn::parse_quote!(
                struct S {
                    #[score(smoke = Self::a)]
                    a: A,
                }
            ),
            "`smoke` goes on the struct, not on a field\nhelp: put `#[score(smoke = Self::ping)]` above the struct, under `#[derive(Score)]`",
        ),
        (
            syn::parse_quote!(
                struct S {
                    #[score]
                    a: A,
                }
            ),
            "`#[score]` needs its keys in parentheses\nhelp: write e.g. `#[score(child)]`",
        ),
        (
            syn::parse_quote!(
                struct S {
                    #[score(zzzzzz)]
                    a: A,
                }
            ),
            "unknown key `zzzzzz` in `#[score(..)]`\nhelp: the keys on a field are `child`, `secret`",
        ),
    ];
    for (input, want) in cases {
        let mut errors = super::keys::Errors::default();
        super::keys::read(input, &mut errors);
        let got = errors.finish().expect_err(want).to_string();
        assert_eq!(&got, want);
    }
}
