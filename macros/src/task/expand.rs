//! Code generation: the task struct, its `Future` impl (one non-generic `poll` body that
//! dispatches on the current block), its `Drop` impl, and the constructor function.
//!
//! # Why the generated `unsafe` is sound
//!
//! * `Pin::get_unchecked_mut`: the generated code never moves the task or any of its
//!   fields out of place while pinned; locals are moved out of their *slots* (by value),
//!   never the slots themselves.
//! * `AwaitSlot::poll_as` / `LocalSlot::take` / `take_typed`: every read of a slot uses the
//!   same `Witness` local as the `put` that filled it, so the types agree; the analysis puts
//!   exactly the variables a block takes (`kept_in`) on every edge into it, so a slot that
//!   is read was filled on every path to the read.
//! * `field`: the `&mut` to a field handed to an awaited future lives for `'f` (one call of
//!   `poll`), and the future must be `'f`; the field is not touched by generated code until
//!   the future is dropped (the resume block polls the slot to completion before it takes
//!   any local), and the task's `Drop` drops the awaiter slot before the fields.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{Expr, Generics, Ident, Lifetime, Type};

use super::lower::{self, Block, EdgeId, ItemKind, Program, Term, VarId};
use super::walk::{Emitter, Event, Walker};

pub struct Shape<'a> {
    pub pool: Option<usize>,
    pub fn_name: &'a Ident,
    pub type_name: &'a Ident,
    pub generics: &'a Generics,
    pub out: &'a Type,
    pub slot: usize,
    pub local: usize,
}

struct Gen<'a> {
    prog: &'a Program,
    shape: &'a Shape<'a>,
    label: Lifetime,
    this: Ident,
    next: Ident,
    bf: Ident,
    bl: Ident,
    cx: Ident,
}

const RUNNING: u16 = u16::MAX;

fn lit(b: usize) -> Literal {
    Literal::u16_unsuffixed(b as u16)
}

