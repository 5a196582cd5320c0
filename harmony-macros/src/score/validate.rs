//! The rules the attributes must follow, one `check_*` per rule, each error
//! spanned on the offending token and saying what to write instead.

use syn::spanned::Spanned;

use super::attrs::{ScoreField, ScoreInput};
use super::keys::Errors;

/// A Score is a struct with named fields; anything else is this one error,
/// which says what a Score looks like.
pub(crate) fn shape(input: &syn::DeriveInput) -> syn::Result<()> {
    let what = match &input.data {
        syn::Data::Struct(s) => match s.fields {
            syn::Fields::Named(_) => return Ok(()),
            syn::Fields::Unnamed(_) => "a tuple struct",
            syn::Fields::Unit => "a unit struct",
        },
        syn::Data::Enum(_) => "an enum",
        syn::Data::Union(_) => "a union",
    };
    Err(syn::Error::new(
        input.ident.span(),
        format!(
            "`#[derive(Score)]` needs a struct with named fields, and `{}` is {what}\n\
             help: a Score is data whose parts have names, e.g. `struct {} {{ namespace: String }}`",
            input.ident, input.ident
        ),
    ))
}

pub(crate) fn validate(input: &ScoreInput, errors: &mut Errors) {
    for field in input.fields() {
        check_child_not_secret(field, errors);
    }
    check_requires_unique(input, errors);
}

/// A child is a Score and a secret is a value: one field cannot be both.
fn check_child_not_secret(field: &ScoreField, errors: &mut Errors) {
    if let (Some(_), Some(secret)) = (field.child, field.secret) {
        errors.push(syn::Error::new(
            secret,
            "a field cannot be both `child` and `secret`\nhelp: a child is a Score; keep secrets inside the child Score that renders them",
        ));
    }
}

/// Listing a capability twice is harmless to the compiler but a sign of a
/// typo. The same capability written two ways (`K8sClient` and
/// `harmony::K8sClient`) is caught by type in `expand::requires_once`.
fn check_requires_unique(input: &ScoreInput, errors: &mut Errors) {
    for (i, path) in input.requires.iter().enumerate() {
        if input.requires[..i].contains(path) {
            let name = quote::ToTokens::to_token_stream(path).to_string().replace(' ', "");
            errors.push(syn::Error::new(
                path.span(),
                format!("capability `{name}` is listed twice in `requires(..)`\nhelp: remove the second `{name}`"),
            ));
        }
    }
}
