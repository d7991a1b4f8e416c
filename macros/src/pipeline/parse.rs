//! Parsing `pipeline! { ... }`: the expression form (`a => b => c`) or the item form
//! (`pub Name(arg: Type) = a => b => c;`, one or more).
//!
//! A chain is split at its top-level `=>` tokens before anything else, so a stage is any
//! expression (a closure's body ends at the next `=>`; a `match` arm's `=>` is inside braces).

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, PatType, Token, Visibility};

use super::render;
use super::validate::Errors;

/// One stage, as written.
pub struct Stage {
    pub tokens: TokenStream,
    /// `None` when the tokens are not an expression (the error is in `Errors`).
    pub expr: Option<syn::Expr>,
    /// The first and last tokens' spans: errors about the stage point at them.
    pub first: Span,
    pub last: Span,
    /// The stage as written, for messages and `PipelineError::expr`.
    pub text: String,
}

/// `a => b => c`.
pub struct Chain {
    pub stages: Vec<Stage>,
    /// Where the chain is (for errors about the whole of it).
    pub span: Span,
}

/// `#[attrs] pub Name(arg: Type, ...) = chain;`
pub struct Item {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub args: Vec<PatType>,
    pub chain: Chain,
}

pub enum Input {
    Expr(Chain),
    Items(Vec<Item>),
}

pub fn input(tokens: TokenStream, errors: &mut Errors) -> Input {
    if looks_like_items(tokens.clone()) {
        Input::Items(items(tokens, errors))
    } else {
        Input::Expr(chain(tokens, Span::call_site(), errors))
    }
}

/// Whether the input starts like an item: attributes, a visibility, `Name(...)` and `=`
/// (not `=>`).
fn looks_like_items(tokens: TokenStream) -> bool {
    let parser = |input: ParseStream<'_>| {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        input.parse::<Ident>()?;
        if input.peek(Token![<]) {
            // A generic named pipeline: an item, and an error `item` reports.
            input.parse::<TokenStream>()?;
            return Ok(true);
        }
        let args;
        syn::parenthesized!(args in input);
        args.parse::<TokenStream>()?;
        let item = input.peek(Token![=]) && !input.peek(Token![=>]);
        input.parse::<TokenStream>()?;
        Ok(item)
    };
    parser.parse2(tokens_prefix(tokens)).unwrap_or(false)
}

/// The tokens up to (and including) the first `=` that is not part of `=>`, so that
/// `looks_like_items` never parses a whole chain.
fn tokens_prefix(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        let stop = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '=' && !matches!(iter.peek(), Some(TokenTree::Punct(q)) if q.as_char() == '>'));
        out.push(tt);
        if stop {
            break;
        }
    }
    out.into_iter().collect()
}

const ITEM_USAGE: &str =
    "a named pipeline is written `pub Name(arg: Type, ...) = source => ... => sink;`";

fn items(tokens: TokenStream, errors: &mut Errors) -> Vec<Item> {
    // Split at top-level `;`, then parse each item's header and chain.
    let mut items = Vec::new();
    for part in split(
        tokens,
        |tt| matches!(tt, TokenTree::Punct(p) if p.as_char() == ';'),
    ) {
        if part.tokens.is_empty() {
            continue;
        }
        match item(part.tokens, errors) {
            Ok(item) => items.push(item),
            Err(e) => errors.push(e),
        }
    }
    items
}

fn item(tokens: TokenStream, errors: &mut Errors) -> syn::Result<Item> {
    let header = |input: ParseStream<'_>| {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        if input.peek(Token![<]) {
            return Err(input.error(
                "a named pipeline cannot be generic: its type must have one constant size",
            ));
        }
        let content;
        syn::parenthesized!(content in input);
        let args = Punctuated::<PatType, Token![,]>::parse_terminated(&content)?;
        let eq = input
            .parse::<Token![=]>()
            .map_err(|e| syn::Error::new(e.span(), ITEM_USAGE))?;
        let rest: TokenStream = input.parse()?;
        Ok((attrs, vis, name, args.into_iter().collect(), eq, rest))
    };
    let (attrs, vis, name, args, eq, rest) = header.parse2(tokens)?;
    let span = eq.span;
    Ok(Item {
        attrs,
        vis,
        name,
        args,
        chain: chain(rest, span, errors),
    })
}

struct Part {
    tokens: TokenStream,
    /// The separator after this part, if any.
    sep: Option<Span>,
}

/// Splits `tokens` at top-level separators; the separator tokens are dropped.
fn split(tokens: TokenStream, is_sep: impl Fn(&TokenTree) -> bool) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    for tt in tokens {
        if is_sep(&tt) {
            parts.push(Part {
                tokens: std::mem::take(&mut current).into_iter().collect(),
                sep: Some(tt.span()),
            });
        } else {
            current.push(tt);
        }
    }
    parts.push(Part {
        tokens: current.into_iter().collect(),
        sep: None,
    });
    parts
}

/// Splits at top-level `=>` (a `=` joined to a `>`).
fn split_arrows(tokens: TokenStream) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current: Vec<TokenTree> = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        let arrow = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '=' && p.spacing() == proc_macro2::Spacing::Joint)
            && matches!(iter.peek(), Some(TokenTree::Punct(q)) if q.as_char() == '>');
        if arrow {
            iter.next();
            parts.push(Part {
                tokens: std::mem::take(&mut current).into_iter().collect(),
                sep: Some(tt.span()),
            });
        } else {
            current.push(tt);
        }
    }
    parts.push(Part {
        tokens: current.into_iter().collect(),
        sep: None,
    });
    parts
}

fn chain(tokens: TokenStream, span: Span, errors: &mut Errors) -> Chain {
    let mut stages = Vec::new();
    if tokens.is_empty() {
        return Chain { stages, span };
    }
    let parts = split_arrows(tokens);
    let n = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        let Some(first) = part.tokens.clone().into_iter().next() else {
            // `=> =>`, a leading `=>` or a trailing `=>`.
            let at = part.sep.unwrap_or(span);
            let what = if i == 0 {
                "a stage is missing before this `=>`: a pipeline starts with its source"
            } else if i + 1 == n {
                "a stage is missing after the last `=>`: a pipeline ends with its sink"
            } else {
                "a stage is missing between these `=>`s"
            };
            errors.at(at, what);
            continue;
        };
        let last = part.tokens.clone().into_iter().last().expect("not empty");
        let expr = match syn::parse2::<syn::Expr>(part.tokens.clone()) {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let (first, last) = (first.span(), last_span(&last));
        stages.push(Stage {
            text: render::text(part.tokens.clone()),
            tokens: part.tokens,
            expr,
            first,
            last,
        });
    }
    Chain { stages, span }
}

fn last_span(tt: &TokenTree) -> Span {
    match tt {
        TokenTree::Group(g) if g.delimiter() != Delimiter::None => g.span_close(),
        other => other.span(),
    }
}
