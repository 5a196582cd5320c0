//! `#[derive(Score)]`: check the keys (keys) → parse (attrs) → check the
//! rules (validate) → generate (expand). On error, the errors and a stub impl
//! are emitted together, so one mistake does not cascade into a page of
//! unrelated trait errors.

mod attrs;
mod expand;
mod keys;
mod validate;

use proc_macro2::TokenStream;

pub(crate) use attrs::doc as doc_of;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let derive_input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(d) => d,
        Err(e) => return e.to_compile_error(),
    };
    let out = match try_expand(&derive_input) {
        Ok(tokens) => tokens,
        Err(errors) => {
            let mut out = errors;
            out.extend(expand::fallback(&derive_input));
            out
        }
    };
    crate::debug::maybe_print("derive(Score)", &out);
    out
}

fn try_expand(input: &syn::DeriveInput) -> Result<TokenStream, TokenStream> {
    validate::shape(input).map_err(|e| e.to_compile_error())?;
    keys::check(input).map_err(|e| e.to_compile_error())?;
    let parsed = <attrs::ScoreInput as darling::FromDeriveInput>::from_derive_input(input).map_err(|e| e.write_errors())?;
    validate::validate(&parsed).map_err(|e| e.write_errors())?;
    Ok(expand::expand(&parsed))
}

#[cfg(test)]
mod tests;
