//! Checks that need no lowering: the signature, and `.await`s in places no lowering can
//! reach (closures, other macros' arguments). Every problem is collected with its span.

use proc_macro2::{TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{FnArg, GenericParam, ItemFn, ReturnType};

use super::parse::Args;

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
    pub fn at(&mut self, span: impl Spanned, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span.span(), msg));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

pub fn signature(args: &Args, f: &ItemFn, errors: &mut Errors) {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        errors.at(
            sig.fn_token,
            format!(
                "`#[iomgr::task]` lowers an `async fn`: write `async fn {}(...)`",
                sig.ident
            ),
        );
    }
    if let Some(c) = &sig.constness {
        errors.at(c, "a task cannot be a `const fn`: remove `const`");
    }
    if let Some(u) = &sig.unsafety {
        errors.at(
            u,
            "a task cannot be an `unsafe fn`: remove `unsafe` and use `unsafe { }` blocks in the body",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, "a task cannot have an ABI: remove `extern`");
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, "a task cannot be variadic");
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(r) = input {
            errors.at(
                r,
                "`#[iomgr::task]` does not lower methods: take the value as an ordinary argument (`this: Type`) or write a free `async fn`",
            );
        }
    }
    if let Some((_, span)) = args.pool {
        let generic = sig
            .generics
            .params
            .iter()
            .any(|p| !matches!(p, GenericParam::Lifetime(_)))
            || sig.inputs.iter().any(|i| match i {
                FnArg::Typed(t) => matches!(*t.ty, syn::Type::ImplTrait(_)),
                FnArg::Receiver(_) => false,
            });
        if generic {
            errors.at(
                span,
                "`pool` needs one concrete task type, and this task is generic: remove `pool = N`, or make the task non-generic (name concrete types instead of type parameters and `impl Trait`)",
            );
        } else if sig.generics.lifetimes().next().is_some()
            || sig.inputs.iter().any(|i| match i {
                FnArg::Typed(t) => has_reference(&t.ty),
                FnArg::Receiver(_) => false,
            })
        {
            errors.at(
                span,
                "`pool` keeps the task in per-thread static storage, so the task must be `'static`: take owned arguments (`String`, `Vec<u8>`, `Rc<T>`) instead of references",
            );
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && let syn::Type::ImplTrait(t) = &**ty
    {
        errors.at(
            t,
            "a task cannot return `impl Trait`: name the type (the task's `Output` is a field of a named type)",
        );
    }
}

fn has_reference(t: &syn::Type) -> bool {
    struct R(bool);
    impl<'ast> Visit<'ast> for R {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            if r.lifetime.as_ref().is_none_or(|l| l.ident != "static") {
                self.0 = true;
            }
            visit::visit_type_reference(self, r);
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.0 = true;
            }
        }
    }
    let mut r = R(false);
    r.visit_type(t);
    r.0
}

/// `.await` in closures and in other macros' arguments.
pub fn body(f: &ItemFn, errors: &mut Errors) {
    let mut v = BodyCheck { errors, closure: 0 };
    v.visit_block(&f.block);
}

struct BodyCheck<'a> {
    errors: &'a mut Errors,
    closure: usize,
}

impl<'ast> Visit<'ast> for BodyCheck<'_> {
    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        if c.asyncness.is_some() {
            // An async closure is its own coroutine; its awaits are its own.
            return;
        }
        self.closure += 1;
        visit::visit_expr_closure(self, c);
        self.closure -= 1;
    }
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {
        // An async block awaits on its own; nothing inside is lowered.
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_expr_await(&mut self, a: &'ast syn::ExprAwait) {
        if self.closure > 0 {
            self.errors.at(
                a.await_token,
                "`.await` inside a closure cannot be part of the task's state machine: a closure is not async. Use a `for`/`loop` in the task body instead, or an `async` block (`async { ... }.await`)",
            );
        }
        visit::visit_expr_await(self, a);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(span) = find_await(m.tokens.clone()) {
            self.errors.at(
                span,
                format!(
                    "`.await` inside the arguments of `{}!` cannot be lowered: await first, then pass the value, e.g. `let value = fut.await;` and `{}!(..., value)`",
                    m.path
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default(),
                    m.path
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default(),
                ),
            );
        }
    }
}

fn find_await(tokens: TokenStream) -> Option<proc_macro2::Span> {
    let mut prev_dot = false;
    for t in tokens {
        match t {
            TokenTree::Punct(p) => prev_dot = p.as_char() == '.',
            TokenTree::Ident(i) => {
                if prev_dot && i == "await" {
                    return Some(i.span());
                }
                prev_dot = false;
            }
            TokenTree::Group(g) => {
                if let Some(s) = find_await(g.stream()) {
                    return Some(s);
                }
                prev_dot = false;
            }
            TokenTree::Literal(_) => prev_dot = false,
        }
    }
    None
}
