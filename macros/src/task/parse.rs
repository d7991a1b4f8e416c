//! Parsing `#[iomgr::task(...)]`: the attribute arguments and the annotated function.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, ItemFn, LitInt, Token};

/// The storage budget of a generic task when `size` is not written, in bytes.
pub const DEFAULT_GENERIC_SIZE: usize = 1024;

/// `#[iomgr::task(pool = 8, name = Echo, size = 512)]`.
#[derive(Default)]
pub struct Args {
    pub pool: Option<(usize, Span)>,
    pub name: Option<Ident>,
    pub size: Option<(usize, Span)>,
}

enum Arg {
    Num(Ident, LitInt),
    Name(Ident),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        if key == "name" {
            Ok(Arg::Name(input.parse()?))
        } else {
            Ok(Arg::Num(key, input.parse()?))
        }
    }
}

const USAGE: &str =
    "expected `#[iomgr::task]` or `#[iomgr::task(pool = <n>, name = <TypeName>, size = <bytes>)]`";

impl Args {
    /// The arguments that parse, and the errors of those that do not.
    pub fn parse(attr: TokenStream) -> (Args, Option<syn::Error>) {
        let mut args = Args::default();
        let list = match syn::parse::Parser::parse2(
            Punctuated::<Arg, Token![,]>::parse_terminated,
            attr,
        ) {
            Ok(list) => list,
            Err(e) => {
                let e = syn::Error::new(e.span(), format!("{e}; {USAGE}"));
                return (args, Some(e));
            }
        };
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        for arg in list {
            match arg {
                Arg::Name(name) => args.name = Some(name),
                Arg::Num(key, lit) => {
                    let value: usize = match lit.base10_parse() {
                        Ok(v) => v,
                        Err(e) => {
                            push(e);
                            continue;
                        }
                    };
                    match key.to_string().as_str() {
                        "pool" => {
                            if value == 0 {
                                push(syn::Error::new(
                                    lit.span(),
                                    "a pool needs at least one slot: `pool = 1` or more",
                                ));
                            }
                            args.pool = Some((value, key.span()))
                        }
                        "size" => {
                            if value == 0 {
                                push(syn::Error::new(
                                    lit.span(),
                                    "a task's future is never empty: `size = 1` or more",
                                ));
                            }
                            args.size = Some((value, key.span()))
                        }
                        "slot" | "local" => push(syn::Error::new(
                            key.span(),
                            format!(
                                "`{key}` is no longer needed: a task is stored exactly as large as its `async fn`'s future; remove `{key} = {value}`"
                            ),
                        )),
                        other => push(syn::Error::new(
                            key.span(),
                            format!(
                                "unknown `#[iomgr::task]` argument `{other}`; the arguments are `pool = <n>`, `name = <TypeName>` and `size = <bytes>`"
                            ),
                        )),
                    }
                }
            }
        }
        (args, errors)
    }
}

/// The annotated item must be a function; anything else is reported at its span.
pub fn item(input: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2::<ItemFn>(input.clone()).map_err(|_| {
        let span = input
            .into_iter()
            .next()
            .map(|t| t.span())
            .unwrap_or_else(Span::call_site);
        syn::Error::new(
            span,
            "`#[iomgr::task]` goes on an `async fn`: write `#[iomgr::task] async fn name(...) { ... }`",
        )
    })
}

/// `echo_lines` -> `EchoLinesTask`.
pub fn type_name(fn_name: &Ident) -> Ident {
    let mut out = String::new();
    let mut upper = true;
    for c in fn_name.to_string().trim_start_matches("r#").chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out.push_str("Task");
    Ident::new(&out, fn_name.span())
}
