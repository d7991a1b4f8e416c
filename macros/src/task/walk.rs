//! The walker: resolves the names in one statement (or terminator expression) to the
//! task's variables, records what the statement does with them (for the analysis), and,
//! when emitting, rewrites what the generated `poll` needs rewritten: `return` and `?`,
//! `break`/`continue` that leave a lowered loop, renamed variables, and variables an awaited
//! future borrows from the task's fields.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{BinOp, Block, Expr, Ident, Pat, Stmt, Type};

use super::lower::{BlockId, EdgeId, Env, Var, VarId};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A read; `true` when it may move the value.
    Use(VarId, bool),
    /// A whole assignment `x = ...`; `true` when only conditionally executed.
    Assign(VarId, bool),
    /// A `let` binding.
    Def(VarId),
    /// Control leaves to another block (index into the walker's exits).
    Exit(usize),
}

pub trait Emitter {
    /// The name of a variable in the generated code.
    fn ident(&self, v: VarId) -> Ident;
    /// The code of a jump along `edge` (`break`/`continue` to a lowered loop), storing
    /// `value` in `dest` first.
    fn exit(&self, edge: EdgeId, value: Option<Expr>, dest: Option<VarId>) -> Expr;
    /// The task's output type.
    fn out_ty(&self) -> &Type;
}

pub struct Walker<'a> {
    env: &'a Env,
    vars: &'a [Var],
    block: BlockId,
    scopes: Vec<Vec<(String, Option<VarId>)>>,
    inner_loops: Vec<(Option<String>, bool)>,
    cond: usize,
    closure: usize,
    pub events: Vec<Event>,
    pending: Vec<(BlockId, Vec<VarId>, Vec<VarId>)>,
    pub errors: Vec<syn::Error>,
    emit: Option<&'a dyn Emitter>,
    exits: &'a [EdgeId],
    exit_i: usize,
    refs: Option<&'a HashMap<VarId, Ident>>,
    cond_defs: Vec<(String, Option<VarId>)>,
    /// Variables used by value (a bare path in value position, outside closures).
    pub values: Vec<VarId>,
    /// Per nested conditional region (innermost last): the variables assigned in it so far.
    /// An exit kills what is assigned in the regions it is nested in.
    regions: Vec<Vec<VarId>>,
}

impl<'a> Walker<'a> {
    pub fn analyze(env: &'a Env, vars: &'a [Var], block: BlockId) -> Self {
        Walker {
            env,
            vars,
            block,
            scopes: Vec::new(),
            inner_loops: Vec::new(),
            cond: 0,
            closure: 0,
            events: Vec::new(),
            pending: Vec::new(),
            errors: Vec::new(),
            emit: None,
            exits: &[],
            exit_i: 0,
            refs: None,
            cond_defs: Vec::new(),
            values: Vec::new(),
            regions: vec![Vec::new()],
        }
    }

    pub fn emitting(
        env: &'a Env,
        vars: &'a [Var],
        emit: &'a dyn Emitter,
        exits: &'a [EdgeId],
        refs: Option<&'a HashMap<VarId, Ident>>,
    ) -> Self {
        let mut w = Walker::analyze(env, vars, 0);
        w.emit = Some(emit);
        w.exits = exits;
        w.refs = refs;
        w
    }

    /// Turns the pending exits into edges; returns the events with exits renumbered.
    pub fn finish(self, edges: &mut Vec<super::lower::Edge>) -> (Vec<Event>, Vec<EdgeId>) {
        let mut ids = Vec::new();
        for (to, defs, killed) in self.pending {
            edges.push(super::lower::Edge {
                from: self.block,
                to,
                defs,
                killed,
            });
            ids.push(edges.len() - 1);
        }
        let events = self
            .events
            .into_iter()
            .map(|e| match e {
                Event::Exit(i) => Event::Exit(ids[i]),
                other => other,
            })
            .collect();
        (events, ids)
    }

