//! A stage's text as written, for error messages and `PipelineError::expr`: each token's
//! own source text, spaced as in the source where rustc says where tokens are, with runs
//! of white space folded into one.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

pub fn text(tokens: TokenStream) -> String {
    let mut out = String::new();
    let mut prev: Option<TokenTree> = None;
    // Whether `prev` ends a `::` or a `..`, after which no space goes either.
    let mut path_sep = false;
    // Bars seen: an odd count means inside a closure's `|...|`.
    let mut bars = 0;
    for tt in tokens {
        let bar = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '|');
        let after_closing_bar =
            matches!(&prev, Some(TokenTree::Punct(p)) if p.as_char() == '|') && bars % 2 == 0;
        if bar {
            bars += 1;
        }
        if let Some(p) = &prev
            && !path_sep
            && (space_between(p, &tt) || (after_closing_bar && gap_known().is_none()))
        {
            out.push(' ');
        }
        path_sep = match (&prev, &tt) {
            (Some(TokenTree::Punct(a)), TokenTree::Punct(b)) => {
                a.spacing() == Spacing::Joint
                    && a.as_char() == b.as_char()
                    && matches!(b.as_char(), ':' | '.')
            }
            _ => false,
        } && gap_known().is_none();
        out.push_str(&token_text(&tt));
        prev = Some(tt);
    }
    fold_space(&out)
}

/// `Some(())` when rustc can say where tokens are (then no guessing is needed).
fn gap_known() -> Option<()> {
    proc_macro::is_available().then_some(())
}

fn token_text(tt: &TokenTree) -> String {
    tt.span().source_text().unwrap_or_else(|| match tt {
        TokenTree::Group(g) => {
            let inner = text(g.stream());
            match g.delimiter() {
                Delimiter::Parenthesis => format!("({inner})"),
                Delimiter::Brace => format!("{{ {inner} }}"),
                Delimiter::Bracket => format!("[{inner}]"),
                Delimiter::None => inner,
            }
        }
        other => other.to_string(),
    })
}

/// Where rustc can say (inside a macro on any toolchain since 1.88), the source's own
/// spacing; otherwise a guess that is right for the usual stage expressions.
fn space_between(a: &TokenTree, b: &TokenTree) -> bool {
    if let Some(gap) = gap(a, b) {
        return gap;
    }
    match (a, b) {
        (TokenTree::Punct(p), _) if p.spacing() == Spacing::Joint => false,
        (TokenTree::Punct(p), _) if matches!(p.as_char(), '.' | '&' | '!' | '#' | '|') => false,
        (_, TokenTree::Punct(p)) if p.as_char() == '|' => false,
        (_, TokenTree::Punct(p)) if matches!(p.as_char(), '.' | ',' | ';' | '?' | ':') => false,
        (_, TokenTree::Group(g)) if g.delimiter() != Delimiter::Brace => false,
        _ => true,
    }
}

fn gap(a: &TokenTree, b: &TokenTree) -> Option<bool> {
    if !proc_macro::is_available() {
        return None;
    }
    let end = a.span().unwrap().end();
    let start = b.span().unwrap().start();
    Some(end.line() != start.line() || end.column() != start.column())
}

fn fold_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}
