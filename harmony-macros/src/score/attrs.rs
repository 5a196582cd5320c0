//! What `#[derive(Score)]` works from: the struct, its fields, and what their
//! `#[score(..)]` keys say (read in `keys`, the one reading of them).

use proc_macro2::Span;

pub(crate) struct ScoreInput {
    pub ident: syn::Ident,
    pub generics: syn::Generics,
    /// The struct's attributes (its `///` doc among them).
    pub attrs: Vec<syn::Attribute>,
    pub fields: Vec<ScoreField>,
    /// `requires(Cap, …)`: capabilities beyond `K8sDeploy`.
    pub requires: Vec<syn::Path>,
    /// `smoke = path`: the Score's own smoke test.
    pub smoke: Option<syn::Path>,
    /// `crate = path`: where `harmony` is.
    pub krate: Option<syn::Path>,
}

pub(crate) struct ScoreField {
    pub ident: Option<syn::Ident>,
    pub ty: syn::Type,
    pub attrs: Vec<syn::Attribute>,
    /// `child`, where it is written: this field is a Score, deployed in declared order.
    pub child: Option<Span>,
    /// `secret`, where it is written: this field is a `Secret<_>`.
    pub secret: Option<Span>,
}

impl ScoreInput {
    pub fn fields(&self) -> &[ScoreField] {
        &self.fields
    }

    pub fn children(&self) -> impl Iterator<Item = &ScoreField> {
        self.fields.iter().filter(|f| f.child.is_some())
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
