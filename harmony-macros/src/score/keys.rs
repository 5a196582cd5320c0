//! The keys `#[score(..)]` accepts, where each goes and in which form, and
//! the one reading of them: each key is checked (place, form, typos, repeats)
//! and its value read in the same pass. Mistakes are reported in our words, on
//! the key, with what to write instead; what could be read is kept whatever
//! else is wrong, so that the errors and a stub impl made from those values
//! are emitted together.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Token, parenthesized};

use super::attrs::{ScoreField, ScoreInput};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Form {
    /// `key`
    Flag,
    /// `key = path`
    Value,
    /// `key(path, …)`
    List,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Place {
    Struct,
    Field,
}

#[derive(Debug)]
pub(crate) struct Key {
    pub name: &'static str,
    pub form: Form,
    pub place: Place,
    /// How it is written, as the help lines show it.
    pub example: &'static str,
    /// What its value is, said when the value is of the wrong kind.
    pub takes: &'static str,
}

pub(crate) const KEYS: &[Key] = &[
    Key {
        name: "requires",
        form: Form::List,
        place: Place::Struct,
        example: "requires(K8sClient)",
        takes: "the names of capability traits",
    },
    Key {
        name: "smoke",
        form: Form::Value,
        place: Place::Struct,
        example: "smoke = Self::ping",
        takes: "the path of an `async fn(&self, topology: &T) -> Result<(), SmokeError>`",
    },
    Key {
        name: "crate",
        form: Form::Value,
        place: Place::Struct,
        example: "crate = my_harmony",
        takes: "the path `harmony` is reachable at",
    },
    Key {
        name: "child",
        form: Form::Flag,
        place: Place::Field,
        example: "child",
        takes: "no value",
    },
    Key {
        name: "secret",
        form: Form::Flag,
        place: Place::Field,
        example: "secret",
        takes: "no value",
    },
];

/// Read every `#[score(..)]` on the struct and its fields: the values, and
/// every mistake at once.
pub(crate) fn read(input: &syn::DeriveInput, errors: &mut Errors) -> ScoreInput {
    let mut slots = Slots::default();
    read_attrs(&input.attrs, Place::Struct, &mut slots, errors);
    let mut fields = Vec::new();
    if let syn::Data::Struct(data) = &input.data {
        for field in &data.fields {
            let mut own = Slots::default();
            read_attrs(&field.attrs, Place::Field, &mut own, errors);
            fields.push(ScoreField {
                ident: field.ident.clone(),
                ty: field.ty.clone(),
                attrs: field.attrs.clone(),
                child: own.child,
                secret: own.secret,
            });
        }
    }
    ScoreInput {
        ident: input.ident.clone(),
        generics: input.generics.clone(),
        attrs: input.attrs.clone(),
        fields,
        requires: slots.requires,
        smoke: slots.smoke,
        krate: slots.krate,
    }
}

/// What the keys read so far say.
#[derive(Default)]
struct Slots {
    requires: Vec<syn::Path>,
    smoke: Option<syn::Path>,
    krate: Option<syn::Path>,
    child: Option<Span>,
    secret: Option<Span>,
}

/// Every error of one expansion, combined into one.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn here(place: Place) -> &'static str {
    match place {
        Place::Struct => "on the struct",
        Place::Field => "on a field",
    }
}

fn keys_at(place: Place) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.place == place)
}

