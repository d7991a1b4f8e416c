//! Emitting the task's items: the body's marker type and its `Body` impl (which holds the
//! body as an ordinary `async fn`), the task type alias, the constructor and, with `pool`,
//! the pool.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, GenericParam, Generics, Ident, ItemFn, LitStr};

use super::parse::{Args, DEFAULT_GENERIC_SIZE};
use super::signature::Signature;
use super::track::Point;

/// Where the generated items take the function's attributes.
struct Attrs<'a> {
    /// `#[cfg]`: every item.
    all: Vec<&'a Attribute>,
    /// Docs, `must_use`, `inline`, `deprecated`, ...: the constructor.
    ctor: Vec<&'a Attribute>,
    /// Lints (but `expect`), `cfg_attr`: the constructor and the body.
    both: Vec<&'a Attribute>,
    /// `expect` and attributes of other crates: the body.
    body: Vec<&'a Attribute>,
}

fn split_attrs(attrs: &[Attribute]) -> Attrs<'_> {
    let mut out = Attrs {
        all: Vec::new(),
        ctor: Vec::new(),
        both: Vec::new(),
        body: Vec::new(),
    };
    for a in attrs {
        let path = a.path();
        let name = path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        match name.as_str() {
            "cfg" => out.all.push(a),
            "doc" | "must_use" | "inline" | "cold" | "deprecated" | "track_caller" => {
                out.ctor.push(a)
            }
            "allow" | "warn" | "deny" | "forbid" | "cfg_attr" => out.both.push(a),
            _ => out.body.push(a),
        }
    }
    out
}

pub struct Task<'a> {
    pub f: &'a ItemFn,
    pub sig: &'a Signature,
    pub args: &'a Args,
    pub type_name: &'a Ident,
    /// The marker whose constant is the table of `.await`s.
    pub awaits: &'a Ident,
    pub points: &'a [Point],
}

