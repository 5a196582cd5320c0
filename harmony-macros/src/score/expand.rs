//! Code generation for `#[derive(Score)]`. Everything here was validated
//! before; generated code names the runtime only through `__private`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::attrs::{ScoreInput, doc};

pub(crate) fn expand(input: &ScoreInput) -> TokenStream {
    let krate = input.krate();
    let h = quote!(#krate::__private);
    let ident = &input.ident;
    let topo = syn::Ident::new("__T", Span::call_site());

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
        bounds.push(quote_spanned!(ty.span()=> #ty: #h::Score<#topo>));
    }

    let mut generics = input.generics.clone();
    generics.params.insert(0, syn::parse_quote!(#topo));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause.map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect()).unwrap_or_default();
    predicates.extend(bounds);

    let capability_checks = input.requires.iter().map(|cap| quote_spanned!(cap.span()=> #h::is_capability::<dyn #cap>();));

    let (render_body, execute_body) = if input.is_composite() {
        composite_bodies(input, &h, &topo)
    } else {
        leaf_bodies(input, &h)
    };

    let registration = registration(input, &h);

    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #h::Score<#topo> for #ident #ty_generics where #(#predicates,)* {
                fn render(&self, cx: &#h::RenderCx) -> #h::Result<#h::Desired, #h::ScoreError> {
                    #render_body
                }
            }

            #[automatically_derived]
            impl #impl_generics #h::Interpret<#topo> for #ident #ty_generics where #(#predicates,)* {
                fn execute<'__a>(
                    &'__a self,
                    topology: &'__a #topo,
                    run: &'__a mut #h::Run,
                ) -> impl #h::Future<Output = #h::Result<(), #h::InterpretError>> + ::core::marker::Send + '__a {
                    async move { #execute_body }
                }
            }

            const _: () = { #(#capability_checks)* };

            #registration
        };
    }
}

fn leaf_bodies(input: &ScoreInput, h: &TokenStream) -> (TokenStream, TokenStream) {
    let render = quote!(<Self as #h::Render>::render(self, cx));
    let check = match &input.smoke {
        Some(smoke) => quote_spanned!(smoke.span()=> run.smoke(#smoke(self, topology)).await),
        None => quote!(run.verify(topology, &desired).await),
    };
    let execute = quote! {
        let desired = run.rendered(<Self as #h::Render>::render(self, run.render_cx()))?;
        run.deploy(topology, &desired).await?;
        #check
    };
    (render, execute)
}

fn composite_bodies(input: &ScoreInput, h: &TokenStream, topo: &syn::Ident) -> (TokenStream, TokenStream) {
    let children: Vec<_> = input.children().map(|f| (f.ident.as_ref().expect("named fields"), &f.ty)).collect();
    let renders = children.iter().map(|(name, ty)| quote! {
        desired.extend(<#ty as #h::Score<#topo>>::render(&self.#name, cx)?);
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
        Some(smoke) => quote_spanned!(smoke.span()=> run.smoke(#smoke(self, topology)).await),
        None => quote!(::core::result::Result::Ok(())),
    };
    let execute = quote! {
        #(#steps)*
        #check
    };
    (render, execute)
}

/// The registry entry; generic Scores have no single type to register.
fn registration(input: &ScoreInput, h: &TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let docs = doc(&input.attrs);
    let requires = input.requires.iter().map(|p| p.segments.last().map(|s| s.ident.to_string()).unwrap_or_default());
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
        let (child, secret) = (f.child.is_present(), f.secret.is_present());
        quote!(#h::FieldInfo { name: #fname, ty: #ty, doc: #fdoc, child: #child, secret: #secret })
    });
    let line = quote_spanned!(ident.span()=> ::core::line!());
    quote! {
        fn __harmony_topologies() -> #h::Vec<&'static str> {
            #h::score_topologies!(#ident)
        }
        #h::inventory::submit! {
            #h::ScoreEntry {
                name: #name,
                module: ::core::module_path!(),
                doc: #docs,
                location: #h::Location { file: ::core::file!(), line: #line },
                requires: &[#(#requires),*],
                fields: &[#(#fields),*],
                smoke: #smoke,
                topologies: __harmony_topologies,
            }
        }
    }
}

/// After an error: a stub impl so that uses of the type elsewhere do not add
/// a cascade of "`X` is not a Score" errors to the real one.
pub(crate) fn fallback(input: &syn::DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let krate: syn::Path = syn::parse_quote!(::harmony);
    let h = quote!(#krate::__private);
    let mut generics = input.generics.clone();
    generics.params.insert(0, syn::parse_quote!(__T: #h::Topology));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    if !matches!(&input.data, syn::Data::Struct(_)) {
        return TokenStream::new();
    }
    quote! {
        const _: () = {
            impl #impl_generics #h::Score<__T> for #ident #ty_generics #where_clause {
                fn render(&self, _: &#h::RenderCx) -> #h::Result<#h::Desired, #h::ScoreError> {
                    ::core::panic!("this Score failed to derive; see the compile error")
                }
            }
            impl #impl_generics #h::Interpret<__T> for #ident #ty_generics #where_clause {
                async fn execute(&self, _: &__T, _: &mut #h::Run) -> #h::Result<(), #h::InterpretError> {
                    ::core::panic!("this Score failed to derive; see the compile error")
                }
            }
        };
    }
}
