//! Lowering: the body of the `async fn` becomes a control-flow graph of blocks, cut at every
//! `.await` and at every control-flow construct that contains one. Code without `.await`
//! stays as written, inside one block. Then two data-flow passes decide which locals must be
//! stored in the task between blocks ("kept"): those still used later (liveness), and those
//! still owned and in scope (so they are dropped where the `async fn` would drop them).

use std::collections::BTreeSet;
use std::rc::Rc;

use proc_macro2::Span;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::{Block as SynBlock, Expr, Ident, Pat, Stmt, Type};

use super::validate::Errors;
use super::walk::{self, Event, Walker};

pub type VarId = usize;
pub type BlockId = usize;
pub type EdgeId = usize;

pub struct Var {
    pub name: Ident,
    /// The written type, when it can be named outside the function body.
    pub ty: Option<Type>,
    /// Declared as `let x = &...;` / `let x: &T`: a reference.
    pub reference: bool,
    /// Renamed in the generated code because another binding has the same name.
    pub renamed: Option<Ident>,
    /// Its value may borrow another local: kept across an `.await` only while used.
    pub may_borrow: bool,
}

#[derive(Clone)]
pub struct LoopTarget {
    pub label: Option<String>,
    pub is_loop: bool,
    pub brk: BlockId,
    pub cont: Option<BlockId>,
    pub dest: Option<VarId>,
}

#[derive(Clone, Default)]
pub struct Env {
    pub names: Rc<Vec<(String, VarId)>>,
    pub loops: Rc<Vec<LoopTarget>>,
}

#[allow(clippy::large_enum_variant)]
pub enum ItemKind {
    /// A statement with no `.await` of ours; `defs` are the variables its top-level `let`
    /// declares, in the order of the pattern's bindings.
    Stmt { stmt: Stmt, defs: Vec<VarId> },
    /// The end of a scope: the listed variables go out of scope here.
    ScopeEnd(Vec<VarId>),
}

pub struct Item {
    pub kind: ItemKind,
    pub env: Env,
    pub events: Vec<Event>,
    /// Edges leaving from inside the statement (`break`/`continue` to a lowered loop), in
    /// the order the walker meets them.
    pub exits: Vec<EdgeId>,
}

pub struct Edge {
    pub from: BlockId,
    pub to: BlockId,
    /// Variables that come into existence on the edge (match-arm and `if let` bindings).
    pub defs: Vec<VarId>,
    /// For an exit from inside a statement: variables assigned on the way to it.
    pub killed: Vec<VarId>,
}

pub struct Arm {
    pub pat: Pat,
    pub guard: Option<Expr>,
    pub edge: EdgeId,
    /// Bindings of the pattern.
    pub defs: Vec<VarId>,
}

pub enum Term {
    /// Not terminated: the block ends after a `return`/diverging statement or is unreachable.
    None,
    Goto(EdgeId),
    If {
        cond: Expr,
        then_edge: EdgeId,
        else_edge: EdgeId,
        defs: Vec<VarId>,
    },
    Match {
        scrut: Expr,
        arms: Vec<Arm>,
    },
    Await {
        fut: Expr,
        edge: EdgeId,
        index: usize,
        span: Span,
    },
    /// End of the function body without a tail expression: the block's statements are the
    /// value (`()` or diverging), returned.
    ReturnUnit,
}

pub struct Block {
    pub items: Vec<Item>,
    pub term: Term,
    pub term_env: Env,
    pub term_events: Vec<Event>,
    pub term_exits: Vec<EdgeId>,
    /// Variables the terminator's expression uses by value.
    pub term_values: Vec<VarId>,
    pub scope_in: Vec<VarId>,
    /// `(await index, result variable)` for the block that resumes after an `.await`.
    pub resume: Option<(usize, VarId)>,
}

pub struct Program {
    pub vars: Vec<Var>,
    pub blocks: Vec<Block>,
    pub edges: Vec<Edge>,
    pub awaits: usize,
    /// The span of each `.await`, by index.
    pub await_spans: Vec<Span>,
    pub args: Vec<VarId>,
    /// Items declared in the body, emitted at the top of `poll`.
    pub items: Vec<syn::Item>,
    // results of the analysis
    pub live_in: Vec<BTreeSet<VarId>>,
    pub owned_in: Vec<BTreeSet<VarId>>,
    pub kept_in: Vec<Vec<VarId>>,
    pub fields: BTreeSet<VarId>,
    /// Blocks emitted inside their only predecessor's `if`/`match` arm.
    pub inlined: Vec<bool>,
    /// The shared byte slot of each stored local without a written type: locals never
    /// stored at the same time share one.
    pub color: std::collections::BTreeMap<VarId, usize>,
    pub colors: usize,
}

#[derive(Clone, Copy)]
enum Dest {
    Discard,
    Var(VarId),
    Return,
}

pub struct Lowerer<'e> {
    pub prog: Program,
    frames: Vec<Vec<VarId>>,
    loops: Vec<LoopTarget>,
    cur: Option<BlockId>,
    errors: &'e mut Errors,
    temps: usize,
    /// The body declares items (`use`, `struct`, ...): written types may refer to them, so
    /// no local gets a typed field.
    has_items: bool,
}

