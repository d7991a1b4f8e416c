//! `#[iomgr::task]`: parse -> validate -> signature -> track -> expand.
//!
//! The body is not lowered here: it stays an ordinary `async fn`, compiled by rustc, so it
//! means exactly what it says. The macro only makes its future nameable and fixed-size (see
//! `iomgr::task`'s docs for the argument) and numbers its `.await`s.

mod context;
mod expand;
mod parse;
mod signature;
mod track;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use validate::Errors;

pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    // Errors in the attribute's arguments are reported beside a full expansion (without
    // the arguments in error), so that they are the only errors.
    let (args, arg_errors) = parse::Args::parse(attr);
    let mut errors = Errors::new();
    let mut f = match parse::item(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = e.to_compile_error();
            return quote!(#e #item);
        }
    };
    validate::signature(&args, &f, &mut errors);
    let in_block = context::enclosing_block(f.sig.ident.span());
    if let Some(block) = in_block
        && f.sig.receiver().is_none()
    {
        errors.at(
            &f.sig.ident,
            format!(
                "`#[iomgr::task]` declares a type beside the function, which cannot be done inside an `{block}` block: move `{}` out of the `{block}` block and call it from there",
                f.sig.ident
            ),
        );
    }
    if f.sig.receiver().is_some() || in_block.is_some() {
        if let Some(e) = arg_errors {
            errors.push(e);
        }
        // Inside an `impl` or `trait`: no type can be declared there. Keep the function,
        // minus its body, so that callers see only the real error.
        let e = errors.into_error().map(|e| e.to_compile_error());
        let mut stub = f.clone();
        *stub.block = syn::parse_quote!({ ::core::unimplemented!() });
        stub.attrs
            .push(syn::parse_quote!(#[allow(unused_variables)]));
        return quote!(#e #stub);
    }
    let sig = signature::nameable(&f, &mut errors);
    let type_name = args
        .name
        .clone()
        .unwrap_or_else(|| parse::type_name(&f.sig.ident));
    if args.size.is_none()
        && !sig.generic
        && let Some(span) = signature::mentions(quote!(#f), &type_name)
    {
        errors.at(
            span,
            format!(
                "`{type_name}` is named inside its own task: a task is exactly as large as its body's future, so the body cannot contain the task's type. Give the task a fixed size, `#[iomgr::task(size = <bytes>)]` (a build with too small a size prints the size needed)"
            ),
        );
    }
    if let Some(mut e) = errors.into_error() {
        if let Some(a) = arg_errors {
            e.combine(a);
        }
        return expand::degraded(&f, &sig, &type_name, e.to_compile_error());
    }
    let awaits = quote::format_ident!("__{}Awaits", type_name);
    let points = track::number_awaits(&mut f.block, &awaits);
    let arg_errors = arg_errors.map(|e| e.to_compile_error());
    let out = expand::task(&expand::Task {
        f: &f,
        sig: &sig,
        args: &args,
        type_name: &type_name,
        awaits: &awaits,
        points: &points,
    });
    let out = quote!(#arg_errors #out);
    // Debugging aid: `IOMGR_DEBUG_EXPAND=<fn name> cargo build` prints the expansion.
    if std::env::var("IOMGR_DEBUG_EXPAND").is_ok_and(|v| f.sig.ident == v) {
        eprintln!("{out}");
    }
    out
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The macro never panics and always emits items that parse, on valid and invalid input.
    #[test]
    fn never_panics_and_always_emits_items() {
        let cases = vec![
            (
                quote!(),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(size = 64),
                quote!(
                    async fn f(x: u32) -> u32 {
                        x
                    }
                ),
            ),
            (
                quote!(slot = 1),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(size = "big"),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(pool = 0),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(name = ),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(),
                quote!(
                    struct S;
                ),
            ),
            (
                quote!(),
                quote!(
                    fn f() {}
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f(&self) {}
                ),
            ),
            (
                quote!(),
                quote!(
                    const unsafe extern "C" fn f() {}
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> impl Sized {}
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f<'a, T: Clone>(x: &'a T, y: impl Fn()) -> &'a T {
                        a.await;
                        x
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f(x: &str, y: &str) -> &str {
                        x
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f((a, b): (u8, u8), _: u8) -> u8 {
                        a.await;
                        a + b
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        let v = || x.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        println!("{}", x.await);
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        a && b.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        x.await = 3;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        unsafe { x.await }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        let Some(x) = y else {
                            z.await;
                            return;
                        };
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        match x {
                            a if b.await => {}
                            _ => {}
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        for x in &v {
                            y.await;
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        let r = &v;
                        y.await;
                        r.len();
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        break;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        continue 'a;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> u32 {
                        'a: {
                            if x.await {
                                break 'a 1;
                            }
                            2
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> u32 {
                        loop {
                            if a.await {
                                break 5;
                            }
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        let x = async { y.await };
                        let z = async || w.await;
                        x.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        fn inner() {}
                        struct S;
                        inner();
                        a.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> Option<u8> {
                        let x = a.await?.b.await?;
                        Some(x)
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        while let Some(x) = rx.recv().await {
                            if x { continue } else { break }
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        let (a, b) = (x.await, y.await);
                        S { a, b: c.await, ..d };
                        [e.await; 3];
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        g(h(), i.await, j.await).k(l.await).await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        x += y.await;
                        *p = q.await;
                        r.s = t.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        if let Some(a) = b
                            && let Some(c) = d.get(a)
                        {
                            e(c).await;
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        return;
                        a.await;
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() {
                        loop {}
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> ! {
                        loop {
                            a.await;
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn f() -> bool {
                        'l: loop {
                            break 'l async { false }.await;
                        }
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    async fn r#type(r#in: u8) {
                        r#in.await;
                    }
                ),
            ),
        ];
        for (attr, item) in cases {
            let out = super::task(attr.clone(), item.clone());
            assert!(
                syn::parse2::<syn::File>(out.clone()).is_ok(),
                "output does not parse for #[task({attr})] {item}:\n{out}"
            );
        }
    }
}
