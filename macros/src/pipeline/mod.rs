//! `iomgr::pipeline!`: parse -> validate -> expand.
//!
//! The macro checks what syntax alone can tell (an empty chain, a missing sink, `.await`
//! where a stage should be, a closure at either end) and leaves everything that needs types
//! to rustc, on an expansion built so that rustc's errors are ours: each stage is identified
//! by its type, in order, and each hop carries a local trait whose
//! `#[diagnostic::on_unimplemented]` message names both stages. See `iomgr::pipeline`'s
//! docs for the expansion.

mod expand;
mod parse;
mod render;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use parse::Input;
use validate::Errors;

pub fn pipeline(tokens: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let input = parse::input(tokens, &mut errors);
    validate::input(&input, &mut errors);
    let failed = !errors.is_empty();
    let errors = errors.into_error().map(|e| e.to_compile_error());
    let out = match &input {
        Input::Expr(chain) => {
            let chain = if failed {
                expand::degraded_chain()
            } else {
                expand::chain(chain)
            };
            quote!({ #errors #chain })
        }
        Input::Items(items) => {
            let items = items.iter().map(|item| {
                let chain = if failed {
                    expand::degraded_chain()
                } else {
                    expand::chain(&item.chain)
                };
                expand::item(item, chain)
            });
            quote!(#errors #(#items)*)
        }
    };
    // Debugging aid: `IOMGR_DEBUG_PIPELINE=1 cargo build` prints every expansion.
    if std::env::var_os("IOMGR_DEBUG_PIPELINE").is_some() {
        eprintln!("{out}");
    }
    out
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The macro never panics, and always emits tokens that parse, on valid and invalid input.
    #[test]
    fn never_panics_and_always_emits_tokens_that_parse() {
        let exprs = vec![
            quote!(),
            quote!(a),
            quote!(a => b),
            quote!(a => |x| x + 1 => b),
            quote!(a => => b),
            quote!(=> a => b),
            quote!(a => b =>),
            quote!(a.await => b),
            quote!(a => f(x).await? => b),
            quote!(a => |x, y| x => b),
            quote!(|x| x => b),
            quote!(a => |x| x),
            quote!(a => match x { 1 => 2, _ => 3 } => b),
            quote!(a => + => b),
        ];
        for e in exprs {
            let out = super::pipeline(e.clone());
            syn::parse2::<syn::Expr>(out.clone())
                .unwrap_or_else(|err| panic!("`{e}` gave `{out}`, which does not parse: {err}"));
        }
        let items = vec![
            quote!(pub A(x: u32) = a => b;),
            quote!(A() = a => b; pub(crate) B(s: S, t: T) = s => t),
            quote!(A<T>(x: T) = a => b;),
            quote!(A((x, y): (u32, u32)) = a => b;),
            quote!(A(x: u32) = ;),
            quote!(#[doc = "x"] A(x: u32) = a;),
        ];
        for e in items {
            let out = super::pipeline(e.clone());
            syn::parse2::<syn::File>(out.clone())
                .unwrap_or_else(|err| panic!("`{e}` gave `{out}`, which does not parse: {err}"));
        }
    }

    #[test]
    fn stage_texts_keep_the_source_spacing_guess() {
        let t = super::render::text(quote!(Lines::new(8 * 1024)));
        assert_eq!(t, "Lines::new(8 * 1024)");
        let t = super::render::text(quote!(&mut out));
        assert_eq!(t, "&mut out");
        let t = super::render::text(quote!(|line: String| handle(line)));
        assert_eq!(t, "|line: String| handle(line)");
    }
}