    fn resolve(&self, name: &str) -> Option<VarId> {
        for scope in self.scopes.iter().rev() {
            for (n, v) in scope.iter().rev() {
                if n == name {
                    return *v;
                }
            }
        }
        self.env
            .names
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    fn bind_inner(&mut self, pat: &mut Pat) {
        for id in pat_bindings(pat) {
            if self.scopes.is_empty() {
                self.scopes.push(Vec::new());
            }
            self.scopes.last_mut().unwrap().push((id.to_string(), None));
        }
        // Constants and paths inside patterns are not uses of our variables; nothing else
        // to visit except expressions in range patterns, which cannot name locals.
    }

    // ---- entry points -------------------------------------------------------------

    /// A statement at the level of the lowered body. `defs` are the variables its `let`
    /// declares.
    pub fn top_stmt(&mut self, stmt: &Stmt, defs: &[VarId]) {
        let mut s = stmt.clone();
        self.top_stmt_mut(&mut s, defs);
    }

    pub fn top_stmt_mut(&mut self, stmt: &mut Stmt, defs: &[VarId]) {
        match stmt {
            Stmt::Local(local) => {
                if let Some(init) = &mut local.init {
                    self.visit_expr_mut(&mut init.expr);
                    if let Some((_, diverge)) = &mut init.diverge {
                        self.enter();
                        self.visit_expr_mut(diverge);
                        self.leave();
                    }
                }
                for &d in defs {
                    self.events.push(Event::Def(d));
                }
                if let Some(emit) = self.emit {
                    let renames: HashMap<String, Ident> = defs
                        .iter()
                        .filter(|&&d| self.vars[d].renamed.is_some())
                        .map(|&d| (self.vars[d].name.to_string(), emit.ident(d)))
                        .collect();
                    if !renames.is_empty() {
                        rename_pat(&mut local.pat, &renames);
                    }
                }
            }
            Stmt::Item(_) => {}
            Stmt::Expr(e, _) => self.visit_expr_mut(e),
            Stmt::Macro(m) => self.mac(&mut m.mac.tokens),
        }
    }

    /// An `if`/`while` condition whose `let`s bind `defs`.
    pub fn cond_expr(&mut self, cond: &Expr, defs: &[VarId]) {
        let mut c = cond.clone();
        self.cond_expr_mut(&mut c, defs);
    }

    pub fn cond_expr_mut(&mut self, cond: &mut Expr, defs: &[VarId]) {
        let names: Vec<(String, Option<VarId>)> = defs
            .iter()
            .map(|&d| (self.vars[d].name.to_string(), Some(d)))
            .collect();
        let start = self.events.len();
        // The `let`s of the condition bind `defs` as the walker meets them; later parts of
        // a `let` chain may use them, which are not uses of anything from before.
        self.scopes.push(Vec::new());
        self.cond_defs = names;
        self.visit_expr_mut(cond);
        self.cond_defs = Vec::new();
        self.scopes.pop();
        self.drop_uses_of(start, defs);
        for &d in defs {
            self.events.push(Event::Def(d));
        }
        if let Some(emit) = self.emit {
            let renames: HashMap<String, Ident> = defs
                .iter()
                .filter(|&&d| self.vars[d].renamed.is_some())
                .map(|&d| (self.vars[d].name.to_string(), emit.ident(d)))
                .collect();
            if !renames.is_empty() {
                rename_cond_pats(cond, &renames);
            }
        }
    }

    pub fn expr(&mut self, e: &Expr) {
        let mut e = e.clone();
        self.visit_expr_mut(&mut e);
    }

    /// The expression of an `.await`. The receiver of its outermost method call
    /// (`stream.read(buf)`) is borrowed by the future, not consumed (unless the method is an
    /// `into_*` conversion): it stays owned, so it is kept, in place, across the `.await`.
    pub fn await_expr(&mut self, e: &Expr) {
        let mut e = e.clone();
        self.await_expr_mut(&mut e);
    }

    pub fn await_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::MethodCall(m) if !m.method.to_string().starts_with("into_") => {
                let mut recv = &mut *m.receiver;
                while let Expr::Field(f) = recv {
                    recv = &mut *f.base;
                }
                self.operand(recv, false);
                for a in &mut m.args {
                    self.visit_expr_mut(a);
                }
            }
            Expr::Paren(p) => self.await_expr_mut(&mut p.expr),
            _ => self.visit_expr_mut(e),
        }
    }

    /// A match arm's guard, with the arm's bindings in scope.
    pub fn arm_guard(&mut self, pat: &Pat, defs: &[VarId], guard: Option<&Expr>) {
        let mut p = pat.clone();
        let mut g = guard.cloned();
        self.arm_guard_mut(&mut p, defs, g.as_mut());
    }

    pub fn arm_guard_mut(&mut self, pat: &mut Pat, defs: &[VarId], guard: Option<&mut Expr>) {
        let names: Vec<(String, Option<VarId>)> = defs
            .iter()
            .map(|&d| (self.vars[d].name.to_string(), Some(d)))
            .collect();
        self.scopes.push(names);
        let start = self.events.len();
        if let Some(g) = guard {
            self.enter();
            self.visit_expr_mut(g);
            self.leave();
        }
        self.scopes.pop();
        self.drop_uses_of(start, defs);
        if let Some(emit) = self.emit {
            let renames: HashMap<String, Ident> = defs
                .iter()
                .filter(|&&d| self.vars[d].renamed.is_some())
                .map(|&d| (self.vars[d].name.to_string(), emit.ident(d)))
                .collect();
            if !renames.is_empty() {
                rename_pat(pat, &renames);
            }
        }
    }

    // ---- helpers ------------------------------------------------------------------

    fn enter(&mut self) {
        self.cond += 1;
        self.regions.push(Vec::new());
    }

    fn leave(&mut self) {
        self.cond -= 1;
        self.regions.pop();
    }

    fn assigned(&mut self, v: VarId) {
        self.events
            .push(Event::Assign(v, self.cond > 0 || self.closure > 0));
        if let Some(r) = self.regions.last_mut() {
            r.push(v);
        }
    }

    /// Uses of variables defined by this very terminator are not uses of earlier values.
    fn drop_uses_of(&mut self, start: usize, defs: &[VarId]) {
        let mut i = start;
        while i < self.events.len() {
            if matches!(self.events[i], Event::Use(v, _) if defs.contains(&v)) {
                self.events.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn use_path(&mut self, e: &mut Expr, moving: bool, value: bool) -> bool {
        let Expr::Path(p) = e else { return false };
        if p.qself.is_some() {
            return false;
        }
        let Some(ident) = p.path.get_ident() else {
            return false;
        };
        let Some(v) = self.resolve(&ident.to_string()) else {
            return true;
        };
        self.events.push(Event::Use(v, moving || self.closure > 0));
        if value && self.closure == 0 {
            self.values.push(v);
        }
        if let Some(emit) = self.emit {
            let span = ident.span();
            if let Some(r) = self.refs.and_then(|r| r.get(&v)) {
                *e = syn::parse2(quote_spanned!(span=> (*#r))).unwrap();
            } else if self.vars[v].renamed.is_some() {
                let new = emit.ident(v);
                *e = syn::parse_quote!(#new);
            }
        }
        true
    }

    fn operand(&mut self, e: &mut Expr, moving: bool) {
        if !self.use_path(e, moving, false) {
            self.visit_expr_mut(e);
        }
    }

    fn mac(&mut self, tokens: &mut TokenStream) {
        let mut out = Vec::new();
        let mut changed = false;
        for t in tokens.clone() {
            match t {
                TokenTree::Ident(i) => {
                    if let Some(v) = self.resolve(&i.to_string()) {
                        // A local named in another macro's tokens is taken as borrowed (as by
                        // `assert!`, `println!`): a macro that really moves it makes rustc
                        // report the later use, never a silent early drop.
                        self.events.push(Event::Use(v, false));
                        if let Some(emit) = self.emit
                            && self.vars[v].renamed.is_some()
                        {
                            let mut n = emit.ident(v);
                            n.set_span(i.span());
                            out.push(TokenTree::Ident(n));
                            changed = true;
                            continue;
                        }
                    }
                    out.push(TokenTree::Ident(i));
                }
                TokenTree::Group(g) => {
                    let mut inner = g.stream();
                    self.mac(&mut inner);
                    let mut ng = proc_macro2::Group::new(g.delimiter(), inner);
                    ng.set_span(g.span());
                    out.push(TokenTree::Group(ng));
                    changed = true;
                }
                TokenTree::Literal(l) => {
                    // Inline format arguments: `"{name}"`, `"{name:?}"`.
                    let s = l.to_string();
                    let mut new = s.clone();
                    if s.starts_with('"') || s.starts_with("r\"") || s.starts_with("r#") {
                        for name in format_names(&s) {
                            if let Some(v) = self.resolve(&name) {
                                self.events.push(Event::Use(v, false));
                                if let Some(emit) = self.emit
                                    && self.vars[v].renamed.is_some()
                                {
                                    let to = emit.ident(v).to_string();
                                    new = new
                                        .replace(&format!("{{{name}}}"), &format!("{{{to}}}"))
                                        .replace(&format!("{{{name}:"), &format!("{{{to}:"));
                                }
                            }
                        }
                    }
                    if new != s
                        && let Ok(TokenTree::Literal(mut lit)) = new
                            .parse::<TokenStream>()
                            .map(|t| t.into_iter().next().unwrap())
                    {
                        lit.set_span(l.span());
                        out.push(TokenTree::Literal(lit));
                        changed = true;
                    } else {
                        out.push(TokenTree::Literal(l));
                    }
                }
                other => out.push(other),
            }
        }
        if changed && self.emit.is_some() {
            *tokens = out.into_iter().collect();
        }
    }

    fn exit(&mut self, e: &mut Expr, label: Option<&syn::Lifetime>, is_break: bool) -> bool {
        if self.closure > 0 {
            return false;
        }
        let label_s = label.map(|l| l.ident.to_string());
        // Loops inside this statement first.
        for (l, is_loop) in self.inner_loops.iter().rev() {
            match &label_s {
                Some(want) => {
                    if l.as_deref() == Some(want.as_str()) {
                        return false;
                    }
                }
                None => {
                    if *is_loop {
                        return false;
                    }
                }
            }
        }
        let target = self.env.loops.iter().rev().find(|t| match &label_s {
            Some(want) => t.label.as_deref() == Some(want.as_str()),
            None => t.is_loop,
        });
        let Some(target) = target.cloned() else {
            if label.is_none() {
                self.errors.push(syn::Error::new(
                    e.span(),
                    if is_break {
                        "`break` outside of a loop"
                    } else {
                        "`continue` outside of a loop"
                    },
                ));
            }
            return false;
        };
        let to = if is_break {
            target.brk
        } else {
            match target.cont {
                Some(c) => c,
                None => {
                    self.errors.push(syn::Error::new(
                        e.span(),
                        "`continue` cannot target a labelled block",
                    ));
                    return false;
                }
            }
        };
        let mut value = match e {
            Expr::Break(b) => b.expr.take().map(|b| *b),
            _ => None,
        };
        if let Some(v) = &mut value {
            self.visit_expr_mut(v);
        }
        let dest = if is_break { target.dest } else { None };
        let mut defs = Vec::new();
        if let (Some(d), Some(_)) = (dest, &value) {
            // Only on the way out: the edge defines `d` for the target.
            self.events.push(Event::Assign(d, true));
            defs.push(d);
        }
        match self.emit {
            None => {
                let killed = self.regions.iter().flatten().copied().collect();
                self.pending.push((to, defs, killed));
                self.events.push(Event::Exit(self.pending.len() - 1));
            }
            Some(emit) => {
                // The analysis met the same exits in the same order; if it somehow did not,
                // leave the statement as written rather than panic.
                let Some(&edge) = self.exits.get(self.exit_i) else {
                    return false;
                };
                self.exit_i += 1;
                *e = emit.exit(edge, value, dest);
            }
        }
        true
    }
}

impl VisitMut for Walker<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Path(_) => {
                if !self.use_path(e, true, true) {
                    visit_mut::visit_expr_mut(self, e);
                }
            }
            Expr::Reference(r) => self.operand(&mut r.expr, false),
            Expr::Field(f) => self.operand(&mut f.base, false),
            Expr::Index(i) => {
                self.operand(&mut i.expr, false);
                self.visit_expr_mut(&mut i.index);
            }
            Expr::MethodCall(m) => {
                // A method on a local borrows it, unless the method is known to consume
                // its receiver (then the local is moved).
                let consumes = consuming(&m.method.to_string());
                self.operand(&mut m.receiver, consumes);
                for a in &mut m.args {
                    self.visit_expr_mut(a);
                }
            }
            Expr::Binary(b) => match b.op {
                BinOp::And(_) | BinOp::Or(_) => {
                    self.visit_expr_mut(&mut b.left);
                    self.enter();
                    self.visit_expr_mut(&mut b.right);
                    self.leave();
                }
                BinOp::Eq(_)
                | BinOp::Ne(_)
                | BinOp::Lt(_)
                | BinOp::Le(_)
                | BinOp::Gt(_)
                | BinOp::Ge(_) => {
                    self.operand(&mut b.left, false);
                    self.operand(&mut b.right, false);
                }
                BinOp::AddAssign(_)
                | BinOp::SubAssign(_)
                | BinOp::MulAssign(_)
                | BinOp::DivAssign(_)
                | BinOp::RemAssign(_)
                | BinOp::BitXorAssign(_)
                | BinOp::BitAndAssign(_)
                | BinOp::BitOrAssign(_)
                | BinOp::ShlAssign(_)
                | BinOp::ShrAssign(_) => {
                    self.visit_expr_mut(&mut b.right);
                    self.operand(&mut b.left, false);
                }
                _ => {
                    self.visit_expr_mut(&mut b.left);
                    self.visit_expr_mut(&mut b.right);
                }
            },
            Expr::Assign(a) => {
                self.visit_expr_mut(&mut a.right);
                let mut handled = false;
                if let Expr::Path(p) = &*a.left
                    && p.qself.is_none()
                    && let Some(ident) = p.path.get_ident()
                    && let Some(v) = self.resolve(&ident.to_string())
                {
                    self.assigned(v);
                    if let Some(emit) = self.emit
                        && self.vars[v].renamed.is_some()
                    {
                        let new = emit.ident(v);
                        *a.left = syn::parse_quote!(#new);
                    }
                    handled = true;
                }
                if !handled {
                    self.operand(&mut a.left, false);
                }
            }
            Expr::If(i) => {
                self.scopes.push(Vec::new());
                self.visit_expr_mut(&mut i.cond);
                self.enter();
                self.visit_block_mut(&mut i.then_branch);
                self.scopes.pop();
                if let Some((_, els)) = &mut i.else_branch {
                    self.visit_expr_mut(els);
                }
                self.leave();
            }
            Expr::Let(l) => {
                self.visit_expr_mut(&mut l.expr);
                if self.cond_defs.is_empty() {
                    self.bind_inner(&mut l.pat);
                } else {
                    // A condition of a lowered `if`/`while`: its bindings are variables.
                    let names: Vec<String> =
                        pat_bindings(&l.pat).iter().map(|i| i.to_string()).collect();
                    let defs = self.cond_defs.clone();
                    let scope = self.scopes.last_mut().unwrap();
                    for n in names {
                        let v = defs.iter().find(|(d, _)| *d == n).and_then(|(_, v)| *v);
                        scope.push((n, v));
                    }
                }
            }
            Expr::Match(m) => {
                self.visit_expr_mut(&mut m.expr);
                self.enter();
                for arm in &mut m.arms {
                    self.scopes.push(Vec::new());
                    self.bind_inner(&mut arm.pat);
                    if let Some((_, g)) = &mut arm.guard {
                        self.visit_expr_mut(g);
                    }
                    self.visit_expr_mut(&mut arm.body);
                    self.scopes.pop();
                }
                self.leave();
            }
            Expr::Loop(l) => {
                self.inner_loops
                    .push((l.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.enter();
                self.visit_block_mut(&mut l.body);
                self.leave();
                self.inner_loops.pop();
            }
            Expr::While(w) => {
                self.inner_loops
                    .push((w.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.scopes.push(Vec::new());
                self.visit_expr_mut(&mut w.cond);
                self.enter();
                self.visit_block_mut(&mut w.body);
                self.leave();
                self.scopes.pop();
                self.inner_loops.pop();
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.inner_loops
                    .push((f.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.scopes.push(Vec::new());
                self.bind_inner(&mut f.pat);
                self.enter();
                self.visit_block_mut(&mut f.body);
                self.leave();
                self.scopes.pop();
                self.inner_loops.pop();
            }
            Expr::Block(b) => {
                let labelled = b.label.is_some();
                if let Some(l) = &b.label {
                    self.inner_loops
                        .push((Some(l.name.ident.to_string()), false));
                }
                self.visit_block_mut(&mut b.block);
                if labelled {
                    self.inner_loops.pop();
                }
            }
            Expr::Closure(c) => {
                self.scopes.push(Vec::new());
                for p in &mut c.inputs {
                    self.bind_inner(p);
                }
                self.closure += 1;
                self.enter();
                let loops = std::mem::take(&mut self.inner_loops);
                self.visit_expr_mut(&mut c.body);
                self.inner_loops = loops;
                self.leave();
                self.closure -= 1;
                self.scopes.pop();
            }
            Expr::Async(a) => {
                self.closure += 1;
                self.enter();
                let loops = std::mem::take(&mut self.inner_loops);
                self.visit_block_mut(&mut a.block);
                self.inner_loops = loops;
                self.leave();
                self.closure -= 1;
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let out_ty = self.emit.map(|e| e.out_ty().clone());
                if let Some(emit) = self.emit
                    && self.closure == 0
                {
                    let inner = &t.expr;
                    let span = t.question_token.span;
                    let out_ty = out_ty.unwrap();
                    let out = respan(quote!(#out_ty), span);
                    let _ = emit;
                    let ok = Ident::new("__iomgr_ok", Span::mixed_site());
                    let res = Ident::new("__iomgr_residual", Span::mixed_site());
                    *e = syn::parse2(quote_spanned! {span=>
                        match ::iomgr::task::__private::Branch::branch(#inner) {
                            ::core::ops::ControlFlow::Continue(#ok) => #ok,
                            ::core::ops::ControlFlow::Break(#res) => {
                                return ::core::task::Poll::Ready(
                                    ::iomgr::task::__private::residual::<#out, _>(#res),
                                );
                            }
                        }
                    })
                    .unwrap();
                }
            }
            Expr::Return(r) => {
                if let Some(v) = &mut r.expr {
                    self.visit_expr_mut(v);
                }
                if let Some(emit) = self.emit
                    && self.closure == 0
                {
                    let out = emit.out_ty();
                    let span = r
                        .expr
                        .as_ref()
                        .map(|v| v.span())
                        .unwrap_or(r.return_token.span);
                    let value = match &r.expr {
                        Some(v) => quote!(#v),
                        None => quote_spanned!(span=> ()),
                    };
                    let ret = Ident::new("__iomgr_ret", Span::mixed_site());
                    *e = syn::parse2(quote_spanned! {span=>
                        return ::core::task::Poll::Ready({ let #ret: #out = #value; #ret })
                    })
                    .unwrap();
                }
            }
            Expr::Break(b) => {
                let label = b.label.clone();
                if !self.exit(e, label.as_ref(), true)
                    && let Expr::Break(b) = e
                    && let Some(v) = &mut b.expr
                {
                    self.visit_expr_mut(v);
                }
            }
            Expr::Continue(c) => {
                let label = c.label.clone();
                self.exit(e, label.as_ref(), false);
            }
            Expr::Macro(m) => self.mac(&mut m.mac.tokens),
            Expr::Struct(s) => {
                for f in &mut s.fields {
                    let shorthand = f.colon_token.is_none();
                    let before = quote!(#f).to_string();
                    self.visit_expr_mut(&mut f.expr);
                    if shorthand && quote!(#f).to_string() != before {
                        f.colon_token = Some(Default::default());
                    }
                }
                if let Some(rest) = &mut s.rest {
                    self.visit_expr_mut(rest);
                }
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_block_mut(&mut self, b: &mut Block) {
        self.scopes.push(Vec::new());
        for s in &mut b.stmts {
            match s {
                Stmt::Local(local) => {
                    if let Some(init) = &mut local.init {
                        self.visit_expr_mut(&mut init.expr);
                        if let Some((_, d)) = &mut init.diverge {
                            self.visit_expr_mut(d);
                        }
                    }
                    self.bind_inner(&mut local.pat);
                }
                Stmt::Item(_) => {}
                Stmt::Expr(e, _) => self.visit_expr_mut(e),
                Stmt::Macro(m) => self.mac(&mut m.mac.tokens),
            }
        }
        self.scopes.pop();
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}

    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        self.mac(&mut m.tokens);
    }
}

/// The tokens, all with `span` (for diagnostics that should point at one place).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let TokenTree::Group(g) = &t {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                t = TokenTree::Group(ng);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}

fn format_names(lit: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = lit.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            if i + 1 < b.len() && b[i + 1] == b'{' {
                i += 2;
                continue;
            }
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start
                && j < b.len()
                && (b[j] == b'}' || b[j] == b':')
                && !b[start].is_ascii_digit()
            {
                out.push(lit[start..j].to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn rename_pat(pat: &mut Pat, renames: &HashMap<String, Ident>) {
    struct R<'a>(&'a HashMap<String, Ident>);
    impl VisitMut for R<'_> {
        fn visit_pat_ident_mut(&mut self, p: &mut syn::PatIdent) {
            if let Some(n) = self.0.get(&p.ident.to_string()) {
                let span = p.ident.span();
                p.ident = n.clone();
                p.ident.set_span(span);
            }
            visit_mut::visit_pat_ident_mut(self, p);
        }
        fn visit_expr_mut(&mut self, _: &mut Expr) {}
    }
    R(renames).visit_pat_mut(pat);
}

fn rename_cond_pats(cond: &mut Expr, renames: &HashMap<String, Ident>) {
    match cond {
        Expr::Let(l) => rename_pat(&mut l.pat, renames),
        Expr::Binary(b) if matches!(b.op, BinOp::And(_)) => {
            rename_cond_pats(&mut b.left, renames);
            rename_cond_pats(&mut b.right, renames);
        }
        Expr::Paren(p) => rename_cond_pats(&mut p.expr, renames),
        _ => {}
    }
}

// ---- syntactic helpers used by the lowering ------------------------------------------

/// The variables a pattern binds, in order. An identifier that starts with an uppercase
/// letter and has no `mut`/`ref`/`@` is taken to be a constant or a unit variant.
pub fn pat_bindings(pat: &Pat) -> Vec<Ident> {
    struct B(Vec<Ident>);
    impl<'ast> Visit<'ast> for B {
        fn visit_pat(&mut self, p: &'ast Pat) {
            match p {
                Pat::Ident(i) => {
                    let name = i.ident.to_string();
                    let upper = name.chars().next().is_some_and(|c| c.is_uppercase());
                    if !upper || i.by_ref.is_some() || i.mutability.is_some() || i.subpat.is_some()
                    {
                        self.0.push(i.ident.clone());
                    }
                    if let Some((_, sub)) = &i.subpat {
                        self.visit_pat(sub);
                    }
                }
                Pat::Or(o) => {
                    if let Some(first) = o.cases.first() {
                        self.visit_pat(first);
                    }
                }
                Pat::Type(t) => self.visit_pat(&t.pat),
                other => visit::visit_pat(self, other),
            }
        }
        fn visit_expr(&mut self, _: &'ast Expr) {}
        fn visit_type(&mut self, _: &'ast Type) {}
    }
    let mut b = B(Vec::new());
    b.visit_pat(pat);
    b.0
}

/// Methods that take their receiver by value in the types tasks commonly hold (owned
/// buffers, `Option`, `Result`, iterators). Any other method is taken to borrow it.
pub fn consuming(method: &str) -> bool {
    method.starts_with("into_")
        || method.starts_with("unwrap")
        || matches!(
            method,
            "slice"
                | "expect"
                | "ok"
                | "err"
                | "map"
                | "map_err"
                | "and_then"
                | "or_else"
                | "collect"
                | "sum"
                | "count"
                | "zip"
                | "chain"
                | "rev"
                | "filter"
                | "enumerate"
                | "skip"
                | "take_while"
                | "fold"
                | "for_each"
        )
}

/// Whether a value computed by `e` may borrow one of the locals named in `locals`: a method
/// call on a local (`text.split(' ')`), or a reference to one (`&v[1..]`). Such a value is
/// kept across an `.await` only while it is still used (it could not be stored otherwise).
pub fn may_borrow(e: &Expr, locals: &dyn Fn(&str) -> bool) -> bool {
    struct M<'a>(&'a dyn Fn(&str) -> bool, bool);
    fn root(e: &Expr) -> Option<String> {
        match e {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            Expr::Field(f) => root(&f.base),
            Expr::Index(i) => root(&i.expr),
            Expr::Paren(p) => root(&p.expr),
            Expr::MethodCall(m) => root(&m.receiver),
            Expr::Unary(u) => root(&u.expr),
            _ => None,
        }
    }
    impl<'ast> Visit<'ast> for M<'_> {
        fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
            if root(&m.receiver).is_some_and(|r| (self.0)(&r)) {
                self.1 = true;
            }
            visit::visit_expr_method_call(self, m);
        }
        fn visit_expr_reference(&mut self, r: &'ast syn::ExprReference) {
            if root(&r.expr).is_some_and(|n| (self.0)(&n)) {
                self.1 = true;
            }
            visit::visit_expr_reference(self, r);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {
            self.1 = true;
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut m = M(locals, false);
    m.visit_expr(e);
    m.1
}

/// Bindings of the `let`s in an `if`/`while` condition (`let` chains included).
pub fn cond_bindings(cond: &Expr) -> Vec<Ident> {
    match cond {
        Expr::Let(l) => pat_bindings(&l.pat),
        Expr::Binary(b) if matches!(b.op, BinOp::And(_)) => {
            let mut v = cond_bindings(&b.left);
            v.extend(cond_bindings(&b.right));
            v
        }
        Expr::Paren(p) => cond_bindings(&p.expr),
        _ => Vec::new(),
    }
}

struct FindAwait(Option<Span>);

impl<'ast> Visit<'ast> for FindAwait {
    fn visit_expr_await(&mut self, a: &'ast syn::ExprAwait) {
        if self.0.is_none() {
            // The innermost-first await is found by continuing into the base.
            visit::visit_expr_await(self, a);
            if self.0.is_none() {
                self.0 = Some(a.await_token.span);
            }
        }
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_macro(&mut self, _: &'ast syn::Macro) {}
}

/// Whether `e` contains an `.await` of the task itself (not of a closure, async block or
/// nested item).
pub fn has_await(e: &Expr) -> bool {
    first_await(e).is_some()
}

pub fn first_await(e: &Expr) -> Option<Span> {
    let mut f = FindAwait(None);
    f.visit_expr(e);
    f.0
}

/// Whether the body declares items anywhere.
pub fn has_items(b: &Block) -> bool {
    struct H(bool);
    impl<'ast> Visit<'ast> for H {
        fn visit_stmt(&mut self, s: &'ast Stmt) {
            if matches!(s, Stmt::Item(_)) {
                self.0 = true;
            }
            visit::visit_stmt(self, s);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    }
    let mut h = H(false);
    h.visit_block(b);
    h.0
}

/// Whether a written type can be used as the type of a struct field outside the body.
pub fn nameable(t: &Type) -> bool {
    struct N(bool);
    impl<'ast> Visit<'ast> for N {
        fn visit_type(&mut self, t: &'ast Type) {
            match t {
                Type::Infer(_) | Type::ImplTrait(_) | Type::Macro(_) => self.0 = false,
                Type::Reference(r) if r.lifetime.is_none() => self.0 = false,
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self") => self.0 = false,
                _ => {}
            }
            visit::visit_type(self, t);
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident == "_" {
                self.0 = false;
            }
        }
        fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    }
    let mut n = N(true);
    n.visit_type(t);
    n.0
}

pub fn is_control(e: &Expr) -> bool {
    matches!(
        e,
        Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Block(_)
    )
}

/// A statement after which control never continues.
pub fn diverges(s: &Stmt) -> bool {
    matches!(
        s,
        Stmt::Expr(Expr::Return(_) | Expr::Break(_) | Expr::Continue(_), _)
    )
}

fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Await(a) => vec![&a.base],
        Expr::MethodCall(m) => std::iter::once(&*m.receiver).chain(m.args.iter()).collect(),
        Expr::Call(c) => std::iter::once(&*c.func).chain(c.args.iter()).collect(),
        Expr::Field(f) => vec![&f.base],
        Expr::Index(i) => vec![&i.expr, &i.index],
        Expr::Binary(b) => vec![&b.left, &b.right],
        Expr::Assign(a) => vec![&a.right],
        Expr::Unary(u) => vec![&u.expr],
        Expr::Cast(c) => vec![&c.expr],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Group(g) => vec![&g.expr],
        Expr::Reference(r) => vec![&r.expr],
        Expr::Try(t) => vec![&t.expr],
        Expr::Tuple(t) => t.elems.iter().collect(),
        Expr::Array(a) => a.elems.iter().collect(),
        Expr::Struct(s) => s
            .fields
            .iter()
            .map(|f| &f.expr)
            .chain(s.rest.as_deref())
            .collect(),
        Expr::Range(r) => r
            .start
            .as_deref()
            .into_iter()
            .chain(r.end.as_deref())
            .collect(),
        Expr::Return(r) => r.expr.as_deref().into_iter().collect(),
        Expr::Break(b) => b.expr.as_deref().into_iter().collect(),
        Expr::Let(l) => vec![&l.expr],
        Expr::If(i) => vec![&i.cond],
        Expr::Match(m) => vec![&m.expr],
        Expr::ForLoop(f) => vec![&f.expr],
        Expr::Repeat(r) => vec![&r.expr],
        _ => Vec::new(),
    }
}

fn child_mut(e: &mut Expr, i: usize) -> &mut Expr {
    match e {
        Expr::Await(a) => &mut a.base,
        Expr::MethodCall(m) => {
            if i == 0 {
                &mut m.receiver
            } else {
                &mut m.args[i - 1]
            }
        }
        Expr::Call(c) => {
            if i == 0 {
                &mut c.func
            } else {
                &mut c.args[i - 1]
            }
        }
        Expr::Field(f) => &mut f.base,
        Expr::Index(x) => {
            if i == 0 {
                &mut x.expr
            } else {
                &mut x.index
            }
        }
        Expr::Binary(b) => {
            if i == 0 {
                &mut b.left
            } else {
                &mut b.right
            }
        }
        Expr::Assign(a) => &mut a.right,
        Expr::Unary(u) => &mut u.expr,
        Expr::Cast(c) => &mut c.expr,
        Expr::Paren(p) => &mut p.expr,
        Expr::Group(g) => &mut g.expr,
        Expr::Reference(r) => &mut r.expr,
        Expr::Try(t) => &mut t.expr,
        Expr::Tuple(t) => &mut t.elems[i],
        Expr::Array(a) => &mut a.elems[i],
        Expr::Struct(s) => {
            let n = s.fields.len();
            if i < n {
                &mut s.fields[i].expr
            } else {
                s.rest.as_deref_mut().unwrap()
            }
        }
        Expr::Range(r) => {
            if i == 0 && r.start.is_some() {
                r.start.as_deref_mut().unwrap()
            } else {
                r.end.as_deref_mut().unwrap()
            }
        }
        Expr::Return(r) => r.expr.as_deref_mut().unwrap(),
        Expr::Break(b) => b.expr.as_deref_mut().unwrap(),
        Expr::Let(l) => &mut l.expr,
        Expr::If(x) => &mut x.cond,
        Expr::Match(m) => &mut m.expr,
        Expr::ForLoop(f) => &mut f.expr,
        Expr::Repeat(r) => &mut r.expr,
        _ => unreachable!("child_mut on a leaf"),
    }
}

pub fn follow<'e>(mut e: &'e mut Expr, path: &[usize]) -> &'e mut Expr {
    for &i in path {
        e = child_mut(e, i);
    }
    e
}

fn is_pure(e: &Expr) -> bool {
    match e {
        Expr::Lit(_) => true,
        Expr::Path(p) => p.qself.is_none(),
        Expr::Reference(r) => is_pure(&r.expr),
        Expr::Field(f) => is_pure(&f.base),
        Expr::Paren(p) => is_pure(&p.expr),
        Expr::Cast(c) => is_pure(&c.expr),
        Expr::Unary(u) => is_pure(&u.expr),
        _ => false,
    }
}

/// The local a pure operand reads, if any.
fn pure_root(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
        Expr::Reference(r) => pure_root(&r.expr),
        Expr::Field(f) => pure_root(&f.base),
        Expr::Paren(p) => pure_root(&p.expr),
        Expr::Cast(c) => pure_root(&c.expr),
        Expr::Unary(u) => pure_root(&u.expr),
        _ => None,
    }
}

fn idents_of(e: &Expr) -> Vec<String> {
    fn walk(t: TokenStream, out: &mut Vec<String>) {
        for tt in t {
            match tt {
                TokenTree::Ident(i) => out.push(i.to_string()),
                TokenTree::Group(g) => walk(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(quote!(#e), &mut out);
    out
}

/// The path (child indices) to the first sub-expression to lower in evaluation order: an
/// `.await` whose operand has none, or a control-flow expression with one inside.
pub fn head_path(e: &Expr) -> syn::Result<Vec<usize>> {
    let here = |e: &Expr| first_await(e).unwrap_or_else(|| e.span());
    match e {
        Expr::Await(a) => {
            if has_await(&a.base) {
                prefixed(0, &a.base)
            } else {
                Ok(Vec::new())
            }
        }
        Expr::If(_) | Expr::Match(_) | Expr::ForLoop(_) => {
            let c = children(e)[0];
            if has_await(c) {
                prefixed(0, c)
            } else {
                Ok(Vec::new())
            }
        }
        Expr::Loop(_) | Expr::While(_) | Expr::Block(_) => Ok(Vec::new()),
        Expr::Unsafe(u) => Err(syn::Error::new(
            u.unsafe_token.span,
            "`.await` inside an `unsafe` block cannot be lowered: keep the `unsafe` block around the unsafe call only, and await outside it",
        )),
        Expr::Binary(b) if matches!(b.op, BinOp::And(_) | BinOp::Or(_)) => {
            if has_await(&b.left) {
                prefixed(0, &b.left)
            } else if cond_bindings(&b.left).is_empty() {
                // Lowered as `if a { b } else { false }` (`||`: `if a { true } else { b }`).
                Ok(Vec::new())
            } else {
                Err(syn::Error::new(
                    here(&b.right),
                    "`.await` in a `let` chain cannot be lowered: await before the `if` and test the value",
                ))
            }
        }
        Expr::Assign(a) if has_await(&a.left) => Err(syn::Error::new(
            here(&a.left),
            "`.await` on the left of `=` cannot be lowered: await into a `let` first",
        )),
        _ => {
            let ch = children(e);
            let Some(i) = ch.iter().position(|c| has_await(c)) else {
                return Err(syn::Error::new(
                    here(e),
                    "this `.await` cannot be lowered here: bind the awaited value with `let value = ... .await;` first",
                ));
            };
            let mut before = Vec::new();
            for (j, c) in ch[..i].iter().enumerate() {
                if !is_pure(c) {
                    // Evaluated before the `.await`: it is evaluated first, into a temporary
                    // that the task keeps across the `.await`.
                    return Ok(vec![j]);
                }
                before.extend(pure_root(c));
            }
            let after = idents_of(ch[i]);
            if let Some(name) = before.iter().find(|n| {
                after.contains(n)
                    && n.chars()
                        .next()
                        .is_some_and(|c| c.is_lowercase() || c == '_')
            }) {
                return Err(syn::Error::new(
                    here(ch[i]),
                    format!(
                        "`{name}` is used both before this `.await` in the same expression and by the awaited expression: bind the awaited value first (`let value = ... .await;`)"
                    ),
                ));
            }
            prefixed(i, ch[i])
        }
    }
}

fn prefixed(i: usize, child: &Expr) -> syn::Result<Vec<usize>> {
    let mut p = vec![i];
    p.extend(head_path(child)?);
    Ok(p)
}
