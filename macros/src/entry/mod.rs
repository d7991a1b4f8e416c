//! `#[iomgr::main]` and `#[iomgr::test]`: an `async fn` run on a new runtime.
//!
//! Both build a `Runtime` with the options written in the attribute and `block_on` the body,
//! which stays an `async` block as written (`return`, `?` and `.await` mean what they mean in
//! the `async fn`). `main` reports a runtime that cannot start (io_uring disabled, too old a
//! kernel, a bad ring size) as an error, never a panic: through its `Result`, or on stderr
//! with exit status 1. A test fails with the same message.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Lit, ReturnType, Token, Type};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Test => "test",
        }
    }
}

/// One `key = value` of the attribute.
struct Opt {
    key: Ident,
    value: Lit,
}

impl Parse for Opt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.parse()?;
        input.parse::<Token![=]>()?;
        Ok(Opt {
            key,
            value: input.parse()?,
        })
    }
}

/// The builder options an attribute may set: name, and whether it takes a number (else a bool).
const OPTIONS: &[(&str, bool)] = &[
    ("entries", true),
    ("cq_entries", true),
    ("single_issuer", false),
    ("defer_taskrun", false),
    ("coop_taskrun", false),
];

fn usage(kind: Kind) -> String {
    format!(
        "the options of `#[iomgr::{}]` are `entries = <n>`, `cq_entries = <n>`, `single_issuer = <bool>`, `defer_taskrun = <bool>` and `coop_taskrun = <bool>`",
        kind.name()
    )
}

pub fn entry(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut setters = Vec::new();
    match syn::parse::Parser::parse2(Punctuated::<Opt, Token![,]>::parse_terminated, attr) {
        Ok(opts) => {
            for o in opts {
                let key = o.key.to_string();
                match OPTIONS.iter().find(|(name, _)| *name == key) {
                    None => errors.push(syn::Error::new(
                        o.key.span(),
                        format!("unknown option `{key}`; {}", usage(kind)),
                    )),
                    Some((_, numeric)) => {
                        let ok = matches!(
                            (&o.value, numeric),
                            (Lit::Int(_), true) | (Lit::Bool(_), false)
                        );
                        if !ok {
                            let want = if *numeric {
                                "a number"
                            } else {
                                "`true` or `false`"
                            };
                            errors.push(syn::Error::new(
                                o.value.span(),
                                format!("`{key}` takes {want}"),
                            ));
                        }
                        let (k, v) = (&o.key, &o.value);
                        setters.push(quote!(.#k(#v)));
                    }
                }
            }
        }
        Err(e) => errors.push(syn::Error::new(e.span(), format!("{e}; {}", usage(kind)))),
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                format!(
                    "`#[iomgr::{0}]` goes on an `async fn`: write `#[iomgr::{0}] async fn name() {{ ... }}`",
                    kind.name()
                ),
            )
            .to_compile_error();
            return quote!(#e #item);
        }
    };
    check(kind, &f, &mut errors);
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        None => expand(kind, f, &setters),
        Some(e) => degraded(f, e.to_compile_error()),
    }
}

/// The errors, and an item that lets the rest of the crate compile without more errors: a
/// method stays as written; a function keeps its name and return type, not its body.
fn degraded(f: ItemFn, errors: TokenStream) -> TokenStream {
    if f.sig.receiver().is_some() {
        return quote!(#errors #f);
    }
    let ItemFn {
        attrs, vis, sig, ..
    } = f;
    let ident = &sig.ident;
    let output = &sig.output;
    quote! {
        #errors
        #(#attrs)*
        #[allow(dead_code)]
        #vis fn #ident() #output {
            ::core::unimplemented!()
        }
    }
}

fn check(kind: Kind, f: &ItemFn, errors: &mut Vec<syn::Error>) {
    let sig = &f.sig;
    let what = kind.name();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "`#[iomgr::{what}]` runs an `async fn` on a new runtime: write `async fn {}`",
                sig.ident
            ),
        ));
    }
    if let Some(r) = sig.receiver() {
        errors.push(syn::Error::new(
            r.span(),
            format!("`#[iomgr::{what}]` goes on a free function, not a method"),
        ));
    } else if !sig.inputs.is_empty() {
        let msg = match kind {
            Kind::Main => "`main` takes no arguments: read them with `std::env::args()`",
            Kind::Test => "a test takes no arguments",
        };
        errors.push(syn::Error::new(sig.inputs.span(), msg));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            format!("`#[iomgr::{what}]` cannot be generic"),
        ));
    }
    if kind == Kind::Main && sig.ident != "main" {
        errors.push(syn::Error::new(
            sig.ident.span(),
            format!(
                "`#[iomgr::main]` goes on `async fn main`; for `{}` use `#[iomgr::test]` or call `iomgr::Runtime::new()?.block_on(...)`",
                sig.ident
            ),
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new(c.span, "remove `const`"));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new(u.span, "remove `unsafe`"));
    }
}

/// Whether the written return type is a `Result` (its last path segment is `Result`).
fn returns_result(ret: &ReturnType) -> bool {
    match ret {
        ReturnType::Type(_, t) => match &**t {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn expand(kind: Kind, f: ItemFn, setters: &[TokenStream]) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = f;
    let ident = &sig.ident;
    let output = &sig.output;
    let ret_ty: TokenStream = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => t.to_token_stream(),
    };
    let span = sig.ident.span();
    let start = quote_spanned! {span=>
        ::iomgr::Builder::new() #(#setters)* .build()
    };
    let failed = match kind {
        Kind::Test => quote! {
            ::core::panic!("iomgr: cannot start a runtime for this test: {}", error)
        },
        Kind::Main if returns_result(output) => quote_spanned! {span=>
            return ::core::result::Result::Err(::iomgr::runtime::__entry::start_error(error))
        },
        Kind::Main => quote!(::iomgr::runtime::__entry::start_failed(error)),
    };
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    quote! {
        #test_attr
        #(#attrs)*
        #vis fn #ident() #output {
            let runtime = match #start {
                ::core::result::Result::Ok(runtime) => runtime,
                ::core::result::Result::Err(error) => #failed,
            };
            // `with_output` gives the block its output type before the body is checked, so
            // `?` converts into it, as in the `async fn`.
            runtime.block_on(::iomgr::runtime::__entry::with_output::<#ret_ty, _>(async move #block))
        }
    }
}
