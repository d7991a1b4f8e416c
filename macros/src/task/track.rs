//! Numbering the body's `.await`s: `expr.await` becomes
//! `::iomgr::task::__private::track::<Table, N, _>(expr).await`, and each number gets an
//! `AwaitPoint` (line, column, the expression as written) in the task's table, the constant of
//! a marker type (`Table`) that is not generic, so any body can name it.
//!
//! The rewrite keeps the meaning: `track` only calls `IntoFuture::into_future` (which
//! `.await` would call) and wraps the result in a future that forwards every poll; `expr`
//! stays an operand of the awaited expression, so its temporaries live exactly as long as
//! before. `.await`s inside closures, `async` blocks and nested items belong to other
//! futures and are left alone; those inside other macros' arguments cannot be seen, and are
//! left alone too (the task then reports no await point while suspended there).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr};

/// One numbered `.await`.
pub struct Point {
    pub line: usize,
    pub column: usize,
    pub expr: String,
}

/// Rewrites the `.await`s of `block` in place, naming `table` (the task's awaits marker), and
/// returns them in numbering order.
pub fn number_awaits(block: &mut Block, table: &syn::Ident) -> Vec<Point> {
    let mut t = Tracker {
        points: Vec::new(),
        table,
    };
    t.visit_block_mut(block);
    t.points
}

struct Tracker<'a> {
    points: Vec<Point>,
    table: &'a syn::Ident,
}

impl VisitMut for Tracker<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Closure(_) | Expr::Async(_) | Expr::Macro(_) => {}
            Expr::Await(a) => {
                // The text as written, before inner `.await`s are rewritten; then those inner
                // `.await`s first: they come first in the source.
                let expr = text(&a.base);
                self.visit_expr_mut(&mut a.base);
                let id = self.points.len();
                let table = self.table;
                let span = a.await_token.span;
                let (line, column) = location(span);
                self.points.push(Point { line, column, expr });
                // Built as syntax, not re-parsed from tokens; parenthesized so that a path
                // starting with `::` never follows a label (`break 'a ::iomgr::..` would read
                // as a labelled block).
                let base = std::mem::replace(&mut *a.base, Expr::Verbatim(TokenStream::new()));
                let call: TokenStream = quote_spanned! {span=>
                    (::iomgr::task::__private::track::<#table, #id, _>(#base))
                };
                *a.base = Expr::Verbatim(call);
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
    fn visit_macro_mut(&mut self, _: &mut syn::Macro) {}
}

/// Line and column (1-based) where `span` starts; zeros outside a compiler invocation.
fn location(span: Span) -> (usize, usize) {
    if proc_macro::is_available() {
        let s = span.unwrap();
        (s.line(), s.column())
    } else {
        (0, 0)
    }
}

/// The expression as written (token spacing tidied), shortened to at most 60 characters.
fn text(e: &Expr) -> String {
    let mut s = quote!(#e).to_string();
    for (from, to) in [
        (" . ", "."),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" [", "["),
        ("[ ", "["),
        (" ]", "]"),
        (" ,", ","),
        (" ?", "?"),
        ("& ", "&"),
        (" :: ", "::"),
        (":: ", "::"),
        (" !", "!"),
    ] {
        s = s.replace(from, to);
    }
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}
