//! The task's signature made nameable: the types that the generated items must write.
//!
//! The body keeps the function's signature exactly as written (it becomes an ordinary
//! `async fn`). But the task's type, its constructor and its `Body` impl need every type
//! spelled out: elided lifetimes get names (`&str` -> `&'s str`, named after the argument),
//! `impl Trait` arguments become type parameters, and elided lifetimes in the return type
//! resolve to the one input lifetime as rustc's elision rules do.

use proc_macro2::Span;
use syn::visit::Visit;
use syn::visit_mut::{self, VisitMut};
use syn::{
    FnArg, GenericParam, Generics, Ident, ItemFn, Lifetime, LifetimeParam, Pat, ReturnType, Type,
};

use super::validate::Errors;

/// One argument of the constructor.
pub struct Param {
    /// The argument's name if it is a plain `name: T` (without `ref`), else `__iomgr_argN`.
    pub ident: Ident,
    /// Its type, nameable.
    pub ty: Type,
}

pub struct Signature {
    /// The function's generics plus the named elided lifetimes (first) and the type
    /// parameters of `impl Trait` arguments (last).
    pub generics: Generics,
    pub params: Vec<Param>,
    /// The return type, its elided lifetimes resolved.
    pub output: Type,
    /// Whether the task has type or const parameters (written, or from `impl Trait`).
    pub generic: bool,
    /// Whether an argument is `impl Trait`.
    pub impl_trait_args: bool,
}

pub fn nameable(f: &ItemFn, errors: &mut Errors) -> Signature {
    let taken: Vec<String> = f
        .sig
        .generics
        .lifetimes()
        .map(|l| l.lifetime.ident.to_string())
        .collect();
    let mut namer = Namer {
        taken,
        new: Vec::new(),
        impls: Vec::new(),
        hint: String::new(),
    };
    let mut params = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        let ident = match &*pt.pat {
            // The constructor only moves its arguments: `mut` belongs to the body.
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => Ident::new(&format!("__iomgr_arg{i}"), Span::call_site()),
        };
        namer.hint = ident.to_string().trim_start_matches("r#").to_string();
        let mut ty = (*pt.ty).clone();
        namer.visit_type_mut(&mut ty);
        params.push(Param { ident, ty });
    }

    let mut generics = f.sig.generics.clone();
    for lt in namer.new.iter().rev() {
        generics
            .params
            .insert(0, GenericParam::Lifetime(LifetimeParam::new(lt.clone())));
    }
    for (id, bounds) in &namer.impls {
        generics.params.push(syn::parse_quote!(#id: #bounds));
    }

    let mut output: Type = match &f.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let mut used = InputLifetimes(Vec::new());
    for p in &params {
        used.visit_type(&p.ty);
    }
    let mut r = ReturnLifetimes {
        only: if used.0.len() == 1 {
            used.0.pop()
        } else {
            None
        },
        failed: None,
    };
    r.visit_type_mut(&mut output);
    if let Some(span) = r.failed {
        errors.at(
            span,
            "the returned reference needs a named lifetime: the arguments have more than one (or no) lifetime to borrow from; write `<'a>` on the function and use `&'a T`",
        );
    }

    let generic = generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)));
    Signature {
        generics,
        params,
        output,
        generic,
        impl_trait_args: !namer.impls.is_empty(),
    }
}

/// Names elided lifetimes and turns `impl Trait` into type parameters.
struct Namer {
    taken: Vec<String>,
    new: Vec<Lifetime>,
    impls: Vec<(
        Ident,
        syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>,
    )>,
    /// The argument being visited: lifetimes are named after it.
    hint: String,
}

impl Namer {
    fn fresh(&mut self) -> Lifetime {
        let base = if syn::parse_str::<Ident>(&self.hint).is_ok() && !self.hint.starts_with('_') {
            self.hint.clone()
        } else {
            "__iomgr_l".to_string()
        };
        let mut name = base.clone();
        let mut n = 1;
        while self.taken.contains(&name) || name == "static" {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.push(name.clone());
        let lt = Lifetime::new(&format!("'{name}"), Span::call_site());
        self.new.push(lt.clone());
        lt
    }
}

impl VisitMut for Namer {
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
    // `fn(&T)` and `Fn(&T)`: elided lifetimes there are higher-ranked, not the task's.
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// The distinct lifetimes the arguments use (for return-type elision).
struct InputLifetimes(Vec<Lifetime>);

impl<'ast> Visit<'ast> for InputLifetimes {
    fn visit_lifetime(&mut self, l: &'ast Lifetime) {
        if l.ident != "static" && !self.0.contains(l) {
            self.0.push(l.clone());
        }
    }
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments(
        &mut self,
        _: &'ast syn::ParenthesizedGenericArguments,
    ) {
    }
    fn visit_bound_lifetimes(&mut self, _: &'ast syn::BoundLifetimes) {}
}

/// Gives the return type's elided lifetimes the one input lifetime.
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
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// Whether `ident` is named anywhere in `tokens` (a crude scan, for self-reference).
pub fn mentions(tokens: proc_macro2::TokenStream, ident: &Ident) -> Option<Span> {
    for t in tokens {
        match t {
            proc_macro2::TokenTree::Ident(i) if i == *ident => return Some(i.span()),
            proc_macro2::TokenTree::Group(g) => {
                if let Some(s) = mentions(g.stream(), ident) {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}
