//! Parsing `#[iomgr::task(...)]`: the attribute arguments and the annotated function.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, ItemFn, LitInt, Token};

/// Default size in bytes of the awaiter slot (the future being awaited).
pub const DEFAULT_SLOT: usize = 128;
/// Default size in bytes of the slot of a local whose type is not written.
pub const DEFAULT_LOCAL: usize = 32;

/// `#[iomgr::task(slot = 256, local = 48, pool = 8, name = Echo)]`.
pub struct Args {
    pub slot: usize,
    pub local: usize,
    pub pool: Option<(usize, Span)>,
    pub name: Option<Ident>,
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

impl Args {
    pub fn parse(attr: TokenStream) -> syn::Result<Args> {
        let mut args = Args {
            slot: DEFAULT_SLOT,
            local: DEFAULT_LOCAL,
            pool: None,
            name: None,
        };
        let list = syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, attr)
            .map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "{e}; expected `#[iomgr::task]` or `#[iomgr::task(slot = <bytes>, local = <bytes>, pool = <n>, name = <TypeName>)]`"
                    ),
                )
            })?;
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
                        "slot" => args.slot = value,
                        "local" => args.local = value,
                        "pool" => {
                            if value == 0 {
                                push(syn::Error::new(
                                    lit.span(),
                                    "a pool needs at least one slot: `pool = 1` or more",
                                ));
                            }
                            args.pool = Some((value, key.span()))
                        }
                        other => push(syn::Error::new(
                            key.span(),
                            format!(
                                "unknown `#[iomgr::task]` argument `{other}`; the arguments are `slot = <bytes>`, `local = <bytes>`, `pool = <n>` and `name = <TypeName>`"
                            ),
                        )),
                    }
                }
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
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
