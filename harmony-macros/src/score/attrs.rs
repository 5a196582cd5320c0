//! What `#[score(..)]` accepts, read by darling. `keys` checks the keys first
//! (place, form, typos, repeats) and reports mistakes in our words; a test
//! keeps its table and these receivers in step.

use darling::util::PathList;
use darling::{FromDeriveInput, FromField, ast};

#[derive(FromDeriveInput)]
#[darling(attributes(score), supports(struct_named), forward_attrs(doc))]
pub(crate) struct ScoreInput {
    pub ident: syn::Ident,
    pub generics: syn::Generics,
    pub data: ast::Data<(), ScoreField>,
    pub attrs: Vec<syn::Attribute>,
    /// `requires(Cap, …)`: capabilities beyond `K8sDeploy`.
    #[darling(default)]
    pub requires: PathList,
    /// `smoke = path`: the Score's own smoke test.
    #[darling(default)]
    pub smoke: Option<syn::Path>,
    /// `crate = path`: where `harmony` is.
    #[darling(default, rename = "crate")]
    pub krate: Option<syn::Path>,
}

#[derive(FromField)]
#[darling(attributes(score), forward_attrs(doc))]
pub(crate) struct ScoreField {
    pub ident: Option<syn::Ident>,
    pub ty: syn::Type,
    pub attrs: Vec<syn::Attribute>,
    /// `child`: this field is a Score, deployed in declared order.
    #[darling(default)]
    pub child: darling::util::Flag,
    /// `secret`: this field is a `Secret<_>`.
    #[darling(default)]
    pub secret: darling::util::Flag,
}

impl ScoreInput {
    pub fn fields(&self) -> &[ScoreField] {
        match &self.data {
            ast::Data::Struct(fields) => &fields.fields,
            ast::Data::Enum(_) => &[],
        }
    }

    pub fn children(&self) -> impl Iterator<Item = &ScoreField> {
        self.fields().iter().filter(|f| f.child.is_present())
    }

    pub fn is_composite(&self) -> bool {
        self.children().next().is_some()
    }

    /// The runtime's path: `::harmony` unless `crate = ..` says otherwise.
    pub fn krate(&self) -> syn::Path {
        self.krate.clone().unwrap_or_else(|| syn::parse_quote!(::harmony))
    }
}

/// The text of the `///` lines, joined.
pub(crate) fn doc(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').map(str::to_owned).unwrap_or(l))
        .collect();
    lines.join("\n").trim().to_owned()
}
