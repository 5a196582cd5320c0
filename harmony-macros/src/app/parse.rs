//! `app!`'s grammar: `key: value` entries separated by commas, in any order,
//! optionally preceded by `///` doc lines. Entries are split first and read
//! one by one, so one bad value does not hide the errors after it.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Token, bracketed};

const KEYS: &[&str] = &["name", "score", "topologies"];

pub(crate) struct App {
    pub doc: String,
    pub name: syn::LitStr,
    pub score: syn::Expr,
    pub topologies: Option<Vec<syn::Path>>,
}

struct Entry {
    key: syn::Ident,
    value: TokenStream,
}

pub(crate) fn parse(input: TokenStream) -> syn::Result<App> {
    let (attrs, entries) = split.parse2(input)?;
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let (mut name, mut score, mut topologies) = (None, None, None);
    let mut seen: Vec<String> = Vec::new();
    // Keys a did-you-mean already points at: not also reported as missing.
    let mut suggested: Vec<&str> = Vec::new();
    for entry in entries {
        let key = entry.key.to_string();
        if seen.contains(&key) {
            push(syn::Error::new(
                entry.key.span(),
                format!("`{key}` is given twice\nhelp: keep one `{key}: …`"),
            ));
            continue;
        }
        seen.push(key.clone());
        let value = entry.value;
        let empty = value.is_empty();
        if empty {
            push(syn::Error::new(
                entry.key.span(),
                format!("`{key}` has no value\nhelp: write `{key}: {}`", example(&key)),
            ));
            continue;
        }
        match key.as_str() {
            "name" => match syn::parse2::<syn::LitStr>(value).and_then(check_name) {
                Ok(v) => name = Some(v),
                Err(e) => push(e),
            },
            "score" => match syn::parse2::<syn::Expr>(value) {
                Ok(v) => score = Some(v),
                Err(e) => push(e),
            },
            "topologies" => match parse_topologies.parse2(value) {
                Ok(v) => topologies = Some(v),
                Err(e) => push(e),
            },
            other => {
                suggested.extend(crate::suggest::closest(other, KEYS.iter().copied()));
                push(unknown_key(&entry.key, other));
            }
        }
    }
    let missing = |key: &str| {
        syn::Error::new(
            Span::call_site(),
            format!("`app!` is missing `{key}`\nhelp: add `{key}: {}`", example(key)),
        )
    };
    for key in ["name", "score"] {
        if !seen.iter().any(|k| k == key) && !suggested.contains(&key) {
            push(missing(key));
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(App {
        doc: doc(&attrs),
        name: name.expect("checked above"),
        score: score.expect("checked above"),
        topologies,
    })
}

fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"my-app\"",
        "score" => "my_crate::MyScore { … }",
        _ => "[Local]",
    }
}

fn split(input: ParseStream) -> syn::Result<(Vec<syn::Attribute>, Vec<Entry>)> {
    let attrs = input.call(syn::Attribute::parse_outer)?;
    let mut entries = Vec::new();
    while !input.is_empty() {
        let key: syn::Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected a key such as `name`, `score` or `topologies`"))?;
        input
            .parse::<Token![:]>()
            .map_err(|_| syn::Error::new(key.span(), format!("expected `:` after `{key}`")))?;
        let mut value = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            value.extend([input.parse::<TokenTree>()?]);
        }
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        entries.push(Entry { key, value });
    }
    Ok((attrs, entries))
}

fn parse_topologies(input: ParseStream) -> syn::Result<Vec<syn::Path>> {
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            input.span(),
            "`topologies` takes a list in brackets\nhelp: write `topologies: [Local]`",
        ));
    }
    let content;
    let brackets = bracketed!(content in input);
    let list = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)?;
    if list.is_empty() {
        return Err(syn::Error::new(
            brackets.span.join(),
            "`topologies` is empty\nhelp: list at least one, e.g. `topologies: [Local]`, or leave the key out",
        ));
    }
    Ok(list.into_iter().collect())
}

/// App names name directories, Kubernetes labels and Helm releases.
fn check_name(lit: syn::LitStr) -> syn::Result<syn::LitStr> {
    let name = lit.value();
    let ok = !name.is_empty()
        && name.len() <= 53
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        return Ok(lit);
    }
    Err(syn::Error::new(
        lit.span(),
        format!(
            "app name `{name}` is not valid\nhelp: use 1 to 53 lowercase letters, digits and `-`, starting and ending with a letter or digit, e.g. `\"my-app\"`"
        ),
    ))
}

fn unknown_key(key: &syn::Ident, name: &str) -> syn::Error {
    let hint = match crate::suggest::closest(name, KEYS.iter().copied()) {
        Some(k) => format!("help: did you mean `{k}`?"),
        None => format!(
            "help: the keys are {}",
            KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    syn::Error::new(key.span(), format!("unknown key `{name}` in `app!`\n{hint}"))
}

fn doc(attrs: &[syn::Attribute]) -> String {
    crate::score::doc_of(attrs)
}
