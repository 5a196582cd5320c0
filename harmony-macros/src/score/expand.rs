//! Code generation for `#[derive(Score)]`. Everything here was validated
//! before; generated code names the runtime only through `__private`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::attrs::{ScoreField, ScoreInput, doc};
use crate::spans::respan;

pub(crate) fn expand(input: &ScoreInput) -> TokenStream {
    let krate = input.krate();
    let h = quote!(#krate::__private);
    let ident = &input.ident;
    let topo = topology_param(&input.generics, &input.fields);

    // Bounds on the topology: a leaf deploys through `K8sDeploy`; a composite
    // needs exactly what its children need; `requires(..)` adds to either.
    let mut bounds: Vec<TokenStream> = Vec::new();
    bounds.push(quote!(#topo: #h::Topology));
    if !input.is_composite() {
        bounds.push(quote!(#topo: #h::K8sDeploy));
    }
    for cap in input.requires.iter() {
        bounds.push(quote_spanned!(cap.span()=> #topo: #cap));
    }
    for child in input.children() {
        let ty = &child.ty;
        bounds.push(respan(quote!(#ty: #h::Score<#topo>), ty.span()));
    }

    let mut generics = input.generics.clone();
    generics.params.insert(0, syn::parse_quote!(#topo));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect())
        .unwrap_or_default();
    predicates.extend(bounds);
    predicates.extend(thread_safe(&h, &input.generics));
    predicates.extend(renders_when(input, &h));
    let (score, interpret) = user_spanned_traits(&h, &topo, ident);

    let requires_fn = requires_fn(&h, input.requires.iter());

    let (render_body, execute_body) = if input.is_composite() {
        composite_bodies(input, &h, &topo)
    } else {
        leaf_bodies(input, &h, &topo)
    };

    let registration = registration(input, &h);
    let is_score = is_score(input, &h, &render_body);
    let rules = type_rules(input, &h);

    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #score for #ident #ty_generics where #(#predicates,)* {}

            #[automatically_derived]
            impl #impl_generics #interpret for #ident #ty_generics where #(#predicates,)* {
                fn execute<'__a>(
                    &'__a self,
                    topology: &'__a #topo,
                    run: &'__a mut #h::Run,
                ) -> impl #h::Future<Output = #h::Result<(), #h::InterpretError>> + ::core::marker::Send + '__a {
                    async move { #execute_body }
                }
            }

            // A child that is not a Score is an error where the field is
            // written, by `IsScore::needs` asking it what it needs.
            #is_score

            #requires_fn

            #rules

            #registration
        };
    }
}

/// The `IsScore` marker, which also says what the Score tree needs, from its
/// types: a leaf's `K8sDeploy` and `requires(..)`, a composite's children's.
fn is_score(input: &ScoreInput, h: &TokenStream, render: &TokenStream) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect())
        .unwrap_or_default();
    predicates.extend(renders_when(input, h));
    let mut needs: Vec<TokenStream> = Vec::new();
    if input.is_composite() {
        for child in input.children() {
            let ty = &child.ty;
            // A generic child needs the bound to be asked; a concrete one that is
            // not a Score is one error, here, on the field's type.
            if !input.generics.params.is_empty() {
                predicates.push(quote_spanned!(ty.span()=> #ty: #h::IsScore));
            }
            needs.push(quote_spanned!(ty.span()=> <#ty as #h::IsScore>::needs(out);));
        }
    } else {
        needs.push(quote!(out.push(<dyn #h::K8sDeploy as #h::IsCapability>::NAME);));
    }
    needs.push(quote!(out.extend(__harmony_requires());));
    // Spanned on the struct's name, as `Score` is (`user_spanned_traits`).
    let is_score = respan(quote!(#h::IsScore), ident.span());
    quote! {
        #[automatically_derived]
        impl #impl_generics #is_score for #ident #ty_generics where #(#predicates,)* {
            fn needs(out: &mut #h::Vec<&'static str>) {
                #(#needs)*
            }

            fn render_tree(&self, cx: &#h::RenderCx) -> #h::Result<#h::Desired, #h::ScoreError> {
                #render
            }
        }
    }
}

/// A generic leaf is a Score wherever it renders: `impl<L: AsRef<str>> Render
/// for Labelled<L>` makes `Labelled<L>` a Score for those `L` only, as
/// `derive(Clone)` bounds what it derives, so the struct compiles as written
/// and a use with another `L` is an error where it is used. A Score without
/// type parameters must render, checked where it is declared.
fn renders_when(input: &ScoreInput, h: &TokenStream) -> Option<TokenStream> {
    if input.is_composite() || input.generics.type_params().next().is_none() {
        return None;
    }
    let ident = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    Some(respan(quote!(#ident #ty_generics: #h::Render), ident.span()))
}

/// A Score is deployed from any thread: each of its type parameters must be
/// `Send + Sync` (`SendAndSync`), added to the impls as `derive(Clone)` adds
/// `Clone`, so that a generic Score compiles as written and a use with a type
/// that is not thread-safe is one error where it is used.
fn thread_safe(h: &TokenStream, generics: &syn::Generics) -> Vec<TokenStream> {
    generics
        .type_params()
        .map(|p| {
            let ident = &p.ident;
            respan(quote!(#ident: #h::SendAndSync), ident.span())
        })
        .collect()
}

/// `Score<T>` and `Interpret<T>` as the impls name them, spanned on the
/// struct's name: rustc then reads the impls as the user's, and its notes
/// about an unmet bound stop advising to implement `Score` by hand.
fn user_spanned_traits(h: &TokenStream, topo: &syn::Ident, ident: &syn::Ident) -> (TokenStream, TokenStream) {
    let respan = |tokens: TokenStream| respan(tokens, ident.span());
    (respan(quote!(#h::Score<#topo>)), respan(quote!(#h::Interpret<#topo>)))
}

/// The rules the types must follow, each an error at the user's token:
/// a `secret` field is a `harmony::Secret<_>` (checked by trait, so another
/// type named `Secret` is refused); a Score with children has no `Render` of
/// its own (which would never run); `requires(..)` names each capability
/// once, however it is spelled.
fn type_rules(input: &ScoreInput, h: &TokenStream) -> TokenStream {
    let secrets: Vec<TokenStream> = input
        .fields()
        .iter()
        .filter(|f| f.secret.is_some())
        .map(|f| {
            let ty = &f.ty;
            quote_spanned!(ty.span()=> #h::score_secret::<#ty>();)
        })
        .collect();
    let secrets = (!secrets.is_empty()).then(|| {
        quote! {
            #[allow(clippy::redundant_closure)]
            const _: fn() = || {
                #(#secrets)*
            };
        }
    });
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let ident = &input.ident;
    // A known type is asked in our words; a generic one is left to coherence.
    let no_render = input.children().next().and_then(|c| c.child).map(|child| {
        if input.generics.params.is_empty() {
            quote_spanned! {child=>
                const _: fn() = || {
                    #[allow(unused_imports)]
                    use #h::{ChildFieldsOnly as _, score_child as _};
                    (&#h::Asked::<#ident>::NEW).without_impl_Render();
                };
            }
        } else {
            quote_spanned! {child=>
                #[automatically_derived]
                impl #impl_generics #h::a_Score_with_child_fields_has_no_impl_Render for #ident #ty_generics #where_clause {}
            }
        }
    });
    let requires: Vec<_> = input
        .requires
        .iter()
        .map(|cap| (quote!(dyn #cap), crate::spans::last_segment(cap)))
        .collect();
    let once = crate::once::each(h, &requires, &quote!(each_capability_once));
    quote! {
        #secrets
        #no_render
        #once
    }
}

/// `__harmony_requires()`: the names of the capabilities `requires(..)`
/// lists. Asking `harmony::checks::requires` for each is also the check
/// that `requires(..)` names capabilities and nothing else: one error per
/// wrong name, on it. `IsScore::needs` and the registry entry both call it.
fn requires_fn<'p>(h: &TokenStream, requires: impl Iterator<Item = &'p syn::Path>) -> TokenStream {
    let names: Vec<TokenStream> = requires
        .map(|cap| quote_spanned!(cap.span()=> #h::requires::<dyn #cap>()))
        .collect();
    quote! {
        fn __harmony_requires() -> #h::Vec<&'static str> {
            #h::Vec::from([#(#names),*])
        }
    }
}

fn leaf_bodies(input: &ScoreInput, h: &TokenStream, topo: &syn::Ident) -> (TokenStream, TokenStream) {
    // Spanned on the struct's name: a leaf without `impl Render` is an error there.
    let render_fn = respan(quote!(<Self as #h::Render>::render), input.ident.span());
    let render = quote!(cx.part(#render_fn(self, cx)));
    // The topology's verification always runs; a Score's own smoke test runs
    // after it, in addition, never instead.
    let smoke = match &input.smoke {
        Some(smoke) => smoke_call(smoke, h, topo),
        None => quote!(::core::result::Result::Ok(())),
    };
    let at = score_at(input, h);
    let execute = quote! {
        run.in_score(#at);
        let desired = run.desired(|cx| #render_fn(self, cx))?;
        run.deploy(topology, &desired).await?;
        run.verify(topology, &desired).await?;
        #smoke
    };
    (render, execute)
}

fn composite_bodies(input: &ScoreInput, h: &TokenStream, topo: &syn::Ident) -> (TokenStream, TokenStream) {
    let children: Vec<_> = input.children().map(|f| (f.ident.as_ref().expect("named fields"), &f.ty)).collect();
    let renders = children.iter().map(|(name, ty)| {
        let label = name.to_string();
        quote! {
            desired.extend_child(#label, <#ty as #h::IsScore>::render_tree(&self.#name, cx)?);
        }
    });
    let render = quote! {
        let mut desired = #h::Desired::new();
        #(#renders)*
        ::core::result::Result::Ok(desired)
    };
    let steps = children.iter().map(|(name, ty)| {
        let label = name.to_string();
        quote! {
            run.enter(#label);
            let result = <#ty as #h::Interpret<#topo>>::execute(&self.#name, topology, run).await;
            run.leave();
            result?;
        }
    });
    let check = match &input.smoke {
        Some(smoke) => {
            let at = score_at(input, h);
            let call = smoke_call(smoke, h, topo);
            quote! {
                run.in_score(#at);
                #call
            }
        }
        None => quote!(::core::result::Result::Ok(())),
    };
    let execute = quote! {
        #(#steps)*
        #check
    };
    (render, execute)
}

/// The Score's type and declaration, for a failure in its steps to point at.
fn score_at(input: &ScoreInput, h: &TokenStream) -> TokenStream {
    let name = input.ident.to_string();
    let line = quote_spanned!(input.ident.span()=> ::core::line!());
    quote!(&#h::ScoreAt { name: #name, file: ::core::file!(), line: #line })
}

/// `run.smoke(..)` on the future of the user's smoke test, called through
/// `harmony::checks::SmokeFn` so that a function of another shape is one
/// error that says which shape it needs, spanned on the `smoke = ..` path.
fn smoke_call(smoke: &syn::Path, h: &TokenStream, topo: &syn::Ident) -> TokenStream {
    // Picked by autoref (`harmony::checks::smoke`): a function of another
    // shape is the `score_smoke` error at the path's last segment. One taking
    // a single topology (`&Local`) is still rustc's signature mismatch (ADR
    // 0016). The picking call spans the path, where rustc puts either error.
    let (first, last) = (smoke.span(), crate::spans::last_segment(smoke));
    let picked = quote_spanned!(first=> (&#h::SmokeFn(#smoke)));
    let pick = respan(quote!(.takes_self_and_any_topology()), last);
    let call = quote_spanned! {first=> {
        #[allow(unused_imports)]
        use #h::{smoke_of_another_shape as _, SmokeOfTheRightShape as _};
        #h::smoke_for_any_topology::<'_, Self, #topo>::call(#picked #pick, self, topology)
    }};
    quote!(run.smoke(#call).await)
}

/// The registry entry; generic Scores have no single type to register.
fn registration(input: &ScoreInput, h: &TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let docs = doc(&input.attrs);
    let smoke = match &input.smoke {
        Some(p) => {
            let s = p.to_token_stream().to_string().replace(' ', "");
            quote!(::core::option::Option::Some(#s))
        }
        None => quote!(::core::option::Option::None),
    };
    let fields = input.fields().iter().map(|f| {
        let fname = f.ident.as_ref().map(ToString::to_string).unwrap_or_default();
        let ty = f.ty.to_token_stream().to_string().replace(' ', "").replace(',', ", ");
        let fdoc = doc(&f.attrs);
        let (child, secret) = (f.child.is_some(), f.secret.is_some());
        quote!(#h::FieldInfo { name: #fname, ty: #ty, doc: #fdoc, child: #child, secret: #secret })
    });
    let line = quote_spanned!(ident.span()=> ::core::line!());
    quote! {
        #h::inventory::submit! {
            #h::ScoreEntry {
                name: #name,
                module: ::core::module_path!(),
                doc: #docs,
                location: #h::Location { file: ::core::file!(), line: #line },
                requires: __harmony_requires,
                fields: &[#(#fields),*],
                smoke: #smoke,
                needs: #h::needs::<#ident>,
            }
        }
    }
}

/// After an error: a stub impl so that uses of the type elsewhere do not add
/// a cascade of "`X` is not a Score" errors to the real one. It honours
/// `crate = ..` and still checks what `requires(..)` names, so that those
/// names are neither unresolved nor reported as unused imports.
pub(crate) fn fallback(input: &syn::DeriveInput, parsed: &ScoreInput) -> TokenStream {
    let ident = &input.ident;
    let (krate, requires) = (parsed.krate(), &parsed.requires);
    let h = quote!(#krate::__private);
    let topo = topology_param(&input.generics, &parsed.fields);
    let mut generics = input.generics.clone();
    generics.params.insert(0, syn::parse_quote!(#topo: #h::Topology));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    if !matches!(&input.data, syn::Data::Struct(_)) {
        return TokenStream::new();
    }
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect())
        .unwrap_or_default();
    predicates.extend(thread_safe(&h, &input.generics));
    let mut unique: Vec<&syn::Path> = Vec::new();
    for cap in requires {
        if !unique.contains(&cap) {
            unique.push(cap);
        }
    }
    let requires_fn = requires_fn(&h, unique.into_iter());
    let (marker_generics, _, _) = input.generics.split_for_impl();
    quote! {
        const _: () = {
            impl #impl_generics #h::Score<#topo> for #ident #ty_generics where #(#predicates,)* {}
            impl #impl_generics #h::Interpret<#topo> for #ident #ty_generics where #(#predicates,)* {
                async fn execute(&self, _: &#topo, _: &mut #h::Run) -> #h::Result<(), #h::InterpretError> {
                    ::core::panic!("this Score failed to derive; see the compile error")
                }
            }
            impl #marker_generics #h::IsScore for #ident #ty_generics #where_clause {
                fn needs(_: &mut #h::Vec<&'static str>) {}
                fn render_tree(&self, _: &#h::RenderCx) -> #h::Result<#h::Desired, #h::ScoreError> {
                    ::core::panic!("this Score failed to derive; see the compile error")
                }
            }
            #requires_fn
        };
    }
}

/// The name of the topology parameter of the generated impls, as rustc's
/// notes show it (`Score<T>`): `T`, unless the struct's generics or its field
/// types already use that name.
fn topology_param(generics: &syn::Generics, fields: &[ScoreField]) -> syn::Ident {
    fn idents(tokens: TokenStream, out: &mut Vec<String>) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(i) => out.push(i.to_string()),
                proc_macro2::TokenTree::Group(g) => idents(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut used = Vec::new();
    idents(generics.to_token_stream(), &mut used);
    for f in fields {
        idents(f.ty.to_token_stream(), &mut used);
    }
    let taken = |name: &str| used.iter().any(|u| u == name);
    let name = ["T", "Topo", "Topology"]
        .into_iter()
        .find(|n| !taken(n))
        .unwrap_or("__HarmonyTopology");
    syn::Ident::new(name, Span::call_site())
}