impl Gen<'_> {
    fn field(&self, v: VarId) -> Ident {
        if let Some(c) = self.prog.color.get(&v) {
            return format_ident!("__iomgr_local{}", c);
        }
        let name = self.prog.vars[v].name.to_string();
        let name = name.trim_start_matches("r#").trim_start_matches("__iomgr_");
        format_ident!("__iomgr_{}_{}", name, v)
    }

    fn witness(&self, v: VarId) -> Ident {
        Ident::new(&format!("__iomgr_w{v}"), Span::mixed_site())
    }

    fn await_witness(&self, k: usize) -> Ident {
        Ident::new(&format!("__iomgr_wa{k}"), Span::mixed_site())
    }

    fn typed(&self, v: VarId) -> bool {
        self.prog.vars[v].ty.is_some()
    }

    fn put(&self, v: VarId) -> TokenStream {
        self.put_at(v, self.prog.vars[v].name.span())
    }

    fn put_at(&self, v: VarId, span: Span) -> TokenStream {
        let mut id = self.ident(v);
        if !id.to_string().starts_with("__iomgr_") {
            // A user's name: same hygiene as any user token, so it can take the span of
            // the place that needs the value (for "value used here after move").
            id.set_span(span);
        }
        let f = self.field(v);
        let this = &self.this;
        if self.typed(v) {
            quote_spanned!(span=> #this.#f = ::core::option::Option::Some(#id);)
        } else {
            let w = self.witness(v);
            let bl = &self.bl;
            quote_spanned!(span=> #this.#f.put(#bl, &#w, #id);)
        }
    }

    fn take(&self, v: VarId) -> TokenStream {
        let id = self.ident(v);
        let f = self.field(v);
        let this = &self.this;
        if self.typed(v) {
            quote!(let mut #id = unsafe { ::iomgr::task::__private::take_typed(&mut #this.#f) };)
        } else {
            let w = self.witness(v);
            quote!(let mut #id = unsafe { #this.#f.take(&#w) };)
        }
    }

    fn ptr(&self, v: VarId) -> TokenStream {
        let f = self.field(v);
        let this = &self.this;
        if self.typed(v) {
            quote!(::iomgr::task::__private::typed_ptr(&mut #this.#f))
        } else {
            let w = self.witness(v);
            quote!(#this.#f.as_mut_ptr(&#w))
        }
    }

    /// Stores what the target block takes, and selects it.
    fn edge_code(&self, e: EdgeId) -> TokenStream {
        let to = self.prog.edges[e].to;
        if self.prog.inlined[to] {
            // The target's code, right here (`continue`s to the dispatch loop itself).
            return self.block_code(to, true);
        }
        let puts = self.prog.kept_in[to].iter().map(|&v| self.put(v));
        let next = &self.next;
        let t = lit(to);
        quote!(#(#puts)* #next = #t;)
    }

    fn block(&self, b: usize) -> TokenStream {
        self.block_code(b, false)
    }

    fn block_code(&self, b: usize, inline: bool) -> TokenStream {
        let blk: &Block = &self.prog.blocks[b];
        let this = &self.this;
        let mut out = TokenStream::new();
        let resume_var = blk.resume.map(|(_, r)| r);
        if let Some((k, r)) = blk.resume {
            let w = self.await_witness(k);
            let id = self.ident(r);
            let v = Ident::new("__iomgr_v", Span::mixed_site());
            let span = self.prog.await_spans[k];
            let cx = &self.cx;
            out.extend(quote_spanned! {span=>
                let mut #id = match unsafe { #this.__iomgr_slot.poll_as(&#w, #cx) } {
                    ::core::task::Poll::Ready(#v) => #v,
                    ::core::task::Poll::Pending => return ::core::task::Poll::Pending,
                };
            });
        }
        if blk.resume.is_some() || b == 0 {
            let running = lit(RUNNING as usize);
            out.extend(quote!(#this.__iomgr_state = #running;));
        }
        let kept: BTreeSet<VarId> = self.prog.kept_in[b].iter().copied().collect();
        if !inline {
            for &v in &self.prog.kept_in[b] {
                out.extend(self.take(v));
            }
        }
        // Variables assigned or read here before any `let` of theirs, and not taken: declared
        // uninitialized (rustc then checks initialization as in the `async fn`).
        let mut defined: BTreeSet<VarId> = kept.clone();
        if let Some(r) = resume_var {
            defined.insert(r);
        }
        let mut declare = Vec::new();
        let all_events = blk
            .items
            .iter()
            .flat_map(|i| i.events.iter())
            .chain(blk.term_events.iter());
        for ev in all_events {
            match *ev {
                Event::Use(v, _) | Event::Assign(v, _) => {
                    if defined.insert(v) {
                        declare.push(v);
                    }
                }
                Event::Def(v) => {
                    defined.insert(v);
                }
                Event::Exit(_) => {}
            }
        }
        for v in declare {
            let id = self.ident(v);
            out.extend(quote!(let mut #id;));
        }

        // Statements.
        let mut body = TokenStream::new();
        let mut owned: BTreeSet<VarId> = self.prog.owned_in[b].clone();
        if let Some(r) = resume_var {
            owned.insert(r);
        }
        // What is a local of this block (taken, or declared here): only those can be
        // dropped by name at the end of their scope.
        let mut present: BTreeSet<VarId> = kept.clone();
        present.extend(resume_var);
        let mut scratch = vec![None; self.prog.edges.len()];
        for item in &blk.items {
            match &item.kind {
                ItemKind::Stmt { stmt, defs } => {
                    let mut s = stmt.clone();
                    let mut w =
                        Walker::emitting(&item.env, &self.prog.vars, self, &item.exits, None);
                    w.top_stmt_mut(&mut s, defs);
                    body.extend(quote!(#s));
                }
                ItemKind::ScopeEnd(vars) => {
                    for &v in vars.iter().rev() {
                        if owned.contains(&v) && present.contains(&v) && self.visible(v) {
                            let id = self.ident(v);
                            body.extend(quote!(::iomgr::task::__private::drop_local(#id);));
                        }
                    }
                }
            }
            lower::forward_item(item, &mut owned, &mut scratch);
            for ev in &item.events {
                if let Event::Def(v) | Event::Assign(v, _) = ev {
                    present.insert(*v);
                }
            }
        }

        let label = &self.label;
        let env = &blk.term_env;
        let term = match &blk.term {
            Term::None => quote!(::core::unreachable!()),
            Term::ReturnUnit => {
                let outt = self.shape.out;
                let ret = Ident::new("__iomgr_ret", Span::mixed_site());
                let b = std::mem::take(&mut body);
                quote! {
                    return ::core::task::Poll::Ready({ let #ret: #outt = { #b }; #ret });
                }
            }
            Term::Goto(e) => {
                let code = self.edge_code(*e);
                quote!(#code continue #label;)
            }
            Term::If {
                cond,
                then_edge,
                else_edge,
                defs,
            } => {
                let mut c = cond.clone();
                let mut w = Walker::emitting(env, &self.prog.vars, self, &blk.term_exits, None);
                w.cond_expr_mut(&mut c, defs);
                let t = self.edge_code(*then_edge);
                let e = self.edge_code(*else_edge);
                quote!(if #c { #t } else { #e } continue #label;)
            }
            Term::Match { scrut, arms } => {
                let mut s = scrut.clone();
                let mut w = Walker::emitting(env, &self.prog.vars, self, &blk.term_exits, None);
                w.visit_expr_mut(&mut s);
                let mut arms_code = TokenStream::new();
                for arm in arms {
                    let mut p = arm.pat.clone();
                    let mut g = arm.guard.clone();
                    w.arm_guard_mut(&mut p, &arm.defs, g.as_mut());
                    let g = g.map(|g| quote!(if #g));
                    let code = self.edge_code(arm.edge);
                    arms_code.extend(quote!(#p #g => { #code }));
                }
                quote!(match #s { #arms_code } continue #label;)
            }
            Term::Await {
                fut,
                edge,
                index,
                span,
            } => {
                let to = self.prog.edges[*edge].to;
                let kept_after: BTreeSet<VarId> = self.prog.kept_in[to].iter().copied().collect();
                let used: BTreeSet<VarId> = blk
                    .term_events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Use(v, _) => Some(*v),
                        _ => None,
                    })
                    .collect();
                let mut refs = HashMap::new();
                let mut ref_lets = TokenStream::new();
                let bf = &self.bf;
                let values: BTreeSet<VarId> = blk.term_values.iter().copied().collect();
                for v in used
                    .intersection(&kept_after)
                    .filter(|v| !values.contains(v))
                {
                    let r = Ident::new(&format!("__iomgr_ref{v}"), Span::mixed_site());
                    let p = self.ptr(*v);
                    ref_lets.extend(quote! {
                        let #r = unsafe { ::iomgr::task::__private::field(#bf, #p) };
                    });
                    refs.insert(*v, r);
                }
                let mut f = fut.clone();
                let mut w =
                    Walker::emitting(env, &self.prog.vars, self, &blk.term_exits, Some(&refs));
                w.await_expr_mut(&mut f);
                // Stored before the future is made (it may borrow them in place), except
                // the ones it reads by value (copied into it), stored after.
                let puts = self.prog.kept_in[to]
                    .iter()
                    .filter(|v| !values.contains(v))
                    .map(|&v| self.put(v));
                let late_puts = self.prog.kept_in[to]
                    .iter()
                    .filter(|v| values.contains(v))
                    .map(|&v| self.put_at(v, *span));
                let t = lit(to);
                let next = &self.next;
                let aw = self.await_witness(*index);
                let fut_id = Ident::new("__iomgr_fut", Span::mixed_site());
                let into = quote_spanned!(*span=> ::core::future::IntoFuture::into_future(#f));
                // Located at the `.await`, so that the size check's note points there.
                let this_at = Ident::new("__iomgr_this", Span::mixed_site().located_at(*span));
                let bl = &self.bl;
                let store =
                    quote_spanned!(*span=> #this_at.__iomgr_slot.put(#bf, #bl, &#aw, #fut_id););
                let make = quote_spanned!(*span=> let #fut_id = #into;);
                quote! {
                    #(#puts)*
                    #ref_lets
                    #make
                    #(#late_puts)*
                    #store
                    #this.__iomgr_state = #t;
                    #next = #t;
                    continue #label;
                }
            }
        };
        out.extend(body);
        out.extend(term);
        out
    }

    fn visible(&self, v: VarId) -> bool {
        let var = &self.prog.vars[v];
        var.renamed.is_some()
            || self
                .prog
                .vars
                .iter()
                .enumerate()
                .all(|(i, o)| i == v || o.name != var.name)
    }
}

impl Emitter for Gen<'_> {
    fn ident(&self, v: VarId) -> Ident {
        let var = &self.prog.vars[v];
        var.renamed.clone().unwrap_or_else(|| var.name.clone())
    }

    fn exit(&self, edge: EdgeId, value: Option<Expr>, dest: Option<VarId>) -> Expr {
        let assign = match (value, dest) {
            (Some(v), Some(d)) => {
                let id = self.ident(d);
                quote!(#id = #v;)
            }
            (Some(v), None) => quote!(::iomgr::task::__private::drop_local(#v);),
            _ => quote!(),
        };
        let code = self.edge_code(edge);
        let label = &self.label;
        syn::parse2(quote!({ #assign #code continue #label; })).unwrap()
    }

    fn out_ty(&self) -> &Type {
        self.shape.out
    }
}

fn reverse_postorder(prog: &Program) -> Vec<usize> {
    let n = prog.blocks.len();
    let mut succ = vec![Vec::new(); n];
    for e in &prog.edges {
        succ[e.from].push(e.to);
    }
    let mut seen = vec![false; n];
    let mut post = Vec::with_capacity(n);
    // Iterative DFS: (block, next successor index).
    let mut stack = vec![(0usize, 0usize)];
    seen[0] = true;
    while let Some((b, i)) = stack.pop() {
        if i < succ[b].len() {
            stack.push((b, i + 1));
            // Last successor first: loop exits and `else`s finish before loop bodies and
            // `then`s, so bodies come first in reverse postorder.
            let t = succ[b][succ[b].len() - 1 - i];
            if !seen[t] {
                seen[t] = true;
                stack.push((t, 0));
            }
        } else {
            post.push(b);
        }
    }
    post.reverse();
    post.extend((0..n).filter(|&b| !seen[b]));
    post
}

/// Type parameters and lifetimes of `generics`, as a `PhantomData` payload.
pub fn phantoms(generics: &Generics) -> Vec<TokenStream> {
    generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => {
                let id = &t.ident;
                Some(quote!(fn() -> #id))
            }
            syn::GenericParam::Lifetime(l) => {
                let lt = &l.lifetime;
                Some(quote!(fn(&#lt ()) -> &#lt ()))
            }
            syn::GenericParam::Const(_) => None,
        })
        .collect()
}

pub struct Ctor<'a> {
    pub attrs: &'a [syn::Attribute],
    pub vis: &'a syn::Visibility,
    pub params: Vec<TokenStream>,
    /// Argument variables in order (fields initialized from the parameters).
    pub args: Vec<(VarId, Ident)>,
}

pub fn task(prog: &Program, shape: &Shape<'_>, ctor: &Ctor<'_>) -> TokenStream {
    let g = Gen {
        prog,
        shape,
        label: Lifetime::new("'__iomgr_dispatch", Span::mixed_site()),
        this: Ident::new("__iomgr_this", Span::mixed_site()),
        next: Ident::new("__iomgr_next", Span::mixed_site()),
        bf: Ident::new("__iomgr_bf", Span::mixed_site()),
        bl: Ident::new("__iomgr_bl", Span::mixed_site()),
        cx: Ident::new("__iomgr_cx", Span::mixed_site()),
    };
    let name = shape.type_name;
    let fn_name = shape.fn_name;
    let fn_str = fn_name.to_string();
    let (impl_g, ty_g, where_c) = shape.generics.split_for_impl();
    let out = shape.out;
    let slot = shape.slot;
    let local = shape.local;
    let phantoms = phantoms(shape.generics);

    let mut fields = TokenStream::new();
    let mut inits = TokenStream::new();
    let arg_vars: HashMap<VarId, &Ident> = ctor.args.iter().map(|(v, i)| (*v, i)).collect();
    for &v in &prog.fields {
        if prog.vars[v].ty.is_none() {
            continue;
        }
        let f = g.field(v);
        let t = prog.vars[v].ty.as_ref().unwrap();
        fields.extend(quote!(#f: ::core::option::Option<#t>,));
        match arg_vars.get(&v) {
            Some(a) => inits.extend(quote!(#f: ::core::option::Option::Some(#a),)),
            None => inits.extend(quote!(#f: ::core::option::Option::None,)),
        }
    }
    for c in 0..prog.colors {
        let f = format_ident!("__iomgr_local{}", c);
        fields.extend(quote!(#f: ::iomgr::task::__private::LocalSlot<#local>,));
        inits.extend(quote!(#f: ::iomgr::task::__private::LocalSlot::new(),));
    }
    // Drop: the awaited future first, then the stored locals of the current state, latest
    // declared first (as an `async fn` drops them), then anything else still stored.
    let clear = |v: VarId| {
        let f = g.field(v);
        if prog.vars[v].ty.is_some() {
            quote!(::core::mem::drop(self.#f.take());)
        } else {
            quote!(self.#f.clear();)
        }
    };
    let mut by_state = TokenStream::new();
    for b in 0..prog.blocks.len() {
        if b != 0 && prog.blocks[b].resume.is_none() {
            continue;
        }
        // Suspended: latest declared first, as an `async fn` drops its locals. Never polled
        // (state 0): the arguments in order, as an unpolled `async fn` drops its captures.
        let vs: Vec<_> = if b == 0 {
            prog.kept_in[b].iter().map(|&v| clear(v)).collect()
        } else {
            prog.kept_in[b].iter().rev().map(|&v| clear(v)).collect()
        };
        let id = lit(b);
        by_state.extend(quote!(#id => { #(#vs)* }));
    }
    let mut drops = quote! {
        match self.__iomgr_state {
            #by_state
            _ => {}
        }
    };
    for &v in prog.fields.iter().rev() {
        if prog.vars[v].ty.is_some() {
            drops.extend(clear(v));
        }
    }
    for c in (0..prog.colors).rev() {
        let f = format_ident!("__iomgr_local{}", c);
        drops.extend(quote!(self.#f.clear();));
    }

    let this = &g.this;
    let next = &g.next;
    let label = &g.label;
    let bf = &g.bf;
    let bl = &g.bl;
    let cx = &g.cx;
    let items = &prog.items;
    let mut witnesses = TokenStream::new();
    for k in 0..prog.awaits {
        let w = g.await_witness(k);
        let span = prog.await_spans[k];
        witnesses.extend(quote_spanned!(span=> let #w = ::iomgr::task::__private::Witness::new();));
    }
    for &v in &prog.fields {
        if prog.vars[v].ty.is_none() {
            let w = g.witness(v);
            let span = prog.vars[v].name.span();
            witnesses
                .extend(quote_spanned!(span=> let #w = ::iomgr::task::__private::Witness::new();));
        }
    }
    // Blocks in reverse postorder: type inference reads the body top to bottom, so the
    // block that stores a value (and fixes its witness's type) comes before the blocks that
    // take it and call methods on it.
    let mut arms = TokenStream::new();
    for b in reverse_postorder(prog)
        .into_iter()
        .filter(|&b| !prog.inlined[b])
    {
        let code = g.block(b);
        let id = lit(b);
        arms.extend(quote!(#id => { #code }));
    }
    let attrs = ctor.attrs;
    let vis = ctor.vis;
    let params = &ctor.params;
    let pool_impl = match shape.pool {
        None => quote!(),
        Some(n) => {
            let spawn_doc = format!(
                "Spawns the task on the current runtime from its pool of {n} (per thread): no allocation. `Err(SpawnError)` when all {n} slots are taken."
            );
            quote! {
                #[automatically_derived]
                impl #name {
                    #[doc = #spawn_doc]
                    #[allow(unsafe_code, clippy::undocumented_unsafe_blocks)]
                    #vis fn spawn(
                        self,
                    ) -> ::core::result::Result<
                        ::iomgr::task::PoolJoinHandle<#out>,
                        ::iomgr::task::SpawnError,
                    > {
                        ::std::thread_local! {
                            static POOL: ::core::mem::ManuallyDrop<
                                ::iomgr::task::__private::Pool<#name, #n>,
                            > = const {
                                ::core::mem::ManuallyDrop::new(::iomgr::task::__private::Pool::new())
                            };
                        }
                        // The pool is a destructor-less thread local: it lives until the
                        // thread exits, as `Pool::spawn` requires.
                        POOL.with(|pool| unsafe { pool.spawn(self, #fn_str) })
                    }
                }
            }
        }
    };
    let doc = format!(
        "The state machine of the task [`{fn_str}`]({fn_str}()), generated by `#[iomgr::task]`: a `Future` of fixed size with no heap allocation."
    );
    let must_use = format!("`{fn_str}` does nothing unless it is awaited or spawned");
    let pinned = Ident::new("__iomgr_pinned", Span::mixed_site());

    quote! {
        #[doc = #doc]
        #[must_use = #must_use]
        #vis struct #name #impl_g #where_c {
            __iomgr_slot: ::iomgr::task::__private::AwaitSlot<#slot>,
            __iomgr_state: u16,
            #fields
            __iomgr_marker: ::core::marker::PhantomData<(#(#phantoms,)* ::core::marker::PhantomPinned,)>,
        }

        #[automatically_derived]
        impl #impl_g ::core::fmt::Debug for #name #ty_g #where_c {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#name))
                    .field("state", &self.__iomgr_state)
                    .finish_non_exhaustive()
            }
        }

        #[automatically_derived]
        impl #impl_g ::core::ops::Drop for #name #ty_g #where_c {
            fn drop(&mut self) {
                // The awaited future may borrow the fields: it goes first; then the live
                // locals, latest declared first, as an `async fn` drops them.
                self.__iomgr_slot.clear();
                #drops
            }
        }

        #[automatically_derived]
        #[allow(unsafe_code)]
        impl #impl_g ::core::future::Future for #name #ty_g #where_c {
            type Output = #out;
            fn poll(
                self: ::core::pin::Pin<&mut Self>,
                cx: &mut ::core::task::Context<'_>,
            ) -> ::core::task::Poll<#out> {
                Self::__iomgr_poll(
                    self,
                    cx,
                    ::iomgr::task::__private::Brand::new(),
                    ::iomgr::task::__private::Brand::new(),
                )
            }
        }

        #[automatically_derived]
        impl #impl_g #name #ty_g #where_c {
            #[allow(
                unsafe_code,
                unused_mut,
                unused_variables,
                unused_assignments,
                unreachable_code,
                unused_unsafe,
                clippy::undocumented_unsafe_blocks,
                clippy::multiple_unsafe_ops_per_block,
                clippy::needless_return,
                clippy::let_and_return
            )]
            fn __iomgr_poll<'__iomgr_f, '__iomgr_l>(
                #pinned: ::core::pin::Pin<&'__iomgr_f mut Self>,
                #cx: &mut ::core::task::Context<'_>,
                #bf: ::iomgr::task::__private::Brand<'__iomgr_f>,
                #bl: ::iomgr::task::__private::Brand<'__iomgr_l>,
            ) -> ::core::task::Poll<#out>
            where
                Self: '__iomgr_l,
            {
                // SAFETY: the task is pinned (this takes `Pin<&mut Self>`), and nothing below
                // moves it: awaited futures and fields are used in place.
                let #this: &'__iomgr_f mut Self =
                    unsafe { ::core::pin::Pin::get_unchecked_mut(#pinned) };
                #(#items)*
                #witnesses
                let mut #next: u16 = #this.__iomgr_state;
                #label: loop {
                    match #next {
                        #arms
                        _ => ::iomgr::task::__private::polled_after_completion(#fn_str),
                    }
                }
            }
        }

        #pool_impl

        #(#attrs)*
        #vis fn #fn_name #impl_g (#(#params),*) -> #name #ty_g #where_c {
            #name {
                __iomgr_slot: ::iomgr::task::__private::AwaitSlot::new(),
                __iomgr_state: 0,
                #inits
                __iomgr_marker: ::core::marker::PhantomData,
            }
        }
    }
}

/// What is emitted when the task has errors: the errors, plus a well-formed struct and
/// constructor with the same names and types, so the user sees only the real errors.
pub fn degraded(shape: &Shape<'_>, ctor: &Ctor<'_>, errors: TokenStream) -> TokenStream {
    let name = shape.type_name;
    let fn_name = shape.fn_name;
    let (impl_g, ty_g, where_c) = shape.generics.split_for_impl();
    let out = shape.out;
    let phantoms = phantoms(shape.generics);
    let attrs = ctor.attrs;
    let vis = ctor.vis;
    let params = &ctor.params;
    quote! {
        #errors
        #vis struct #name #impl_g #where_c {
            __iomgr_marker: ::core::marker::PhantomData<(#(#phantoms,)* ::core::marker::PhantomPinned,)>,
        }
        impl #impl_g ::core::future::Future for #name #ty_g #where_c {
            type Output = #out;
            fn poll(
                self: ::core::pin::Pin<&mut Self>,
                _: &mut ::core::task::Context<'_>,
            ) -> ::core::task::Poll<#out> {
                ::core::unimplemented!()
            }
        }
        #(#attrs)*
        #[allow(unused_variables)]
        #vis fn #fn_name #impl_g (#(#params),*) -> #name #ty_g #where_c {
            ::core::unimplemented!()
        }
    }
}