pub struct ArgVar {
    pub ident: Ident,
    pub ty: Type,
}

pub fn lower(
    args: Vec<ArgVar>,
    prelude: Vec<Stmt>,
    body: SynBlock,
    errors: &mut Errors,
) -> Program {
    let has_items = walk::has_items(&body);
    let mut l = Lowerer {
        prog: Program {
            vars: Vec::new(),
            blocks: Vec::new(),
            edges: Vec::new(),
            awaits: 0,
            await_spans: Vec::new(),
            args: Vec::new(),
            items: Vec::new(),
            live_in: Vec::new(),
            owned_in: Vec::new(),
            kept_in: Vec::new(),
            fields: BTreeSet::new(),
            inlined: Vec::new(),
            color: Default::default(),
            colors: 0,
        },
        frames: vec![Vec::new()],
        loops: Vec::new(),
        cur: None,
        errors,
        temps: 0,
        has_items,
    };
    for a in args {
        let id = l.new_var(a.ident, Some(a.ty), false);
        l.prog.args.push(id);
        l.frames[0].push(id);
    }
    let entry = l.new_block();
    debug_assert_eq!(entry, 0);
    l.cur = Some(entry);
    l.frames.push(Vec::new());
    for s in prelude {
        l.lower_stmt(s);
    }
    l.lower_stmts(body.stmts, Dest::Return);
    l.pop_frame();
    l.analyze();
    l.prog
}

