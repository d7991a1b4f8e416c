//! The rules a task's signature must follow (the body is rustc's: it needs none). Every
//! problem is collected with its span.

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
                "`#[iomgr::task]` declares a type beside the function, which cannot be done inside an `impl`: take the value as an ordinary argument (`this: Type`) and write a free `async fn`",
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
            "a task cannot return `impl Trait`: name the type (it is the `Output` of the task's named type)",
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
