//! The rules a chain must follow that are known from its syntax alone. Everything that
//! needs types (is this a source? do these stages fit?) is checked by rustc on the
//! expansion, with messages of ours. Every problem is collected with its span.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Pat};

use super::parse::{Chain, Input, Item, Stage};

pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn new() -> Self {
        Errors(None)
    }

    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    /// An error from `first` to `last` (rustc joins the two spans).
    pub fn over(&mut self, first: Span, last: Span, msg: impl std::fmt::Display) {
        let mut tokens = proc_macro2::TokenStream::new();
        tokens.extend([
            proc_macro2::TokenTree::Ident(proc_macro2::Ident::new("a", first)),
            proc_macro2::TokenTree::Ident(proc_macro2::Ident::new("b", last)),
        ]);
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

/// How a stage closure is written.
pub enum Closure {
    /// Not a closure.
    No,
    /// One argument, its type not written: it takes the previous stage's items.
    Untyped,
    /// One argument with its type written.
    Typed,
}

pub fn closure(stage: &Stage) -> Closure {
    match &stage.expr {
        Some(Expr::Closure(c)) if c.inputs.len() == 1 => match c.inputs.first() {
            Some(Pat::Type(_)) => Closure::Typed,
            _ => Closure::Untyped,
        },
        _ => Closure::No,
    }
}

pub fn input(input: &Input, errors: &mut Errors) {
    match input {
        Input::Expr(chain) => self::chain(chain, errors),
        Input::Items(items) => {
            for item in items {
                self::item(item, errors);
            }
        }
    }
}

fn item(item: &Item, errors: &mut Errors) {
    for arg in &item.args {
        if !matches!(&*arg.pat, Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none()) {
            errors.at(
                arg.pat.span(),
                "an argument of a named pipeline is written `name: Type` (destructure it in a stage instead)",
            );
        }
    }
    chain(&item.chain, errors);
}

fn chain(chain: &Chain, errors: &mut Errors) {
    let stages = &chain.stages;
    match stages.len() {
        0 if errors.is_empty() => errors.at(
            chain.span,
            "an empty pipeline: write its stages from a source to a sink, `pipeline! { source => adapter => sink }`",
        ),
        1 => {
            let s = &stages[0];
            errors.over(
                s.first,
                s.last,
                format!(
                    "a pipeline needs a source and a sink: `{}` alone is one stage; add `=> sink` (a socket, a file, a sender, `&mut Vec<T>`, `for_each(..)`)",
                    s.text
                ),
            );
        }
        _ => {}
    }
    let n = stages.len();
    for (i, stage) in stages.iter().enumerate() {
        let Some(expr) = &stage.expr else { continue };
        if let Some(await_span) = awaited(expr) {
            errors.at(
                await_span,
                format!(
                    "`.await` cannot be a stage: a stage is a value the pipeline polls, and `{}` waits before the pipeline exists. To call an async function on every item, write `async |item| f(item).await`; to make a stage asynchronously, await it before the pipeline (`let stage = ...await?;`)",
                    stage.text
                ),
            );
            continue;
        }
        if let Expr::Closure(c) = expr {
            if n >= 2 && i + 1 == n {
                errors.over(
                    stage.first,
                    stage.last,
                    "the pipeline has no sink: its last stage is a closure. End it with a sink (a socket, a file, a sender, `&mut Vec<T>`), or consume the items with `for_each(|item: T| ...)`",
                );
            } else if n >= 2 && i == 0 {
                errors.over(
                    stage.first,
                    stage.last,
                    "a closure cannot be a pipeline's source: start with a source (a socket, a file, a receiver, a `Stream`, `iter(..)`)",
                );
            } else if c.inputs.len() != 1 {
                errors.at(
                    c.or1_token.span,
                    format!(
                        "a stage's closure takes one argument, the item; this one takes {}",
                        c.inputs.len()
                    ),
                );
            }
        }
    }
}

/// The `.await` of `x.await` or `x.await?`, if the stage is one.
fn awaited(expr: &Expr) -> Option<Span> {
    match expr {
        Expr::Await(a) => Some(a.await_token.span),
        Expr::Try(t) => awaited(&t.expr),
        Expr::Paren(p) => awaited(&p.expr),
        _ => None,
    }
}
