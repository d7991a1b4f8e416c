//! `#[iomgr::task]`: parse -> validate -> lower -> expand.

mod expand;
mod lower;
mod parse;
mod validate;
mod walk;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{FnArg, GenericParam, Ident, Lifetime, LifetimeParam, Pat, ReturnType, Stmt, Type};

use validate::Errors;

pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = match parse::Args::parse(attr) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let f = match parse::item(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = e.to_compile_error();
            return quote!(#e #item);
        }
    };
    let args = args.unwrap_or(parse::Args {
        slot: parse::DEFAULT_SLOT,
        local: parse::DEFAULT_LOCAL,
        pool: None,
        name: None,
    });
    validate::signature(&args, &f, &mut errors);
    validate::body(&f, &mut errors);
    if f.sig.receiver().is_some() {
        // A method: no struct can be emitted inside an `impl`. Keep the method, minus its
        // body, so that callers see only the real error.
        let e = errors.into_error().map(|e| e.to_compile_error());
        let mut stub = f.clone();
        *stub.block = syn::parse_quote!({ ::core::unimplemented!() });
        return quote!(#e #stub);
    }

    // The signature, made nameable: `impl Trait` arguments become type parameters and
    // elided lifetimes get names.
    let mut generics = f.sig.generics.clone();
    let mut synth = Synth::default();
    let mut params = Vec::new();
    let mut arg_vars = Vec::new();
    let mut prelude: Vec<Stmt> = Vec::new();
    let mut ctor_args = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        let mut ty = (*pt.ty).clone();
        synth.visit_type_mut(&mut ty);
        let ident = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                let id = Ident::new(&format!("__iomgr_arg{i}"), Span::call_site());
                prelude.push(syn::parse_quote!(let #other = #id;));
                id
            }
        };
        params.push(quote!(#ident: #ty));
        ctor_args.push(ident.clone());
        arg_vars.push(lower::ArgVar { ident, ty });
    }
    for lt in &synth.lifetimes {
        generics
            .params
            .insert(0, GenericParam::Lifetime(LifetimeParam::new(lt.clone())));
    }
    for (id, bounds) in &synth.impls {
        generics.params.push(syn::parse_quote!(#id: #bounds));
    }
    let mut out: Type = match &f.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    {
        let mut lts: Vec<Lifetime> = generics.lifetimes().map(|l| l.lifetime.clone()).collect();
        let mut r = ReturnLifetimes {
            only: if lts.len() == 1 { lts.pop() } else { None },
            failed: None,
        };
        r.visit_type_mut(&mut out);
        if let Some(span) = r.failed {
            errors.at(
                span,
                "the returned reference needs a named lifetime: the task has more than one (or no) lifetime to borrow from; write `<'a>` on the function and use `&'a T`",
            );
        }
    }

    let type_name = args
        .name
        .clone()
        .unwrap_or_else(|| parse::type_name(&f.sig.ident));
    let shape = expand::Shape {
        pool: args.pool.map(|(n, _)| n),
        fn_name: &f.sig.ident,
        type_name: &type_name,
        generics: &generics,
        out: &out,
        slot: args.slot,
        local: args.local,
    };
    let mut ctor = expand::Ctor {
        attrs: &f.attrs,
        vis: &f.vis,
        params,
        args: Vec::new(),
    };
    if !errors.is_empty() {
        let e = errors.into_error().unwrap().to_compile_error();
        return expand::degraded(&shape, &ctor, e);
    }
    let prog = lower::lower(arg_vars, prelude, (*f.block).clone(), &mut errors);
    if !errors.is_empty() || prog.blocks.len() >= u16::MAX as usize {
        if errors.is_empty() {
            errors.at(
                &f.sig.ident,
                "this task has too many states (more than 65534): split it into smaller tasks",
            );
        }
        let e = errors.into_error().unwrap().to_compile_error();
        return expand::degraded(&shape, &ctor, e);
    }
    ctor.args = prog.args.iter().copied().zip(ctor_args).collect();
    let out = expand::task(&prog, &shape, &ctor);
    // Debugging aid: `IOMGR_DEBUG_EXPAND=<fn name> cargo build` prints the expansion.
    if std::env::var("IOMGR_DEBUG_EXPAND").is_ok_and(|v| f.sig.ident == v) {
        eprintln!("{out}");
    }
    out
}

#[derive(Default)]
struct Synth {
    lifetimes: Vec<Lifetime>,
    impls: Vec<(
        Ident,
        syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>,
    )>,
}

impl Synth {
    fn fresh(&mut self) -> Lifetime {
        let lt = Lifetime::new(
            &format!("'__iomgr_l{}", self.lifetimes.len()),
            Span::call_site(),
        );
        self.lifetimes.push(lt.clone());
        lt
    }
}

impl VisitMut for Synth {
    fn visit_type_mut(&mut self, t: &mut Type) {
        if let Type::ImplTrait(it) = t {
            let id = Ident::new(
                &format!("__IomgrImpl{}", self.impls.len()),
                Span::call_site(),
            );
            let mut bounds = it.bounds.clone();
            for b in bounds.iter_mut() {
                self.visit_type_param_bound_mut(b);
            }
            self.impls.push((id.clone(), bounds));
            *t = syn::parse_quote!(#id);
            return;
        }
        if let Type::Reference(r) = t
            && r.lifetime.is_none()
        {
            r.lifetime = Some(self.fresh());
        }
        visit_mut::visit_type_mut(self, t);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        if l.ident == "_" {
            *l = self.fresh();
        }
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
}

struct ReturnLifetimes {
    only: Option<Lifetime>,
    failed: Option<Span>,
}

impl VisitMut for ReturnLifetimes {
    fn visit_type_mut(&mut self, t: &mut Type) {
        if let Type::Reference(r) = t
            && r.lifetime.is_none()
        {
            match &self.only {
                Some(l) => r.lifetime = Some(l.clone()),
                None => self.failed = Some(r.and_token.span),
            }
        }
        visit_mut::visit_type_mut(self, t);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        if l.ident == "_" {
            match &self.only {
                Some(o) => *l = o.clone(),
                None => self.failed = Some(l.apostrophe),
            }
        }
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
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
                quote!(slot = 64),
                quote!(
                    async fn f(x: u32) -> u32 {
                        x
                    }
                ),
            ),
            (
                quote!(slots = 1),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(slot = "big"),
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