fn read_attrs(attrs: &[syn::Attribute], place: Place, slots: &mut Slots, errors: &mut Errors) {
    let mut seen: Vec<&'static str> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("score")) {
        let list = match &attr.meta {
            syn::Meta::List(list) => list,
            other => {
                let example = keys_at(place).next().map_or("", |k| k.example);
                errors.push(syn::Error::new(
                    other.span(),
                    format!("`#[score]` needs its keys in parentheses\nhelp: write e.g. `#[score({example})]`"),
                ));
                continue;
            }
        };
        if list.tokens.is_empty() {
            errors.push(syn::Error::new(
                list.delimiter.span().join(),
                "`#[score()]` is empty\nhelp: add a key, or remove the attribute",
            ));
            continue;
        }
        let parsed = list.parse_nested_meta(|meta| {
            read_entry(&meta, place, &mut seen, slots, errors)?;
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
}

/// One `key`, `key = value` or `key(..)`: checked, and its value kept. Consumes
/// the entry whatever it is, so the entries after it are read too.
fn read_entry(
    meta: &ParseNestedMeta,
    place: Place,
    seen: &mut Vec<&'static str>,
    slots: &mut Slots,
    errors: &mut Errors,
) -> syn::Result<()> {
    let written = FormWritten::of(meta);
    let name = meta.path.get_ident().map(ToString::to_string);
    let key = name.as_deref().and_then(|n| KEYS.iter().find(|k| k.name == n));
    let Some(key) = key else {
        let shown = quote::ToTokens::to_token_stream(&meta.path).to_string().replace(' ', "");
        errors.push(unknown(&meta.path, &shown, place));
        return skip(meta, written);
    };
    if key.place != place {
        errors.push(misplaced(&meta.path, key));
        return skip(meta, written);
    }
    if seen.contains(&key.name) {
        errors.push(syn::Error::new(
            meta.path.span(),
            format!("`{}` is given twice\nhelp: keep one of them and remove the other", key.name),
        ));
        return skip(meta, written);
    }
    seen.push(key.name);
    match (key.form, written) {
        (Form::Flag, FormWritten::Word) => {
            let span = Some(meta.path.span());
            match key.name {
                "child" => slots.child = span,
                _ => slots.secret = span,
            }
            Ok(())
        }
        (Form::Flag, _) => {
            errors.push(syn::Error::new(
                meta.path.span(),
                format!("`{}` takes no value\nhelp: write `#[score({})]`", key.name, key.example),
            ));
            skip(meta, written)
        }
        (Form::Value, FormWritten::Value) => {
            let value: syn::Expr = meta.value()?.parse()?;
            match path_of(&value) {
                Some(path) if key.name == "crate" => slots.krate = Some(path),
                Some(path) => slots.smoke = Some(path),
                None => errors.push(syn::Error::new(
                    value.span(),
                    format!("`{}` takes {}\nhelp: write `{}`", key.name, key.takes, key.example),
                )),
            }
            Ok(())
        }
        (Form::Value, _) => {
            errors.push(syn::Error::new(
                meta.path.span(),
                format!("`{}` needs a value\nhelp: write `{}`", key.name, key.example),
            ));
            skip(meta, written)
        }
        (Form::List, FormWritten::List) => {
            let content;
            let parens = parenthesized!(content in meta.input);
            let not_names = |span| {
                syn::Error::new(
                    span,
                    format!("`{}(..)` takes {}\nhelp: write e.g. `{}`", key.name, key.takes, key.example),
                )
            };
            let items = Punctuated::<syn::Expr, Token![,]>::parse_terminated(&content).map_err(|e| not_names(e.span()))?;
            if items.is_empty() {
                errors.push(syn::Error::new(
                    parens.span.join(),
                    format!(
                        "`{}()` lists nothing\nhelp: name at least one, e.g. `{}`, or remove it",
                        key.name, key.example
                    ),
                ));
            }
            for item in items {
                match item {
                    syn::Expr::Path(p) if p.qself.is_none() => slots.requires.push(p.path),
                    other => errors.push(not_names(other.span())),
                }
            }
            Ok(())
        }
        (Form::List, _) => {
            errors.push(syn::Error::new(
                meta.path.span(),
                format!("`{}` takes a list in parentheses\nhelp: write `{}`", key.name, key.example),
            ));
            // `requires = Cap` still names a capability: kept for the stub impl.
            if written == FormWritten::Value {
                let value: syn::Expr = meta.value()?.parse()?;
                slots.requires.extend(path_of(&value));
                return Ok(());
            }
            skip(meta, written)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FormWritten {
    Word,
    Value,
    List,
}

impl FormWritten {
    fn of(meta: &ParseNestedMeta) -> Self {
        if meta.input.peek(Token![=]) {
            Self::Value
        } else if meta.input.peek(syn::token::Paren) {
            Self::List
        } else {
            Self::Word
        }
    }
}

/// Read past whatever the entry holds.
fn skip(meta: &ParseNestedMeta, written: FormWritten) -> syn::Result<()> {
    match written {
        FormWritten::Word => {}
        FormWritten::Value => {
            meta.value()?.parse::<syn::Expr>()?;
        }
        FormWritten::List => {
            let content;
            parenthesized!(content in meta.input);
            content.parse::<proc_macro2::TokenStream>()?;
        }
    }
    Ok(())
}

/// A path, or a string holding one.
fn path_of(value: &syn::Expr) -> Option<syn::Path> {
    match value {
        syn::Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => s.parse().ok(),
        _ => None,
    }
}

fn unknown(path: &syn::Path, shown: &str, place: Place) -> syn::Error {
    let hint = match crate::suggest::closest(shown, keys_at(place).map(|k| k.name)) {
        Some(k) => format!("help: did you mean `{k}`?"),
        None => {
            let all: Vec<String> = keys_at(place).map(|k| format!("`{}`", k.example)).collect();
            format!("help: the keys {} are {}", here(place), all.join(", "))
        }
    };
    syn::Error::new(path.span(), format!("unknown key `{shown}` in `#[score(..)]`\n{hint}"))
}

fn misplaced(path: &syn::Path, key: &Key) -> syn::Error {
    let help = match key.place {
        Place::Field => format!("help: put `#[score({})]` on the field it is about", key.example),
        Place::Struct => format!("help: put `#[score({})]` above the struct, under `#[derive(Score)]`", key.example),
    };
    syn::Error::new(
        path.span(),
        format!("`{}` goes {}, not {}\n{help}", key.name, here(key.place), here(other(key.place))),
    )
}

fn other(place: Place) -> Place {
    match place {
        Place::Struct => Place::Field,
        Place::Field => Place::Struct,
    }
}
