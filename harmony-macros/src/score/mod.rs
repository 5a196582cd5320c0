//! `#[derive(Score)]`: read the keys (keys, into attrs' types) → check the
//! rules (validate) → generate (expand). On error, the errors and a stub impl
//! made from what could be read are emitted together, so one mistake does not
//! cascade into a page of unrelated trait errors.

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
    let mut errors = keys::Errors::default();
    let parsed = keys::read(&derive_input, &mut errors);
    // A Score is a struct with named fields; anything else is that one error.
    let errors = match validate::shape(&derive_input) {
        Err(e) => Err(e),
        Ok(()) => {
            validate::validate(&parsed, &mut errors);
            errors.finish()
        }
    };
    let out = match errors {
        Ok(()) => expand::expand(&parsed),
        Err(errors) => {
            let mut out = errors.to_compile_error();
            out.extend(expand::fallback(&derive_input, &parsed));
            out
        }
    };
    crate::debug::maybe_print("derive(Score)", &out);
    out
}

#[cfg(test)]
mod tests;
