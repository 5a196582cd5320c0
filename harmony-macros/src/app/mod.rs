//! `app! { … }`: parse (every key, all errors at once) → expand.

mod expand;
mod parse;

use proc_macro2::TokenStream;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let out = match parse::parse(input) {
        Ok(app) => expand::expand(&app),
        Err(e) => e.to_compile_error(),
    };
    crate::debug::maybe_print("app!", &out);
    out
}

#[cfg(test)]
mod tests;
