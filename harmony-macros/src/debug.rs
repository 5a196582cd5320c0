//! `HARMONY_MACROS_DEBUG=1`: print each expansion, to see what a macro wrote.

use proc_macro2::TokenStream;

pub(crate) fn maybe_print(what: &str, tokens: &TokenStream) {
    if std::env::var_os("HARMONY_MACROS_DEBUG").is_some_and(|v| v == "1") {
        eprintln!("---- harmony-macros: {what} ----\n{tokens}");
    }
}