pub fn task(t: &Task<'_>) -> TokenStream {
    let f = t.f;
    let sig = t.sig;
    let fn_name = &f.sig.ident;
    let fn_str = fn_name.to_string().trim_start_matches("r#").to_string();
    let vis = &f.vis;
    let type_name = t.type_name;
    let awaits = t.awaits;
    let body_name = format_ident!("__{}Body", type_name);
    let attrs = split_attrs(&f.attrs);
    let all = &attrs.all;
    let ctor_attrs = &attrs.ctor;
    let both = &attrs.both;

    let generics = &sig.generics;
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let struct_params = &generics.params;
    let struct_where = &generics.where_clause;
    let phantom = phantom(generics);
    let alias_params = alias_params(generics);
    let out = &sig.output;

    let idents: Vec<&Ident> = sig.params.iter().map(|p| &p.ident).collect();
    let tys: Vec<&syn::Type> = sig.params.iter().map(|p| &p.ty).collect();

    // The body, as the `async fn` it was written as (its `.await`s numbered).
    let mut inner = f.clone();
    inner.attrs = attrs
        .both
        .iter()
        .chain(&attrs.body)
        .map(|a| (*a).clone())
        .collect();
    inner.vis = syn::Visibility::Inherited;
    // The arguments by position: a parameter may share the function's name.
    let fields: Vec<TokenStream> = (0..sig.params.len())
        .map(|i| {
            let i = syn::Index::from(i);
            quote!(args.#i)
        })
        .collect();
    let turbofish: Vec<TokenStream> = sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.clone()),
            GenericParam::Const(c) => Some(c.ident.clone()),
            GenericParam::Lifetime(_) => None,
        })
        .map(|i| quote!(#i))
        .collect();
    let written_type_params = f
        .sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)));
    let call = if sig.impl_trait_args && written_type_params {
        // `impl Trait` arguments forbid a turbofish, and a type parameter that only the
        // return type names needs one: give the body the nameable signature.
        inner.sig.generics = sig.generics.clone();
        for (input, p) in inner.sig.inputs.iter_mut().zip(&sig.params) {
            if let syn::FnArg::Typed(pt) = input {
                *pt.ty = p.ty.clone();
            }
        }
        quote!(#fn_name::<#(#turbofish),*>(#(#fields),*))
    } else if sig.impl_trait_args || turbofish.is_empty() {
        quote!(#fn_name(#(#fields),*))
    } else {
        quote!(#fn_name::<#(#turbofish),*>(#(#fields),*))
    };

    let points = t.points.iter().map(|p| {
        let line = p.line as u32;
        let column = p.column as u32;
        let expr = LitStr::new(&p.expr, Span::call_site());
        quote! {
            ::iomgr::task::AwaitPoint {
                task: #fn_str,
                file: ::core::file!(),
                line: #line,
                column: #column,
                expr: #expr,
            }
        }
    });

    let (size, align) = match (t.args.size, sig.generic) {
        (None, false) => {
            // Exact: computed from the body's future, with every lifetime 'static (a layout
            // does not depend on lifetimes, and a type-level constant may not name them).
            let statics = generics.params.iter().map(|_| quote!('static));
            let concrete = quote!(#body_name<#(#statics),*>);
            (
                quote!({ ::iomgr::task::__private::size_of_body::<#concrete>() }),
                quote!({ ::iomgr::task::__private::align_of_body::<#concrete>() }),
            )
        }
        (size, _) => {
            let n = size.map_or(DEFAULT_GENERIC_SIZE, |(n, _)| n);
            (quote!(#n), quote!(16))
        }
    };

    let alias_doc = format!(
        "The future of the task [`{fn_str}`]({fn_str}()), declared by `#[iomgr::task]`: a named type of constant size that holds the `async fn`'s future inline."
    );

    let pool = t.args.pool.map(|(n, _)| {
        quote! {
            #(#all)*
            impl ::iomgr::task::__private::Pooled<#type_name> for #body_name {
                fn spawn(
                    task: #type_name,
                ) -> ::core::result::Result<
                    ::iomgr::task::PoolJoinHandle<#out>,
                    ::iomgr::task::SpawnError,
                > {
                    ::std::thread_local! {
                        static POOL: ::core::mem::ManuallyDrop<
                            ::iomgr::task::__private::Pool<#type_name, #n>,
                        > = const {
                            ::core::mem::ManuallyDrop::new(::iomgr::task::__private::Pool::new())
                        };
                    }
                    ::iomgr::task::__private::spawn_pooled(&POOL, task, #fn_str)
                }
            }
        }
    });

    quote! {
        #(#all)*
        #[doc(hidden)]
        #[allow(dead_code, non_camel_case_types, missing_debug_implementations)]
        #vis struct #body_name <#struct_params> (::core::marker::PhantomData<#phantom>) #struct_where;

        #(#all)*
        #[doc(hidden)]
        #[allow(dead_code, non_camel_case_types, missing_debug_implementations)]
        #vis struct #awaits;

        #(#all)*
        impl ::iomgr::task::__private::AwaitTable for #awaits {
            const AWAITS: &'static [::iomgr::task::AwaitPoint] = &[#(#points),*];
        }

        #(#all)*
        impl #impl_g ::iomgr::task::__private::Body for #body_name #ty_g #where_c {
            type Args = (#(#tys,)*);
            type Output = #out;
            const NAME: &'static str = #fn_str;
            type Awaits = #awaits;
            #[inline]
            fn call(args: Self::Args) -> impl ::core::future::Future<Output = Self::Output> {
                #inner
                #call
            }
        }

        #(#all)*
        #[doc = #alias_doc]
        #vis type #type_name <#(#alias_params),*> =
            ::iomgr::task::Task<#body_name #ty_g, #size, #align>;

        #(#all)*
        #(#ctor_attrs)*
        #(#both)*
        #vis fn #fn_name #impl_g (#(#idents: #tys),*) -> #type_name #ty_g #where_c {
            ::iomgr::task::Task::new((#(#idents,)*))
        }

        #pool
    }
}

/// `PhantomData`'s parameter for the marker: invariant in every lifetime and type.
fn phantom(generics: &Generics) -> TokenStream {
    let parts: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => {
                let id = &t.ident;
                Some(quote!(*const #id))
            }
            GenericParam::Lifetime(l) => {
                let lt = &l.lifetime;
                Some(quote!(&#lt ()))
            }
            GenericParam::Const(_) => None,
        })
        .collect();
    quote!(fn(#(#parts,)*) -> (#(#parts,)*))
}

/// The alias's parameters: the generics without bounds or defaults.
fn alias_params(generics: &Generics) -> Vec<TokenStream> {
    generics
        .params
        .iter()
        .map(|p| match p {
            GenericParam::Type(t) => {
                let id = &t.ident;
                quote!(#id)
            }
            GenericParam::Lifetime(l) => {
                let lt = &l.lifetime;
                quote!(#lt)
            }
            GenericParam::Const(c) => {
                let id = &c.ident;
                let ty = &c.ty;
                quote!(const #id: #ty)
            }
        })
        .collect()
}

/// What is emitted when the macro reports errors: the errors, plus a task type and a
/// constructor of the right shape, so that only the real errors show.
pub fn degraded(
    f: &ItemFn,
    sig: &Signature,
    type_name: &Ident,
    errors: TokenStream,
) -> TokenStream {
    let fn_name = &f.sig.ident;
    let vis = &f.vis;
    let generics = &sig.generics;
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let out = &sig.output;
    let phantom = phantom(generics);
    let attrs = split_attrs(&f.attrs);
    let all = &attrs.all;
    let ctor_attrs = &attrs.ctor;
    let idents: Vec<&Ident> = sig.params.iter().map(|p| &p.ident).collect();
    let tys: Vec<&syn::Type> = sig.params.iter().map(|p| &p.ty).collect();
    quote! {
        #errors
        #(#all)*
        #[allow(dead_code)]
        #vis struct #type_name #impl_g #where_c {
            __iomgr_marker: ::core::marker::PhantomData<(#phantom, ::core::marker::PhantomPinned)>,
        }
        #(#all)*
        impl #impl_g ::core::future::Future for #type_name #ty_g #where_c {
            type Output = #out;
            fn poll(
                self: ::core::pin::Pin<&mut Self>,
                _: &mut ::core::task::Context<'_>,
            ) -> ::core::task::Poll<#out> {
                ::core::unimplemented!()
            }
        }
        #(#all)*
        #(#ctor_attrs)*
        #[allow(unused_variables)]
        #vis fn #fn_name #impl_g (#(#idents: #tys),*) -> #type_name #ty_g #where_c {
            ::core::unimplemented!()
        }
    }
}