impl Lowerer<'_> {
    fn new_var(&mut self, name: Ident, ty: Option<Type>, reference: bool) -> VarId {
        self.prog.vars.push(Var {
            name,
            ty,
            reference,
            renamed: None,
            may_borrow: false,
        });
        self.prog.vars.len() - 1
    }

    fn temp(&mut self, what: &str) -> VarId {
        self.temps += 1;
        let name = Ident::new(&format!("__iomgr_{what}{}", self.temps), Span::mixed_site());
        let id = self.new_var(name, None, false);
        self.frames.last_mut().unwrap().push(id);
        id
    }

    fn new_block(&mut self) -> BlockId {
        let scope_in = self.frames.iter().flatten().copied().collect();
        self.prog.blocks.push(Block {
            items: Vec::new(),
            term: Term::None,
            term_env: Env::default(),
            term_events: Vec::new(),
            term_exits: Vec::new(),
            term_values: Vec::new(),
            scope_in,
            resume: None,
        });
        self.prog.blocks.len() - 1
    }

    fn env(&self) -> Env {
        let names = self
            .frames
            .iter()
            .flatten()
            .map(|&v| (self.prog.vars[v].name.to_string(), v))
            .collect();
        Env {
            names: Rc::new(names),
            loops: Rc::new(self.loops.clone()),
        }
    }

    /// The block statements are appended to; after a jump, a fresh (unreachable) one.
    fn cur(&mut self) -> BlockId {
        match self.cur {
            Some(b) => b,
            None => {
                let b = self.new_block();
                self.cur = Some(b);
                b
            }
        }
    }

    fn edge(&mut self, from: BlockId, to: BlockId, defs: Vec<VarId>) -> EdgeId {
        self.prog.edges.push(Edge {
            from,
            to,
            defs,
            killed: Vec::new(),
        });
        self.prog.edges.len() - 1
    }

    fn goto(&mut self, to: BlockId) {
        if let Some(b) = self.cur.take() {
            let e = self.edge(b, to, Vec::new());
            self.prog.blocks[b].term = Term::Goto(e);
            self.prog.blocks[b].term_env = self.env();
        }
    }

    fn pop_frame(&mut self) {
        let vars = self.frames.pop().unwrap_or_default();
        if !vars.is_empty() && self.cur.is_some() {
            let b = self.cur();
            let env = self.env();
            self.prog.blocks[b].items.push(Item {
                kind: ItemKind::ScopeEnd(vars),
                env,
                events: Vec::new(),
                exits: Vec::new(),
            });
        }
    }

    /// Declares the bindings of `pat` (declared with type `ty`, initialized by `init`).
    fn bind_pat(&mut self, pat: &Pat, ty: Option<&Type>, init: Option<&Expr>) -> Vec<VarId> {
        let idents = walk::pat_bindings(pat);
        let single = idents.len() == 1
            && matches!(strip_type(pat), Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none());
        let typed = if single && !self.has_items {
            ty.filter(|t| walk::nameable(t)).cloned()
        } else {
            None
        };
        let reference = single
            && (matches!(ty, Some(Type::Reference(_))) || matches!(init, Some(Expr::Reference(_))))
            || matches!(strip_type(pat), Pat::Ident(p) if p.by_ref.is_some());
        let borrows = init.is_some_and(|e| {
            let env = self.env();
            walk::may_borrow(e, &|n: &str| env.names.iter().any(|(m, _)| m == n))
        });
        idents
            .into_iter()
            .map(|i| {
                let v = self.new_var(i, typed.clone(), reference);
                self.prog.vars[v].may_borrow = borrows;
                v
            })
            .collect()
    }

    /// Variables for the bindings of an `if let`/`while let` condition.
    fn cond_vars(&mut self, cond: &Expr) -> Vec<VarId> {
        let env = self.env();
        let borrows = walk::may_borrow(cond, &|n: &str| env.names.iter().any(|(m, _)| m == n));
        walk::cond_bindings(cond)
            .into_iter()
            .map(|id| {
                let v = self.new_var(id, None, false);
                self.prog.vars[v].may_borrow = borrows;
                v
            })
            .collect()
    }

    fn push_stmt(&mut self, stmt: Stmt, defs: Vec<VarId>) {
        let b = self.cur();
        let env = self.env();
        let mut item = Item {
            kind: ItemKind::Stmt { stmt, defs },
            env,
            events: Vec::new(),
            exits: Vec::new(),
        };
        let (events, exits) = {
            let ItemKind::Stmt { stmt, defs } = &item.kind else {
                unreachable!()
            };
            let mut w = Walker::analyze(&item.env, &self.prog.vars, b);
            w.top_stmt(stmt, defs);
            let errs = std::mem::take(&mut w.errors);
            let r = w.finish(&mut self.prog.edges);
            for e in errs {
                self.errors.push(e);
            }
            r
        };
        item.events = events;
        item.exits = exits;
        self.prog.blocks[b].items.push(item);
        if let ItemKind::Stmt { defs, .. } = &self.prog.blocks[b].items.last().unwrap().kind {
            let defs = defs.clone();
            self.frames.last_mut().unwrap().extend(defs);
        }
        if let Some(Item {
            kind: ItemKind::Stmt { stmt, .. },
            ..
        }) = self.prog.blocks[b].items.last()
            && walk::diverges(stmt)
        {
            self.cur = None;
        }
    }

    /// Sets a terminator whose expression(s) are analyzed with the current environment.
    fn terminate(&mut self, b: BlockId, term: Term) {
        let env = self.env();
        let mut w = Walker::analyze(&env, &self.prog.vars, b);
        match &term {
            Term::If { cond, defs, .. } => w.cond_expr(cond, defs),
            Term::Match { scrut, arms } => {
                w.expr(scrut);
                for arm in arms {
                    w.arm_guard(&arm.pat, &arm.defs, arm.guard.as_ref());
                }
            }
            Term::Await { fut, .. } => w.await_expr(fut),
            _ => {}
        }
        let errs = std::mem::take(&mut w.errors);
        let values = std::mem::take(&mut w.values);
        let (events, exits) = w.finish(&mut self.prog.edges);
        for e in errs {
            self.errors.push(e);
        }
        let blk = &mut self.prog.blocks[b];
        blk.term_values = values;
        blk.term = term;
        blk.term_env = env;
        blk.term_events = events;
        blk.term_exits = exits;
    }

    fn lower_stmts(&mut self, stmts: Vec<Stmt>, dest: Dest) {
        let n = stmts.len();
        let mut tail = None;
        for (i, s) in stmts.into_iter().enumerate() {
            if i + 1 == n
                && let Stmt::Expr(e, None) = s
            {
                tail = Some(e);
                break;
            }
            self.lower_stmt(s);
        }
        match tail {
            Some(e) => self.lower_expr(e, dest),
            None => match dest {
                Dest::Discard => {}
                // A block that ended in `return`/`break`/`continue` has no value.
                Dest::Var(_) if self.cur.is_none() => {}
                Dest::Var(t) => {
                    let unit: Expr = syn::parse_quote!(());
                    self.assign(t, unit);
                }
                Dest::Return => {
                    if let Some(b) = self.cur.take() {
                        self.prog.blocks[b].term = Term::ReturnUnit;
                        self.prog.blocks[b].term_env = self.env();
                    }
                }
            },
        }
    }

    fn lower_stmt(&mut self, stmt: Stmt) {
        match stmt {
            Stmt::Item(item) => self.prog.items.push(item),
            Stmt::Local(mut local) => {
                if let Some(init) = &mut local.init
                    && let Some((_, diverge)) = &init.diverge
                    && walk::has_await(diverge)
                {
                    // `let pat = e else { ... }` with an `.await` in the `else`: a `match`
                    // whose first arm continues with the bindings in scope.
                    let diverge = *init.diverge.take().unwrap().1;
                    let mut scrut = (*init.expr).clone();
                    self.hoist_all(&mut scrut);
                    let pat = local.pat.clone();
                    let defs = self.bind_pat(&pat, None, Some(&scrut));
                    let from = self.cur();
                    let cont = self.new_block();
                    self.prog.blocks[cont].scope_in.extend(defs.iter().copied());
                    let els = self.new_block();
                    let e_ok = self.edge(from, cont, defs.clone());
                    let e_else = self.edge(from, els, Vec::new());
                    let wild: Pat = syn::parse_quote!(_);
                    self.terminate(
                        from,
                        Term::Match {
                            scrut,
                            arms: vec![
                                Arm {
                                    pat,
                                    guard: None,
                                    edge: e_ok,
                                    defs: defs.clone(),
                                },
                                Arm {
                                    pat: wild,
                                    guard: None,
                                    edge: e_else,
                                    defs: Vec::new(),
                                },
                            ],
                        },
                    );
                    self.cur = Some(els);
                    self.frames.push(Vec::new());
                    self.lower_expr(diverge, Dest::Discard);
                    self.pop_frame();
                    if let Some(b) = self.cur.take() {
                        // The `else` of a `let`-`else` must diverge; rustc says so for the
                        // original, this keeps the expansion well-formed.
                        self.prog.blocks[b].term = Term::None;
                    }
                    self.cur = Some(cont);
                    self.frames.last_mut().unwrap().extend(defs);
                    return;
                }
                if let Some(init) = &mut local.init {
                    self.hoist_all(&mut init.expr);
                }
                let ty = match &local.pat {
                    Pat::Type(t) => Some((*t.ty).clone()),
                    _ => None,
                };
                let defs = self.bind_pat(
                    &local.pat,
                    ty.as_ref(),
                    local.init.as_ref().map(|i| &*i.expr),
                );
                self.push_stmt(Stmt::Local(local), defs);
            }
            Stmt::Expr(e, semi) => {
                if walk::has_await(&e) {
                    if walk::is_control(&e) {
                        self.lower_control(e, Dest::Discard);
                    } else {
                        let mut e = e;
                        self.hoist_all(&mut e);
                        self.discard(e, semi);
                    }
                } else {
                    self.push_stmt(Stmt::Expr(e, semi), Vec::new());
                }
            }
            Stmt::Macro(m) => self.push_stmt(Stmt::Macro(m), Vec::new()),
        }
    }

    fn discard(&mut self, e: Expr, semi: Option<syn::token::Semi>) {
        let stmt = match &e {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                let span = e.span();
                let call: Expr =
                    syn::parse2(quote_spanned!(span=> ::iomgr::task::__private::drop_local(#p)))
                        .unwrap();
                Stmt::Expr(call, Some(Default::default()))
            }
            _ => Stmt::Expr(e, Some(semi.unwrap_or_default())),
        };
        self.push_stmt(stmt, Vec::new());
    }

    fn assign(&mut self, t: VarId, value: Expr) {
        let name = &self.prog.vars[t].name;
        let stmt: Stmt = syn::parse_quote!(#name = #value;);
        self.push_stmt(stmt, Vec::new());
    }

    fn lower_expr(&mut self, mut e: Expr, dest: Dest) {
        if let Expr::Block(b) = &e
            && b.label.is_none()
            && b.attrs.is_empty()
            && !matches!(dest, Dest::Discard)
        {
            let Expr::Block(b) = e else { unreachable!() };
            self.lower_block_scoped(b.block, dest, Vec::new());
            return;
        }
        if walk::has_await(&e) {
            if walk::is_control(&e) {
                self.lower_control(e, dest);
                return;
            }
            self.hoist_all(&mut e);
        }
        match dest {
            Dest::Discard => self.discard(e, None),
            Dest::Var(t) => self.assign(t, e),
            Dest::Return => {
                let span = e.span();
                let ret: Expr = syn::parse2(quote_spanned!(span=> return #e)).unwrap();
                self.push_stmt(Stmt::Expr(ret, Some(Default::default())), Vec::new());
                self.cur = None;
            }
        }
    }

    /// Lowers, one at a time and in evaluation order, the `.await`s (and control-flow
    /// sub-expressions containing one) of `e`, replacing each by a temporary.
    fn hoist_all(&mut self, e: &mut Expr) {
        let mut guard = 0;
        while walk::has_await(e) {
            guard += 1;
            if guard > 10_000 {
                break;
            }
            let path = match walk::head_path(e) {
                Ok(p) => p,
                Err(err) => {
                    self.errors.push(err);
                    return;
                }
            };
            let node = walk::follow(e, &path);
            let is_await = matches!(node, Expr::Await(_));
            let operand = !walk::has_await(node);
            let located = node.span();
            let t = self.temp(if is_await { "aw" } else { "v" });
            self.prog.vars[t]
                .name
                .set_span(Span::mixed_site().located_at(located));
            let name = self.prog.vars[t].name.clone();
            let taken = std::mem::replace(node, syn::parse_quote!(#name));
            if operand {
                // An operand evaluated before a later `.await` of the same expression.
                self.frames.last_mut().unwrap().pop();
                let stmt: Stmt = syn::parse_quote!(let #name = #taken;);
                self.push_stmt(stmt, vec![t]);
            } else if let Expr::Await(a) = taken {
                // The temp was declared by `temp`; it is defined by the resume block.
                let span = a.await_token.span;
                self.emit_await(*a.base, t, span);
            } else {
                self.lower_control(taken, Dest::Var(t));
            }
        }
    }

    fn emit_await(&mut self, fut: Expr, result: VarId, span: Span) {
        let from = self.cur();
        let index = self.prog.awaits;
        self.prog.awaits += 1;
        self.prog.await_spans.push(span);
        let resume = self.new_block();
        self.prog.blocks[resume].resume = Some((index, result));
        let edge = self.edge(from, resume, Vec::new());
        self.terminate(
            from,
            Term::Await {
                fut,
                edge,
                index,
                span,
            },
        );
        self.cur = Some(resume);
    }

    fn lower_block_scoped(&mut self, b: SynBlock, dest: Dest, defs: Vec<VarId>) {
        self.frames.push(defs);
        self.lower_stmts(b.stmts, dest);
        self.pop_frame();
    }

    fn lower_control(&mut self, e: Expr, dest: Dest) {
        let valued =
            matches!(&e, Expr::Loop(_)) || matches!(&e, Expr::Block(b) if b.label.is_some());
        if valued && matches!(dest, Dest::Return) {
            // `break value` needs somewhere to put the value before it is returned.
            let t = self.temp("v");
            self.lower_control(e, Dest::Var(t));
            if self.cur.is_some() {
                let name = self.prog.vars[t].name.clone();
                self.lower_expr(syn::parse_quote!(#name), Dest::Return);
            }
            return;
        }
        match e {
            Expr::Paren(p) => self.lower_expr(*p.expr, dest),
            Expr::Group(g) => self.lower_expr(*g.expr, dest),
            Expr::Block(b) => {
                if let Some(label) = b.label {
                    let exit = self.new_block();
                    self.loops.push(LoopTarget {
                        label: Some(label.name.ident.to_string()),
                        is_loop: false,
                        brk: exit,
                        cont: None,
                        dest: match dest {
                            Dest::Var(t) => Some(t),
                            _ => None,
                        },
                    });
                    self.lower_block_scoped(b.block, dest, Vec::new());
                    self.loops.pop();
                    self.goto(exit);
                    self.cur = Some(exit);
                } else {
                    self.lower_block_scoped(b.block, dest, Vec::new());
                }
            }
            Expr::If(i) => {
                let mut cond = *i.cond;
                self.hoist_all(&mut cond);
                let defs = self.cond_vars(&cond);
                let from = self.cur();
                let then_b = self.new_block();
                self.prog.blocks[then_b].scope_in.extend(defs.iter().copied());
                let join = self.new_block();
                let else_b = if i.else_branch.is_some() || !matches!(dest, Dest::Discard) {
                    self.new_block()
                } else {
                    join
                };
                let then_edge = self.edge(from, then_b, defs.clone());
                let else_edge = self.edge(from, else_b, Vec::new());
                self.terminate(
                    from,
                    Term::If {
                        cond,
                        then_edge,
                        else_edge,
                        defs: defs.clone(),
                    },
                );
                self.cur = Some(then_b);
                self.lower_block_scoped(i.then_branch, dest, defs);
                self.goto(join);
                if else_b != join {
                    self.cur = Some(else_b);
                    match i.else_branch {
                        Some((_, e)) => {
                            self.frames.push(Vec::new());
                            self.lower_expr(*e, dest);
                            self.pop_frame();
                        }
                        None => self.lower_stmts(Vec::new(), dest),
                    }
                    self.goto(join);
                }
                self.cur = Some(join);
                if matches!(dest, Dest::Return) {
                    // Both branches returned.
                    self.cur = None;
                }
            }
            Expr::Match(m) => {
                let mut scrut = *m.expr;
                self.hoist_all(&mut scrut);
                let from = self.cur();
                let join = self.new_block();
                let mut arms = Vec::new();
                let mut bodies = Vec::new();
                for arm in m.arms {
                    if let Some((_, g)) = &arm.guard
                        && walk::has_await(g)
                    {
                        self.errors.at(
                            g,
                            "`.await` in a match guard cannot be lowered: await before the `match` and match on the value",
                        );
                    }
                    let defs = self.bind_pat(&arm.pat, None, Some(&scrut));
                    let b = self.new_block();
                    self.prog.blocks[b].scope_in.extend(defs.iter().copied());
                    let edge = self.edge(from, b, defs.clone());
                    arms.push(Arm {
                        pat: arm.pat,
                        guard: arm.guard.map(|(_, g)| *g),
                        edge,
                        defs: defs.clone(),
                    });
                    bodies.push((b, defs, *arm.body));
                }
                self.terminate(from, Term::Match { scrut, arms });
                for (b, defs, body) in bodies {
                    self.cur = Some(b);
                    self.frames.push(defs);
                    self.lower_expr(body, dest);
                    self.pop_frame();
                    self.goto(join);
                }
                self.cur = Some(join);
                if matches!(dest, Dest::Return) {
                    self.cur = None;
                }
            }
            Expr::Loop(l) => {
                let head = self.new_block();
                let exit = self.new_block();
                self.goto(head);
                self.cur = Some(head);
                self.loops.push(LoopTarget {
                    label: l.label.map(|l| l.name.ident.to_string()),
                    is_loop: true,
                    brk: exit,
                    cont: Some(head),
                    dest: match dest {
                        Dest::Var(t) => Some(t),
                        _ => None,
                    },
                });
                self.lower_block_scoped(l.body, Dest::Discard, Vec::new());
                self.goto(head);
                self.loops.pop();
                // A `loop` nothing breaks out of never ends: what follows is unreachable.
                let reached = self.prog.edges.iter().any(|e| e.to == exit);
                self.cur = reached.then_some(exit);
            }
            Expr::While(w) => {
                let head = self.new_block();
                let exit = self.new_block();
                self.goto(head);
                self.cur = Some(head);
                let mut cond = *w.cond;
                self.hoist_all(&mut cond);
                let defs = self.cond_vars(&cond);
                let from = self.cur();
                let body = self.new_block();
                self.prog.blocks[body].scope_in.extend(defs.iter().copied());
                let then_edge = self.edge(from, body, defs.clone());
                let else_edge = self.edge(from, exit, Vec::new());
                self.terminate(
                    from,
                    Term::If {
                        cond,
                        then_edge,
                        else_edge,
                        defs: defs.clone(),
                    },
                );
                self.cur = Some(body);
                self.loops.push(LoopTarget {
                    label: w.label.map(|l| l.name.ident.to_string()),
                    is_loop: true,
                    brk: exit,
                    cont: Some(head),
                    dest: None,
                });
                self.lower_block_scoped(w.body, Dest::Discard, defs);
                self.goto(head);
                self.loops.pop();
                self.cur = Some(exit);
                self.unit_dest(dest);
            }
            Expr::ForLoop(f) => {
                if let Some(what) = borrowing_iter(&f.expr) {
                    self.errors.at(
                        &f.expr,
                        format!(
                            "this `for` loop iterates over a borrow of `{what}` and its body has an `.await`: the task keeps the iterator across the `.await` in its own state, where it cannot borrow another local. Iterate over indices (`for i in 0..{what}.len()` and index `{what}[i]` after each `.await`) or over an owned iterator (`for item in {what}` or `{what}.clone()`)"
                        ),
                    );
                    return;
                }
                let mut iter = *f.expr;
                self.hoist_all(&mut iter);
                let it = self.temp("iter");
                let it_name = self.prog.vars[it].name.clone();
                let span = iter.span();
                let init: Stmt = syn::parse2(quote_spanned!(span=>
                    let mut #it_name = ::core::iter::IntoIterator::into_iter(#iter);
                ))
                .unwrap();
                // `temp` already declared it in the frame; `push_stmt` defines it.
                self.frames.last_mut().unwrap().pop();
                self.push_stmt(init, vec![it]);
                let head = self.new_block();
                let exit = self.new_block();
                self.goto(head);
                self.cur = Some(head);
                let from = head;
                let body = self.new_block();
                let defs = self.bind_pat(&f.pat, None, None);
                self.prog.blocks[body].scope_in.extend(defs.iter().copied());
                let pat = *f.pat;
                let some: Pat = syn::parse_quote!(::core::option::Option::Some(#pat));
                let none: Pat = syn::parse_quote!(::core::option::Option::None);
                let e_some = self.edge(from, body, defs.clone());
                let e_none = self.edge(from, exit, Vec::new());
                let scrut: Expr = syn::parse2(
                    quote_spanned!(span=> ::core::iter::Iterator::next(&mut #it_name)),
                )
                .unwrap();
                self.terminate(
                    from,
                    Term::Match {
                        scrut,
                        arms: vec![
                            Arm {
                                pat: some,
                                guard: None,
                                edge: e_some,
                                defs: defs.clone(),
                            },
                            Arm {
                                pat: none,
                                guard: None,
                                edge: e_none,
                                defs: Vec::new(),
                            },
                        ],
                    },
                );
                self.cur = Some(body);
                self.loops.push(LoopTarget {
                    label: f.label.map(|l| l.name.ident.to_string()),
                    is_loop: true,
                    brk: exit,
                    cont: Some(head),
                    dest: None,
                });
                self.lower_block_scoped(f.body, Dest::Discard, defs);
                self.goto(head);
                self.loops.pop();
                self.cur = Some(exit);
                self.unit_dest(dest);
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => {
                // `a && b.await` evaluates `b` only when `a` holds: an `if`.
                let (l, r) = (&b.left, &b.right);
                let as_if: Expr = if matches!(b.op, syn::BinOp::And(_)) {
                    syn::parse_quote!(if #l { #r } else { false })
                } else {
                    syn::parse_quote!(if #l { true } else { #r })
                };
                self.lower_control(as_if, dest);
            }
            Expr::Unsafe(u) => self.errors.at(
                u.unsafe_token,
                "`.await` inside an `unsafe` block cannot be lowered: keep the `unsafe` block around the unsafe call only, and await outside it",
            ),
            other => {
                // Not a control-flow construct after all: hoist its awaits.
                let mut e = other;
                self.hoist_all(&mut e);
                match dest {
                    Dest::Discard => self.discard(e, None),
                    Dest::Var(t) => self.assign(t, e),
                    Dest::Return => self.lower_expr(e, Dest::Return),
                }
            }
        }
    }

    fn unit_dest(&mut self, dest: Dest) {
        match dest {
            Dest::Discard => {}
            Dest::Var(t) => {
                let unit: Expr = syn::parse_quote!(());
                self.assign(t, unit);
            }
            Dest::Return => {
                let unit: Expr = syn::parse_quote!(());
                self.lower_expr(unit, Dest::Return);
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Analysis

    fn analyze(&mut self) {
        let nb = self.prog.blocks.len();
        let nv = self.prog.vars.len();
        let p = &self.prog;
        // Outgoing edges per block (terminator edges and exits from statements).
        let mut succ: Vec<Vec<EdgeId>> = vec![Vec::new(); nb];
        let mut preds: Vec<Vec<EdgeId>> = vec![Vec::new(); nb];
        for (i, e) in p.edges.iter().enumerate() {
            succ[e.from].push(i);
            preds[e.to].push(i);
        }
        let term_edges = |b: &Block| -> Vec<EdgeId> {
            match &b.term {
                Term::Goto(e) => vec![*e],
                Term::If {
                    then_edge,
                    else_edge,
                    ..
                } => vec![*then_edge, *else_edge],
                Term::Match { arms, .. } => arms.iter().map(|a| a.edge).collect(),
                Term::Await { edge, .. } => vec![*edge],
                Term::None | Term::ReturnUnit => Vec::new(),
            }
        };

        // Liveness (backward, may).
        let mut live_in: Vec<BTreeSet<VarId>> = vec![BTreeSet::new(); nb];
        let mut changed = true;
        while changed {
            changed = false;
            for b in (0..nb).rev() {
                let blk = &p.blocks[b];
                let mut live = BTreeSet::new();
                for e in term_edges(blk) {
                    let edge = &p.edges[e];
                    for &v in &live_in[edge.to] {
                        if !edge.defs.contains(&v) {
                            live.insert(v);
                        }
                    }
                }
                backward(&blk.term_events, &mut live, &live_in, &p.edges);
                for item in blk.items.iter().rev() {
                    backward(&item.events, &mut live, &live_in, &p.edges);
                }
                if let Some((_, r)) = blk.resume {
                    live.remove(&r);
                }
                if live != live_in[b] {
                    live_in[b] = live;
                    changed = true;
                }
            }
        }

        // Ownership (forward, must): definitely assigned, not moved, since the last
        // assignment.
        let all: BTreeSet<VarId> = (0..nv).collect();
        let mut owned_in: Vec<BTreeSet<VarId>> = vec![all.clone(); nb];
        owned_in[0] = p.args.iter().copied().collect();
        let mut reach = vec![false; nb];
        reach[0] = true;
        let mut edge_owned: Vec<Option<BTreeSet<VarId>>> = vec![None; p.edges.len()];
        changed = true;
        while changed {
            changed = false;
            for b in 0..nb {
                if !reach[b] {
                    continue;
                }
                let blk = &p.blocks[b];
                let mut owned = owned_in[b].clone();
                if let Some((_, r)) = blk.resume {
                    owned.insert(r);
                }
                for item in &blk.items {
                    forward_item(item, &mut owned, &mut edge_owned);
                }
                forward_events(&blk.term_events, &mut owned, &mut edge_owned);
                for e in term_edges(blk) {
                    let mut o = owned.clone();
                    o.extend(p.edges[e].defs.iter().copied());
                    edge_owned[e] = Some(o);
                }
                for &e in &succ[b] {
                    let to = p.edges[e].to;
                    if !reach[to] {
                        reach[to] = true;
                        changed = true;
                    }
                }
            }
            for b in 1..nb {
                if !reach[b] {
                    continue;
                }
                let mut acc: Option<BTreeSet<VarId>> = None;
                for &e in &preds[b] {
                    if let Some(o) = &edge_owned[e] {
                        let mut o = o.clone();
                        o.extend(p.edges[e].defs.iter().copied());
                        o.extend(p.edges[e].killed.iter().copied());
                        acc = Some(match acc {
                            None => o,
                            Some(a) => a.intersection(&o).copied().collect(),
                        });
                    }
                }
                let new = acc.unwrap_or_default();
                if new != owned_in[b] {
                    owned_in[b] = new;
                    changed = true;
                }
            }
        }
        for b in 0..nb {
            if !reach[b] {
                owned_in[b] = BTreeSet::new();
            }
        }

        // A block entered only from one `if`/`match` arm is emitted inside that arm: its
        // locals stay ordinary locals (bindings that borrow the scrutinee included).
        let mut inlined = vec![false; nb];
        for b in 1..nb {
            if p.blocks[b].resume.is_none()
                && preds[b].len() == 1
                && matches!(
                    p.blocks[p.edges[preds[b][0]].from].term,
                    Term::If { .. } | Term::Match { .. }
                )
            {
                inlined[b] = true;
            }
        }
        let mut kept_in = Vec::with_capacity(nb);
        let mut fields = BTreeSet::new();
        for b in 0..nb {
            let blk = &p.blocks[b];
            let mut k: BTreeSet<VarId> = live_in[b].clone();
            for v in &blk.scope_in {
                if owned_in[b].contains(v) && !p.vars[*v].may_borrow {
                    k.insert(*v);
                }
            }
            if let Some((_, r)) = blk.resume {
                k.remove(&r);
            }
            if !inlined[b] {
                fields.extend(k.iter().copied());
            }
            kept_in.push(k.into_iter().collect::<Vec<_>>());
        }
        fields.extend(p.args.iter().copied());

        // A reference kept across an `.await` borrows something the task cannot keep.
        for &v in &fields {
            let var = &p.vars[v];
            if var.reference {
                self.errors.at(
                    &var.name,
                    format!(
                        "`{}` is a reference that lives across an `.await`: a task keeps its locals in its own state machine, where a reference to another local cannot live. Keep the owned value across the `.await` and borrow it again after it (or clone what you need)",
                        var.name
                    ),
                );
            }
        }

        // Rename stored variables of the same name that a block takes (and stores) together:
        // only one of them could be named there.
        let mut clash = BTreeSet::new();
        for (b, k) in kept_in.iter().enumerate() {
            if inlined[b] {
                continue;
            }
            for &v in k {
                for &u in k {
                    if u != v && p.vars[u].name == p.vars[v].name {
                        clash.insert(v);
                    }
                }
            }
        }
        let mut renames = Vec::new();
        for v in clash {
            let name = p.vars[v].name.to_string();
            let name = name.trim_start_matches("r#");
            // A name no user code can have, so a rename never captures the user's `x_1`.
            renames.push((
                v,
                Ident::new(&format!("__iomgr_{name}_{v}"), p.vars[v].name.span()),
            ));
        }
        for (v, id) in renames {
            self.prog.vars[v].renamed = Some(id);
        }
        // Greedy coloring of the untyped stored locals by "stored together".
        let mut color = std::collections::BTreeMap::new();
        let mut colors = 0;
        for &v in &fields {
            if self.prog.vars[v].ty.is_some() {
                continue;
            }
            let mut taken = BTreeSet::new();
            for (b, k) in kept_in.iter().enumerate() {
                if inlined[b] || !k.contains(&v) {
                    continue;
                }
                for u in k {
                    if let Some(&c) = color.get(u) {
                        taken.insert(c);
                    }
                }
            }
            let c = (0..).find(|c| !taken.contains(c)).unwrap();
            colors = colors.max(c + 1);
            color.insert(v, c);
        }
        self.prog.color = color;
        self.prog.colors = colors;
        self.prog.inlined = inlined;
        self.prog.live_in = live_in;
        self.prog.owned_in = owned_in;
        self.prog.kept_in = kept_in;
        self.prog.fields = fields;
    }
}

fn backward(
    events: &[Event],
    live: &mut BTreeSet<VarId>,
    live_in: &[BTreeSet<VarId>],
    edges: &[Edge],
) {
    for ev in events.iter().rev() {
        match *ev {
            Event::Use(v, _) => {
                live.insert(v);
            }
            Event::Assign(v, conditional) => {
                if !conditional {
                    live.remove(&v);
                }
            }
            Event::Def(v) => {
                live.remove(&v);
            }
            Event::Exit(e) => {
                for &v in &live_in[edges[e].to] {
                    if !edges[e].defs.contains(&v) && !edges[e].killed.contains(&v) {
                        live.insert(v);
                    }
                }
            }
        }
    }
}

pub fn forward_item(
    item: &Item,
    owned: &mut BTreeSet<VarId>,
    edge_owned: &mut [Option<BTreeSet<VarId>>],
) {
    match &item.kind {
        ItemKind::ScopeEnd(vars) => {
            for v in vars {
                owned.remove(v);
            }
        }
        ItemKind::Stmt { .. } => forward_events(&item.events, owned, edge_owned),
    }
}

pub fn forward_events(
    events: &[Event],
    owned: &mut BTreeSet<VarId>,
    edge_owned: &mut [Option<BTreeSet<VarId>>],
) {
    // Exits see what is owned before the statement minus what it may move.
    let mut moved = BTreeSet::new();
    for ev in events {
        if let Event::Use(v, true) = ev {
            moved.insert(*v);
        }
    }
    for ev in events {
        match *ev {
            Event::Use(v, true) => {
                owned.remove(&v);
            }
            Event::Use(_, false) => {}
            Event::Assign(v, false) | Event::Def(v) => {
                owned.insert(v);
            }
            Event::Assign(_, true) => {}
            Event::Exit(e) => {
                let o: BTreeSet<VarId> = owned.difference(&moved).copied().collect();
                edge_owned[e] = Some(match edge_owned[e].take() {
                    None => o,
                    Some(prev) => prev.intersection(&o).copied().collect(),
                });
            }
        }
    }
}

/// `&x`, `&mut x`, `x.iter()`, ...: an iterator that borrows a local.
fn borrowing_iter(e: &Expr) -> Option<String> {
    fn root(e: &Expr) -> Option<String> {
        match e {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            Expr::Field(f) => root(&f.base),
            Expr::Index(i) => root(&i.expr),
            Expr::Paren(p) => root(&p.expr),
            _ => None,
        }
    }
    match e {
        Expr::Reference(r) => root(&r.expr),
        Expr::MethodCall(m)
            if matches!(
                m.method.to_string().as_str(),
                "iter"
                    | "iter_mut"
                    | "chars"
                    | "bytes"
                    | "lines"
                    | "split"
                    | "windows"
                    | "chunks"
                    | "keys"
                    | "values"
                    | "values_mut"
                    | "char_indices"
                    | "drain"
            ) =>
        {
            root(&m.receiver)
        }
        _ => None,
    }
}

fn strip_type(p: &Pat) -> &Pat {
    match p {
        Pat::Type(t) => strip_type(&t.pat),
        Pat::Paren(p) => strip_type(&p.pat),
        other => other,
    }
}
