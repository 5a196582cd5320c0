//! `#[capability]` on a trait: mark it as a capability, register it, and let
//! the erased topology the CLI runs apps on (`AnyTopology`) forward each of
//! its methods to whichever topology was selected.
//!
//! Capabilities are called through `dyn`, so the trait must be dyn-compatible:
//! every method takes `&self`, has no type parameters, and returns a value
//! (futures as `BoxFuture`). Each rule broken is one error on the token.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let out = match try_expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        // The trait itself is kept, so that its uses do not add errors of their own.
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item);
            out
        }
    };
    crate::debug::maybe_print("#[capability]", &out);
    out
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let krate = parse_crate(attr)?;
    let item: syn::ItemTrait = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`#[capability]` goes on a trait\nhelp: write it above `pub trait YourCapability: harmony::Topology { … }`",
        )
    })?;
    validate(&item)?;
    let h = quote!(#krate::__private);
    let ident = &item.ident;
    let name = ident.to_string();
    let about = crate::score::doc_of(&item.attrs);
    let about = about.lines().next().unwrap_or_default().to_owned();
    if about.is_empty() {
        return Err(syn::Error::new(
            ident.span(),
            format!(
                "capability `{name}` has no doc comment\nhelp: say in a `///` line above the trait what it provides; `list` and `explain` show that line"
            ),
        ));
    }
    let forwards = item.items.iter().filter_map(|i| match i {
        syn::TraitItem::Fn(f) => Some(forward(&h, ident, f)),
        _ => None,
    });
    // Spanned on the trait's name, so that a trait without `Topology` above
    // it is an error there.
    let topologies_only = quote_spanned!(ident.span()=> #h::harmony_capability::<dyn #ident>(););
    Ok(quote! {
        #item

        const _: () = {
            const _: fn() = || {
                #topologies_only
            };

            #[automatically_derived]
            impl #h::IsCapability for dyn #ident {
                const NAME: &'static str = #name;
                const ABOUT: &'static str = #about;
            }

            #h::inventory::submit! {
                #h::CapabilityEntry { name: #name, about: #about }
            }

            // Not a topology a user picks: kept out of "other types implement" lists.
            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl #ident for #h::AnyTopology {
                #(#forwards)*
            }
        };
    })
}

/// `crate = path`, or nothing.
fn parse_crate(attr: TokenStream) -> syn::Result<syn::Path> {
    if attr.is_empty() {
        return Ok(syn::parse_quote!(::harmony));
    }
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = Some(meta.value()?.parse::<syn::Path>()?);
            Ok(())
        } else {
            let name = meta.path.get_ident().map_or_else(|| "it".to_owned(), |i| format!("`{i}`"));
            Err(meta.error(format!(
                "`#[capability]` takes no arguments but `crate = path`\nhelp: remove {name}; the capability's name is the trait's, and what it provides is said in its `///` doc comment"
            )))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(krate.unwrap_or_else(|| syn::parse_quote!(::harmony)))
}

/// The rules of dyn-compatibility, said for capabilities.
fn validate(item: &syn::ItemTrait) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    if let Some(p) = item.generics.params.first() {
        push(syn::Error::new(
            p.span(),
            "a capability has no type or lifetime parameters\nhelp: pass what varies as method arguments",
        ));
    }
    for i in &item.items {
        match i {
            syn::TraitItem::Fn(f) => {
                let sig = &f.sig;
                if let Some(a) = &sig.asyncness {
                    push(syn::Error::new(
                        a.span(),
                        "a capability method cannot be `async`: capabilities are called through `dyn`\nhelp: return `harmony::capability::BoxFuture<'a, T>` and write the body as `Box::pin(async move { … })`",
                    ));
                }
                if let Some(p) = sig.generics.params.iter().find(|p| !matches!(p, syn::GenericParam::Lifetime(_))) {
                    push(syn::Error::new(
                        p.span(),
                        "a capability method has no type parameters: capabilities are called through `dyn`\nhelp: take a concrete type, or `&dyn Trait`",
                    ));
                }
                match sig.receiver() {
                    Some(r) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
                    Some(r) => push(syn::Error::new(
                        r.span(),
                        "a capability method takes `&self`\nhelp: topologies are shared while Scores run; keep mutable state behind a lock",
                    )),
                    None => push(syn::Error::new(
                        sig.ident.span(),
                        "a capability method takes `&self`\nhelp: add `&self` as its first argument",
                    )),
                }
            }
            syn::TraitItem::Type(t) => push(syn::Error::new(
                t.span(),
                "a capability has no associated types: capabilities are called through `dyn`\nhelp: use a concrete type in the method signatures",
            )),
            syn::TraitItem::Const(c) => push(syn::Error::new(
                c.span(),
                "a capability has no associated constants: capabilities are called through `dyn`\nhelp: make it a method: `fn value(&self) -> T`",
            )),
            _ => {}
        }
    }
    errors.map_or(Ok(()), Err)
}

/// One method of `AnyTopology`'s impl: the same signature, handing the call
/// to the selected topology.
fn forward(h: &TokenStream, ident: &syn::Ident, f: &syn::TraitItemFn) -> TokenStream {
    let mut sig = f.sig.clone();
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        if let syn::FnArg::Typed(pt) = input {
            let arg = format_ident!("__harmony_arg{i}");
            *pt.pat = syn::parse_quote!(#arg);
            args.push(arg);
        }
    }
    let method = &sig.ident;
    quote_spanned! {f.span()=>
        #sig {
            <dyn #ident as #ident>::#method(#h::AnyTopology::capability::<dyn #ident>(self), #(#args),*)
        }
    }
}
