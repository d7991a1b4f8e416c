//! The generator: random `async fn` bodies that compile as plain `async fn`s.
//!
//! [`generate`] turns a seed into a [`Program`]: parameters, a return type and a body. The
//! body is written top-down, one statement or expression at a time, by a recursive
//! generator that asks for "an expression of type `T`" and picks one of many productions
//! for it (a literal, a local, an operator, a method, a block, an `if`, a `match`, a loop
//! with a `break` value, an `.await` of a `Tick` or of an `async` block, ...). Because every
//! operand of every production is again "an expression of type `T`", an `.await` (or a
//! `?`, a `return` under an `if`, a block with assignments) can appear in every operand
//! position: `let` initializers, both sides of `+`, call arguments, method receivers, match
//! scrutinees, `if` conditions, the right of `&&`/`||`, `return`/`break` values, tuple,
//! struct and array fields, indices, assignment right-hand sides.
//!
//! What it must not do is write a program rustc rejects. The generator consults the model
//! ([`crate::model`]) before every use of a local: may it be read here, moved here, assigned
//! here? Closures and `async` blocks are *barriers*: crossing one turns a read into a
//! capture, which for `move` ones is a move, and for stored ones a borrow that lasts as long
//! as the closure or future does. Patterns report what they do to a place scrutinee (move
//! it, move its `g` field, or borrow it). Loops are kept finite by a fuel check as the first
//! statement of every loop body (`if fuel() { break; }`), which is plain text the minimizer
//! never removes.
//!
//! The log events come from the prelude ([`crate::emit`]): `Guard` values log their drop,
//! `mk`/`consume`/`pass`/`lg` and the misleadingly named methods log their calls, `Tick`
//! futures log each poll and their drop. Every site gets a unique tag (`g12`, `t3`, `e7`),
//! so a log tells which site did what, in which order.

use crate::ast::{Node, ex, seq, st, t};
use crate::model::{Env, St, Ty, Var, merge};
use crate::rng::Rng;

/// A generated program: `async fn NAME(params) -> ret body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The parameters.
    pub params: Vec<Param>,
    /// The return type.
    pub ret: Ty,
    /// The body, a [`Node::Block`].
    pub body: Node,
}

/// A parameter of a generated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Declared `mut`.
    pub mutable: bool,
}

impl Program {
    /// `async fn NAME(params) -> RET`.
    pub fn signature(&self, name: &str) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                format!(
                    "{}{}: {}",
                    if p.mutable { "mut " } else { "" },
                    p.name,
                    p.ty.rust().expect("parameter type")
                )
            })
            .collect();
        format!(
            "async fn {name}({}) -> {}",
            params.join(", "),
            self.ret.rust().expect("return type")
        )
    }

    /// The arguments the driver passes (fresh values, the same for every run).
    pub fn args(&self) -> String {
        let args: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| match p.ty {
                Ty::Int => format!("{}", i + 3),
                Ty::Guard => format!("Guard(\"arg{i}\")"),
                Ty::OptInt => format!("Some({})", i + 4),
                Ty::OptGuard => format!("Some(Guard(\"arg{i}\"))"),
                Ty::Pair => format!("Pair {{ g: Guard(\"arg{i}\"), n: {} }}", i + 5),
                Ty::VecG => format!("Vec::from([Guard(\"arg{i}a\"), Guard(\"arg{i}b\")])"),
                other => unreachable!("no argument of type {other:?}"),
            })
            .collect();
        args.join(", ")
    }

    /// The whole function, with `attr` (`iomgr::task`) as its attribute if given.
    pub fn source(&self, name: &str, attr: Option<&str>) -> String {
        let mut s = String::new();
        if let Some(a) = attr {
            s.push_str(&format!("#[{a}]\n"));
        }
        s.push_str(&self.signature(name));
        s.push(' ');
        s.push_str(&self.body.render(0));
        s.push('\n');
        s
    }
}

/// Names for locals: few, so that shadowing is common.
const NAMES: [&str; 8] = ["a", "b", "c", "x", "y", "g", "h", "v"];

/// Knobs of the generator. A program is a function of its seed and these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Expressions nested deeper than this are leaves (statements still nest: blocks,
    /// `if`s and loops in statement position do not count). Small values give shallow,
    /// statement-heavy programs.
    pub max_depth: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_depth: 7 }
    }
}

/// Generates the program for `seed` with the default options.
pub fn generate(seed: u64) -> Program {
    generate_with(seed, Options::default())
}

/// Generates the program for `seed`.
pub fn generate_with(seed: u64, options: Options) -> Program {
    let mut rng = Rng::new(seed);
    let ret = *rng.pick(&[
        Ty::Int,
        Ty::Int,
        Ty::Int,
        Ty::OptInt,
        Ty::OptInt,
        Ty::ResInt,
        Ty::ResInt,
        Ty::Guard,
        Ty::Tup,
        Ty::Unit,
    ]);
    // Mostly small programs (they fail in fewer ways at once and shrink faster), some big.
    let budget = if rng.chance(70) {
        15 + rng.below(60)
    } else {
        75 + rng.below(150)
    } as i32;
    let mut g = Gen {
        rng,
        last_was_construct: false,
        max_depth: options.max_depth,
        env: Env::default(),
        labels: Vec::new(),
        barriers: Vec::new(),
        loop_depth: 0,
        depth: 0,
        budget,
        counter: 0,
        ret,
        can_await: true,
        in_guard: false,
        no_break: false,
        items: Vec::new(),
    };
    g.env.push();
    let mut params = Vec::new();
    for _ in 0..g.rng.below(4) {
        let ty = *g.rng.pick(&[
            Ty::Int,
            Ty::Int,
            Ty::Guard,
            Ty::Guard,
            Ty::OptInt,
            Ty::OptGuard,
            Ty::Pair,
            Ty::VecG,
        ]);
        let name = loop {
            let n = *g.rng.pick(&NAMES);
            if !params.iter().any(|p: &Param| p.name == n) {
                break n.to_string();
            }
        };
        let mutable = g.rng.chance(30);
        g.declare(&name, ty, mutable, St::Live);
        params.push(Param { name, ty, mutable });
    }
    let n = 2 + g.rng.below(6);
    let body = g.block_n(ret, n, false);
    Program { params, ret, body }
}

/// Something `break`/`continue` can target.
#[derive(Debug, Clone)]
struct Label {
    name: String,
    kind: LabelKind,
    /// The barrier depth it lives at: no `break` crosses a closure or `async` block.
    barrier: usize,
    /// For labelled blocks: the move states at each `break` out of it.
    breaks: Vec<Vec<St>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LabelKind {
    /// `loop` whose `break` carries a value of this type (`Unit`: none).
    Loop(Ty),
    /// `while`/`while let`/`for`.
    Iter,
    /// A labelled block whose `break` carries a value of this type.
    Block(Ty),
}

/// A closure or `async` block being generated.
#[derive(Debug, Clone)]
struct Barrier {
    kind: BarKind,
    /// Locals from outside captured by reference.
    captured: Vec<usize>,
    /// Locals from outside captured by value (`move`).
    moved_in: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BarKind {
    /// `|x| ...`: captures by reference; nothing from outside may be moved or assigned.
    Fn,
    /// `move |x| ...`: captures non-`Copy` locals by value (they are moved at creation).
    FnMove,
    /// `async { ... }`: captures by reference, or by value what it moves.
    Async,
    /// `async move { ... }`: captures everything it names by value.
    AsyncMove,
}

impl BarKind {
    fn moves(self) -> bool {
        matches!(self, BarKind::FnMove | BarKind::AsyncMove)
    }
    fn is_async(self) -> bool {
        matches!(self, BarKind::Async | BarKind::AsyncMove)
    }
}

/// How an expression uses a local.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Use {
    /// Reads it (copies a `Copy` value, borrows anything else briefly).
    Read,
    /// Reads the `n` field of a `Pair`/tuple.
    ReadN,
    /// Borrows the `g` field of a `Pair`/tuple.
    ReadG,
    /// Moves it out.
    Move,
    /// Moves its `g` field out.
    MoveG,
    /// Assigns it (`x = ...`, also the first assignment of `let x;`).
    Assign,
    /// Assigns its `n` field.
    AssignN,
    /// Assigns its `g` field.
    AssignG,
    /// Borrows it mutably (`v.push(..)`, `v.pop()`).
    MutBorrow,
}

/// What a pattern does to the place it matches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Effect {
    None,
    /// Moves the whole value out.
    Move,
    /// Moves the `g` field out.
    MoveG,
    /// Borrows it for as long as the bindings live.
    Borrow,
}

/// A pattern, its bindings and its effect.
#[derive(Debug)]
struct Pat {
    text: String,
    binds: Vec<(String, Ty, bool)>,
    effect: Effect,
    refutable: bool,
}

/// Where a scrutinee comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scrut {
    /// An rvalue (a temporary).
    Value,
    /// A local, matched in place.
    Place(usize),
    /// `&local`.
    RefPlace(usize),
}

/// Generator state.
#[derive(Debug)]
struct Gen {
    rng: Rng,
    /// The last statement was a block-like construct.
    last_was_construct: bool,
    max_depth: u32,
    env: Env,
    labels: Vec<Label>,
    barriers: Vec<Barrier>,
    loop_depth: u32,
    depth: u32,
    budget: i32,
    counter: u32,
    /// The return type of the innermost function-like body (program, closure, async block).
    ret: Ty,
    can_await: bool,
    /// Inside a match guard: nothing may be moved or assigned.
    in_guard: bool,
    /// Inside a `while` condition: no `break`/`continue`.
    no_break: bool,
    /// Items declared in each open block (bit 0: `K`, 1: `hf`, 2: `W`).
    items: Vec<u8>,
}

/// What the generic productions are.
#[derive(Debug, Clone, Copy)]
enum Prod {
    Special,
    Var,
    Block,
    If,
    IfLet,
    Chain,
    Match,
    Loop,
    Labeled,
    Diverge,
    AwaitTk,
    AwaitAsync,
}

/// What a production may change in the model, saved so that a production that gives up
/// halfway (after generating a sub-expression that moved or assigned something) leaves no
/// trace: its code is dropped, so must its effects be.
#[derive(Debug)]
struct Saved {
    env: Env,
    labels: Vec<Label>,
    barriers: Vec<Barrier>,
}

impl Gen {
    // ----- bookkeeping -------------------------------------------------------------------

    fn save(&self) -> Saved {
        Saved {
            env: self.env.clone(),
            labels: self.labels.clone(),
            barriers: self.barriers.clone(),
        }
    }

    fn load(&mut self, s: Saved) {
        self.env = s.env;
        self.labels = s.labels;
        self.barriers = s.barriers;
    }

    fn tag(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    fn declare(&mut self, name: &str, ty: Ty, mutable: bool, st: St) -> usize {
        self.env.declare(Var {
            name: name.to_string(),
            ty,
            mutable,
            st,
            loop_depth: self.loop_depth,
            barrier: self.barriers.len(),
            frozen: 0,
        })
    }

    /// A name for a new binding, often one that shadows a visible local.
    fn fresh_name(&mut self) -> String {
        if self.rng.chance(50) {
            let bound: Vec<&str> = NAMES
                .iter()
                .copied()
                .filter(|n| self.env.is_bound(n))
                .collect();
            if !bound.is_empty() {
                return self.rng.pick(&bound).to_string();
            }
        }
        self.rng.pick(&NAMES).to_string()
    }

    /// `k` distinct names.
    fn fresh_names(&mut self, k: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        while out.len() < k {
            let n = self.fresh_name();
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    fn lit(&mut self) -> String {
        self.rng.below(10).to_string()
    }

    /// Visible locals of type `ty` for which `use_ok(id, u)` holds.
    fn candidates(&self, ty: Ty, u: Use) -> Vec<usize> {
        self.env
            .visible()
            .into_iter()
            .filter(|&v| self.env.vars[v].ty == ty && self.use_ok(v, u))
            .collect()
    }

    /// Picks a visible local of type `ty` that may be used as `u`, and uses it.
    fn pick_var(&mut self, ty: Ty, u: Use) -> Option<usize> {
        let c = self.candidates(ty, u);
        if c.is_empty() {
            return None;
        }
        let v = *self.rng.pick(&c);
        let ok = self.use_var(v, u);
        debug_assert!(ok);
        Some(v)
    }

    fn name(&self, v: usize) -> String {
        self.env.vars[v].name.clone()
    }

    /// Whether `use_var(v, u)` would succeed (no effects).
    fn use_ok(&self, v: usize, u: Use) -> bool {
        let var = &self.env.vars[v];
        let crossed = self.barriers.len() - var.barrier;
        let inner = self.barriers.last();
        let movable = var.st == St::Live
            && var.frozen == 0
            && !self.in_guard
            && var.loop_depth == self.loop_depth;
        match u {
            Use::Read => {
                if var.st != St::Live || crossed > 1 {
                    return false;
                }
                if crossed == 0 {
                    return true;
                }
                let b = inner.expect("barrier");
                if var.ty.is_agg() {
                    // Whole structs are only borrowed, by non-move closures.
                    return b.kind == BarKind::Fn;
                }
                if b.kind.moves() && !var.ty.is_copy() {
                    return b.moved_in.contains(&v) || movable;
                }
                true
            }
            Use::ReadN => {
                matches!(var.st, St::Live | St::PartG)
                    && (crossed == 0 || crossed == 1 && !inner.expect("barrier").kind.is_async())
            }
            Use::ReadG => {
                var.st == St::Live
                    && (crossed == 0 || crossed == 1 && inner.expect("barrier").kind == BarKind::Fn)
            }
            Use::Move => {
                if !movable {
                    return false;
                }
                match crossed {
                    0 => true,
                    1 => inner.expect("barrier").kind.is_async() && !var.ty.is_agg(),
                    _ => false,
                }
            }
            Use::MoveG => crossed == 0 && movable,
            Use::Assign => {
                crossed == 0
                    && var.frozen == 0
                    && !self.in_guard
                    && (var.mutable || var.st == St::Uninit && var.loop_depth == self.loop_depth)
            }
            Use::AssignN => {
                crossed == 0
                    && var.mutable
                    && var.frozen == 0
                    && !self.in_guard
                    && var.st == St::Live
            }
            Use::AssignG => {
                crossed == 0
                    && var.mutable
                    && var.frozen == 0
                    && !self.in_guard
                    && matches!(var.st, St::Live | St::PartG)
            }
            Use::MutBorrow => {
                crossed == 0
                    && var.mutable
                    && var.frozen == 0
                    && !self.in_guard
                    && var.st == St::Live
            }
        }
    }

    /// Uses local `v` as `u` if the model allows it, recording captures and moves.
    fn use_var(&mut self, v: usize, u: Use) -> bool {
        if !self.use_ok(v, u) {
            return false;
        }
        let crossed = self.barriers.len() - self.env.vars[v].barrier;
        let ty = self.env.vars[v].ty;
        if crossed == 1 {
            // Crossing a closure or async block: record the capture.
            let b = self.barriers.last_mut().expect("barrier");
            let by_value = match u {
                Use::Read => b.kind.moves() && !ty.is_copy(),
                Use::Move => b.kind == BarKind::AsyncMove,
                _ => false,
            };
            let by_ref = matches!(u, Use::Read | Use::ReadN | Use::ReadG)
                && !by_value
                && !(b.kind == BarKind::FnMove && u == Use::ReadN);
            if by_value && !b.moved_in.contains(&v) {
                b.moved_in.push(v);
            }
            if by_ref && !b.captured.contains(&v) {
                b.captured.push(v);
            }
        }
        let var = &mut self.env.vars[v];
        match u {
            Use::Move => var.st = St::Moved,
            Use::MoveG => var.st = St::PartG,
            Use::Assign | Use::AssignG => var.st = St::Live,
            _ => {}
        }
        true
    }

    /// Freezes `v` until `unfreeze`.
    fn freeze(&mut self, v: usize) {
        self.env.vars[v].frozen += 1;
    }

    fn unfreeze(&mut self, v: usize) {
        self.env.vars[v].frozen -= 1;
    }

    fn enter_barrier(&mut self, kind: BarKind, ret: Ty) -> (Ty, bool, bool, bool) {
        self.barriers.push(Barrier {
            kind,
            captured: Vec::new(),
            moved_in: Vec::new(),
        });
        let saved = (self.ret, self.can_await, self.in_guard, self.no_break);
        self.ret = ret;
        self.can_await = kind.is_async();
        // `in_guard` stays: a closure made in a match guard captures (moves) in the guard.
        self.no_break = false;
        saved
    }

    /// Closes a barrier: what it captured by value is moved; if the closure or future is
    /// stored in a local, what it borrows stays borrowed until that local's scope ends.
    fn exit_barrier(&mut self, saved: (Ty, bool, bool, bool), stored: bool) {
        (self.ret, self.can_await, self.in_guard, self.no_break) = saved;
        let b = self.barriers.pop().expect("barrier");
        for v in b.moved_in {
            self.env.vars[v].st = St::Moved;
        }
        if stored {
            for v in b.captured {
                self.env.freeze_in_scope(v);
            }
        }
    }

    fn try_ok(&self) -> bool {
        self.barriers.is_empty() && matches!(self.ret, Ty::OptInt | Ty::ResInt)
    }

    /// Labels reachable from here (no barrier in between).
    fn reachable_labels(&self) -> Vec<usize> {
        if self.no_break {
            return Vec::new();
        }
        (0..self.labels.len())
            .filter(|&i| self.labels[i].barrier == self.barriers.len())
            .collect()
    }

    fn new_label(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("'{prefix}{}", self.counter)
    }

    // ----- expressions -------------------------------------------------------------------

    /// An expression of type `ty`.
    fn expr(&mut self, ty: Ty) -> Node {
        self.budget -= 1;
        self.depth += 1;
        let n = if self.budget <= 0 || self.depth > self.max_depth {
            self.leafish(ty)
        } else {
            self.expr_inner(ty)
        };
        self.depth -= 1;
        ex(ty, n)
    }

    /// An expression that needs parentheses in a condition or scrutinee if it has a
    /// struct literal.
    fn cond_expr(&mut self, ty: Ty) -> Node {
        let e = self.expr(ty);
        let text = e.render(0);
        let keyword = [
            "if ", "match ", "loop ", "while ", "for ", "async ", "'", "{", "return", "break",
            "continue",
        ]
        .iter()
        .any(|k| text.starts_with(k));
        if keyword || text.contains("Pair {") {
            seq(vec![t("("), e, t(")")])
        } else {
            e
        }
    }

    fn leafish(&mut self, ty: Ty) -> Node {
        if ty == Ty::Bool
            && self.rng.chance(40)
            && let Some(v) = self.pick_var(Ty::Int, Use::Read)
        {
            // A condition that depends on data.
            let op = *self.rng.pick(&["<", ">", "=="]);
            return t(format!("({} {op} {})", self.name(v), self.lit()));
        }
        if self.rng.chance(50)
            && let Some(n) = self.var_expr(ty)
        {
            return n;
        }
        self.leaf(ty)
    }

    /// A value that needs nothing.
    fn leaf(&mut self, ty: Ty) -> Node {
        let l = self.lit();
        t(match ty {
            Ty::Unit => "()".to_string(),
            Ty::Int => l,
            Ty::Bool => (if self.rng.chance(50) { "true" } else { "false" }).to_string(),
            Ty::Guard => {
                let g = self.tag("g");
                if self.rng.chance(50) {
                    format!("Guard(\"{g}\")")
                } else {
                    format!("mk(\"{g}\")")
                }
            }
            Ty::OptInt => {
                if self.rng.chance(60) {
                    format!("Some({l})")
                } else {
                    "None::<i64>".to_string()
                }
            }
            Ty::OptGuard => {
                if self.rng.chance(60) {
                    format!("Some(Guard(\"{}\"))", self.tag("g"))
                } else {
                    "None::<Guard>".to_string()
                }
            }
            Ty::ResInt => {
                if self.rng.chance(60) {
                    format!("Ok::<i64, i64>({l})")
                } else {
                    format!("Err::<i64, i64>({l})")
                }
            }
            Ty::Pair => format!("Pair {{ g: Guard(\"{}\"), n: {l} }}", self.tag("g")),
            Ty::Tup => format!("(Guard(\"{}\"), {l})", self.tag("g")),
            Ty::VecG => "Vec::<Guard>::new()".to_string(),
            other => unreachable!("no leaf of type {other:?}"),
        })
    }

    /// A local of type `ty`, read if `Copy`, moved otherwise.
    fn var_expr(&mut self, ty: Ty) -> Option<Node> {
        let u = if ty.is_copy() { Use::Read } else { Use::Move };
        let v = self.pick_var(ty, u)?;
        Some(t(self.name(v)))
    }

    fn expr_inner(&mut self, ty: Ty) -> Node {
        let aw = if self.can_await { 1 } else { 0 };
        let unit = ty == Ty::Unit;
        let table: [(Prod, u32); 12] = [
            (Prod::Special, if unit { 4 } else { 40 }),
            (Prod::Var, if unit { 0 } else { 14 }),
            (Prod::Block, 4),
            (Prod::If, 5),
            (Prod::IfLet, 3),
            (Prod::Chain, 2),
            (Prod::Match, 4),
            (Prod::Loop, if ty.default_expr().is_some() { 2 } else { 0 }),
            (Prod::Labeled, 2),
            (Prod::Diverge, 3),
            (Prod::AwaitTk, 12 * aw),
            (Prod::AwaitAsync, 4 * aw),
        ];
        let weights: Vec<u32> = table.iter().map(|p| p.1).collect();
        for _ in 0..6 {
            let i = self.rng.weighted(&weights).expect("weights");
            let saved = self.save();
            let r = match table[i].0 {
                Prod::Special => self.special(ty),
                Prod::Var => self.var_expr(ty),
                Prod::Block => Some(self.block(ty)),
                Prod::If => Some(self.if_expr(ty)),
                Prod::IfLet => Some(self.if_let(ty)),
                Prod::Chain => Some(self.chain(ty)),
                Prod::Match => Some(self.match_expr(ty)),
                Prod::Loop => Some(self.loop_expr(ty)),
                Prod::Labeled => Some(self.labeled(ty)),
                Prod::Diverge => self.diverge_if(ty),
                Prod::AwaitTk => Some(self.await_tk(ty)),
                Prod::AwaitAsync => Some(self.await_async(ty)),
            };
            match r {
                Some(n) => return n,
                None => self.load(saved),
            }
        }
        self.leafish(ty)
    }

    /// `tk("tN", p, value).await`.
    fn await_tk(&mut self, ty: Ty) -> Node {
        let tag = self.tag("t");
        let p = *self.rng.pick(&[0, 1, 1, 1, 2]);
        // Often a simple value: awaits nested in awaited expressions stay common, but do
        // not crowd out everything else.
        let assign = if ty == Ty::Int && self.rng.chance(12) {
            self.assign_expr().map(|n| ex(ty, n))
        } else {
            None
        };
        let v = match assign {
            Some(a) => a,
            None if self.rng.chance(45) => ex(ty, self.leafish(ty)),
            None => self.expr(ty),
        };
        seq(vec![t(format!("tk(\"{tag}\", {p}, ")), v, t(").await")])
    }

    /// `async { .. }.await` or `async move { .. }.await`.
    fn await_async(&mut self, ty: Ty) -> Node {
        let kind = if self.rng.chance(30) {
            BarKind::AsyncMove
        } else {
            BarKind::Async
        };
        let saved = self.enter_barrier(kind, ty);
        let body = self.block(ty);
        self.exit_barrier(saved, false);
        let kw = if kind == BarKind::AsyncMove {
            "async move "
        } else {
            "async "
        };
        seq(vec![t(kw), ex(ty, body), t(".await")])
    }

    /// Type-specific productions.
    fn special(&mut self, ty: Ty) -> Option<Node> {
        match ty {
            Ty::Int => self.int_special(),
            Ty::Bool => self.bool_special(),
            Ty::Guard => self.guard_special(),
            Ty::OptInt => self.optint_special(),
            Ty::OptGuard => self.optguard_special(),
            Ty::ResInt => self.resint_special(),
            Ty::Pair => Some(self.pair_lit()),
            Ty::Tup => {
                let g = self.expr(Ty::Guard);
                let n = self.expr(Ty::Int);
                Some(seq(vec![t("("), g, t(", "), n, t(")")]))
            }
            Ty::VecG => self.vec_special(),
            Ty::Unit => Some(self.unit_construct()),
            _ => None,
        }
    }

    fn pair_lit(&mut self) -> Node {
        if self.rng.chance(50) {
            let g = self.expr(Ty::Guard);
            let n = self.expr(Ty::Int);
            seq(vec![t("Pair { g: "), g, t(", n: "), n, t(" }")])
        } else {
            let n = self.expr(Ty::Int);
            let g = self.expr(Ty::Guard);
            seq(vec![t("Pair { n: "), n, t(", g: "), g, t(" }")])
        }
    }

    /// A `&Guard` argument: `&g`, `&p.g`, `r`, `&mk("gN")`.
    fn ref_arg(&mut self) -> Node {
        match self.rng.below(4) {
            0 => {
                if let Some(v) = self.pick_var(Ty::Guard, Use::Read) {
                    return t(format!("&{}", self.name(v)));
                }
            }
            1 => {
                if let Some(v) = self.pick_var(Ty::RefGuard, Use::Read) {
                    return t(self.name(v));
                }
            }
            2 => {
                let aggs: Vec<usize> = [Ty::Pair, Ty::Tup]
                    .iter()
                    .flat_map(|&ty| self.candidates(ty, Use::ReadG))
                    .collect();
                if !aggs.is_empty() {
                    let v = *self.rng.pick(&aggs);
                    self.use_var(v, Use::ReadG);
                    let f = self.env.vars[v].ty.fields().0;
                    return t(format!("&{}.{f}", self.name(v)));
                }
            }
            _ => {}
        }
        t(format!("&mk(\"{}\")", self.tag("g")))
    }

    /// An `Fn(i64) -> i64` closure literal (not stored): `|x: i64| body`.
    fn closure_lit(&mut self, kind: BarKind, annotate: bool) -> Node {
        let saved = self.enter_barrier(kind, Ty::Int);
        self.env.push();
        let p = self.fresh_name();
        self.declare(&p, Ty::Int, false, St::Live);
        let body = self.expr(Ty::Int);
        self.env.pop();
        self.exit_barrier(saved, false);
        let mv = if kind == BarKind::FnMove { "move " } else { "" };
        let head = if annotate {
            format!("{mv}|{p}: i64| ")
        } else {
            format!("{mv}|{p}| ")
        };
        seq(vec![t(head), body])
    }

    fn int_special(&mut self) -> Option<Node> {
        let k = self.rng.below(23);
        match k {
            0 => Some(t(self.lit())),
            20 | 21 => self.observe(),
            22 => self.assign_expr(),
            1 | 2 => {
                let op = *self.rng.pick(&["+", "+", "-", "-", "*"]);
                let a = self.expr(Ty::Int);
                let b = self.expr(Ty::Int);
                Some(seq(vec![t("("), a, t(format!(" {op} ")), b, t(")")]))
            }
            3 => {
                let tag = self.tag("e");
                let a = self.expr(Ty::Int);
                Some(seq(vec![t(format!("lg(\"{tag}\", ")), a, t(")")]))
            }
            4 => {
                // A method of a Guard local, by reference or (peek) by value.
                let m = self.rng.below(4);
                if m == 3 {
                    let v = self.pick_var(Ty::Guard, Use::Move)?;
                    return Some(t(format!("{}.peek()", self.name(v))));
                }
                let ty = if self.rng.chance(30) {
                    Ty::RefGuard
                } else {
                    Ty::Guard
                };
                let v = self.pick_var(ty, Use::Read)?;
                let name = self.name(v);
                Some(match m {
                    0 => t(format!("{name}.val()")),
                    1 => t(format!("{name}.into_x()")),
                    _ => {
                        self.freeze(v);
                        let a = self.expr(Ty::Int);
                        self.unfreeze(v);
                        seq(vec![t(format!("{name}.expect(")), a, t(")")])
                    }
                })
            }
            5 => {
                // Methods of temporaries.
                let g = self.tag("g");
                Some(match self.rng.below(3) {
                    0 => t(format!("mk(\"{g}\").val()")),
                    1 => t(format!("Guard(\"{g}\").peek()")),
                    _ => {
                        let a = self.expr(Ty::Int);
                        seq(vec![t(format!("mk(\"{g}\").expect(")), a, t(")")])
                    }
                })
            }
            6 => {
                let g = self.expr(Ty::Guard);
                Some(seq(vec![t("consume("), g, t(")")]))
            }
            7 => {
                // Fields and methods of a Pair/tuple local.
                let ty = *self.rng.pick(&[Ty::Pair, Ty::Tup]);
                let (fg, fnn) = ty.fields();
                match self.rng.below(4) {
                    0 | 1 => {
                        let v = self.pick_var(ty, Use::ReadN)?;
                        Some(t(format!("{}.{fnn}", self.name(v))))
                    }
                    2 => {
                        let v = self.pick_var(ty, Use::ReadG)?;
                        Some(t(format!("{}.{fg}.val()", self.name(v))))
                    }
                    _ => {
                        if ty != Ty::Pair {
                            return None;
                        }
                        if self.rng.chance(50) {
                            let v = self.pick_var(Ty::Pair, Use::Read)?;
                            Some(t(format!("{}.sum()", self.name(v))))
                        } else {
                            let p = self.expr(Ty::Pair);
                            Some(seq(vec![t("("), p, t(").into_n()")]))
                        }
                    }
                }
            }
            8 => {
                let v = self.pick_var(Ty::VecG, Use::Read)?;
                Some(t(format!("({}.len() as i64)", self.name(v))))
            }
            9 => Some(match self.rng.below(3) {
                0 => t("K"),
                1 => {
                    let a = self.expr(Ty::Int);
                    seq(vec![t("hf("), a, t(")")])
                }
                _ => {
                    let a = self.expr(Ty::Int);
                    seq(vec![t("W("), a, t(").get()")])
                }
            }),
            10 => {
                let rt = *self.rng.pick(&[Ty::OptInt, Ty::ResInt]);
                let r = self.expr(rt);
                let d = self.expr(Ty::Int);
                Some(seq(vec![t("("), r, t(").unwrap_or("), d, t(")")]))
            }
            11 => {
                if !self.try_ok() {
                    return None;
                }
                let r = self.expr(self.ret);
                Some(seq(vec![t("("), r, t(")?")]))
            }
            12 => {
                // Closures: call a stored one, or one written in place.
                match self.rng.below(3) {
                    0 => {
                        let v = self.pick_var(Ty::CloFn, Use::Read)?;
                        let name = self.name(v);
                        let a = self.expr(Ty::Int);
                        Some(seq(vec![t(format!("{name}(")), a, t(")")]))
                    }
                    1 => {
                        let v = self.pick_var(Ty::CloOnce, Use::Move)?;
                        Some(t(format!("{}()", self.name(v))))
                    }
                    _ => {
                        let kind = if self.rng.chance(30) {
                            BarKind::FnMove
                        } else {
                            BarKind::Fn
                        };
                        let c = self.closure_lit(kind, true);
                        let a = self.expr(Ty::Int);
                        Some(seq(vec![t("("), c, t(")("), a, t(")")]))
                    }
                }
            }
            13 => {
                // Option combinators with closures.
                match self.rng.below(3) {
                    0 => {
                        let o = self.expr(Ty::OptInt);
                        let c = self.closure_lit(BarKind::Fn, false);
                        let d = self.expr(Ty::Int);
                        Some(seq(vec![
                            t("("),
                            o,
                            t(").map("),
                            c,
                            t(").unwrap_or("),
                            d,
                            t(")"),
                        ]))
                    }
                    1 => {
                        let o = self.expr(Ty::OptGuard);
                        let m = if self.rng.chance(50) { "val" } else { "peek" };
                        let d = self.expr(Ty::Int);
                        Some(seq(vec![
                            t("("),
                            o,
                            t(format!(").map(|z| z.{m}()).unwrap_or(")),
                            d,
                            t(")"),
                        ]))
                    }
                    _ => {
                        let v = self.pick_var(Ty::OptGuard, Use::Read)?;
                        self.freeze(v);
                        let d = self.expr(Ty::Int);
                        self.unfreeze(v);
                        Some(seq(vec![
                            t(format!("{}.as_ref().map_or(", self.name(v))),
                            d,
                            t(", |z| z.into_x())"),
                        ]))
                    }
                }
            }
            14 => {
                if self.rng.chance(50) {
                    let a = self.expr(Ty::Int);
                    let b = self.expr(Ty::Int);
                    Some(seq(vec![t("("), a, t(", "), b, t(").1")]))
                } else {
                    let a = self.expr(Ty::Int);
                    let b = self.expr(Ty::Int);
                    let c = self.expr(Ty::Int);
                    let i = self.expr(Ty::Int);
                    Some(seq(vec![
                        t("["),
                        a,
                        t(", "),
                        b,
                        t(", "),
                        c,
                        t("][idx("),
                        i,
                        t(")]"),
                    ]))
                }
            }
            _ => {
                if !self.can_await {
                    return None;
                }
                self.int_await()
            }
        }
    }

    /// An assignment inside an expression: `{ c = 5; 1 }`, `{ c += 1; c }`.
    fn assign_expr(&mut self) -> Option<Node> {
        let v = self.pick_var(Ty::Int, Use::Assign)?;
        let name = self.name(v);
        if self.env.vars[v].st == St::Live && self.rng.chance(50) {
            let e = self.expr(Ty::Int);
            return Some(seq(vec![
                t(format!("{{ {name} += ")),
                e,
                t(format!("; {name} }}")),
            ]));
        }
        let e = self.expr(Ty::Int);
        let r = self.expr(Ty::Int);
        Some(seq(vec![
            t(format!("{{ {name} = ")),
            e,
            t("; "),
            r,
            t(" }"),
        ]))
    }

    /// An `i64` that reads up to three visible locals (`x + g.val() + p.n`), so that a
    /// wrong binding, a lost assignment or a value read from the wrong scope shows in the
    /// log or the result.
    fn observe(&mut self) -> Option<Node> {
        let mut parts: Vec<String> = Vec::new();
        let vis = self.env.visible();
        let mut order: Vec<usize> = vis;
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i + 1);
            order.swap(i, j);
        }
        for v in order {
            if parts.len() >= 3 {
                break;
            }
            let name = self.name(v);
            let ty = self.env.vars[v].ty;
            let read = match ty {
                Ty::Int => Some((Use::Read, name)),
                Ty::Bool => Some((Use::Read, format!("({name} as i64)"))),
                Ty::Guard | Ty::RefGuard => Some((Use::Read, format!("{name}.val()"))),
                Ty::OptInt | Ty::ResInt => Some((Use::Read, format!("{name}.unwrap_or(0)"))),
                Ty::Pair | Ty::Tup => Some((Use::ReadN, format!("{name}.{}", ty.fields().1))),
                Ty::VecG => Some((Use::Read, format!("({name}.len() as i64)"))),
                _ => None,
            };
            if let Some((u, text)) = read
                && self.use_var(v, u)
            {
                parts.push(text);
            }
        }
        match parts.len() {
            0 => None,
            1 => Some(t(parts.remove(0))),
            _ => Some(t(format!("({})", parts.join(" + ")))),
        }
    }

    /// `.await`s that produce an `i64` in ways the generic `tk(.., i64)` does not.
    fn int_await(&mut self) -> Option<Node> {
        let tag = self.tag("t");
        let p = *self.rng.pick(&[0, 1, 1, 2]);
        Some(match self.rng.below(9) {
            0 => {
                let g = self.expr(Ty::Guard);
                let n = self.expr(Ty::Int);
                seq(vec![
                    t(format!("eat(\"{tag}\", ")),
                    g,
                    t(", "),
                    n,
                    t(").await"),
                ])
            }
            1 => {
                let r = self.ref_arg();
                seq(vec![t(format!("rf(\"{tag}\", ")), r, t(").await")])
            }
            2 => {
                let r = self.ref_arg();
                seq(vec![t(format!("rb(\"{tag}\", ")), r, t(").await")])
            }
            3 => {
                let v = self.pick_var(Ty::FutInt, Use::Move)?;
                t(format!("{}.await", self.name(v)))
            }
            4 => {
                let v = self.expr(Ty::VecG);
                seq(vec![
                    t(format!("(tk(\"{tag}\", {p}, ")),
                    v,
                    t(").await.len() as i64)"),
                ])
            }
            5 => {
                let g = self.expr(Ty::Guard);
                let m = *self.rng.pick(&["val()", "into_x()", "peek()"]);
                seq(vec![
                    t(format!("tk(\"{tag}\", {p}, ")),
                    g,
                    t(format!(").await.{m}")),
                ])
            }
            6 => {
                let ty = *self.rng.pick(&[Ty::Pair, Ty::Tup]);
                let a = self.expr(ty);
                let f = ty.fields().1;
                seq(vec![
                    t(format!("tk(\"{tag}\", {p}, ")),
                    a,
                    t(format!(").await.{f}")),
                ])
            }
            7 => {
                let o = self.expr(Ty::OptInt);
                let d = self.expr(Ty::Int);
                seq(vec![
                    t(format!("tk(\"{tag}\", {p}, ")),
                    o,
                    t(").await.unwrap_or("),
                    d,
                    t(")"),
                ])
            }
            _ => {
                if !self.try_ok() {
                    return None;
                }
                let r = self.expr(self.ret);
                seq(vec![t(format!("tk(\"{tag}\", {p}, ")), r, t(").await?")])
            }
        })
    }

    fn bool_special(&mut self) -> Option<Node> {
        Some(match self.rng.below(9) {
            0 => t(if self.rng.chance(50) { "true" } else { "false" }),
            1 | 2 => {
                let op = *self.rng.pick(&["<", ">", "==", "!=", "<="]);
                let a = self.expr(Ty::Int);
                let b = self.expr(Ty::Int);
                seq(vec![t("("), a, t(format!(" {op} ")), b, t(")")])
            }
            3 | 4 => {
                // The right side runs only sometimes: a branch for the model.
                let op = if self.rng.chance(50) { "&&" } else { "||" };
                let a = self.expr(Ty::Bool);
                let snap = self.env.snapshot();
                let b = self.expr(Ty::Bool);
                let after = self.env.snapshot();
                self.env.restore(&merge(&snap, &after));
                seq(vec![t("("), a, t(format!(" {op} ")), b, t(")")])
            }
            5 => {
                let a = self.expr(Ty::Bool);
                seq(vec![t("!("), a, t(")")])
            }
            6 => {
                let o = self.expr(Ty::OptInt);
                seq(vec![t("("), o, t(").is_some()")])
            }
            7 => {
                let v = self.pick_var(Ty::OptGuard, Use::Read)?;
                t(format!("{}.is_some()", self.name(v)))
            }
            _ => {
                let r = self.expr(Ty::ResInt);
                seq(vec![t("("), r, t(").is_ok()")])
            }
        })
    }

    fn guard_special(&mut self) -> Option<Node> {
        Some(match self.rng.below(6) {
            0 => t(format!("Guard(\"{}\")", self.tag("g"))),
            1 => t(format!("mk(\"{}\")", self.tag("g"))),
            2 => {
                let g = self.expr(Ty::Guard);
                seq(vec![t("pass("), g, t(")")])
            }
            3 => {
                let ty = *self.rng.pick(&[Ty::Pair, Ty::Tup]);
                let v = self.pick_var(ty, Use::MoveG)?;
                t(format!("{}.{}", self.name(v), ty.fields().0))
            }
            4 => {
                let o = self.expr(Ty::OptGuard);
                seq(vec![
                    t("("),
                    o,
                    t(format!(").unwrap_or(mk(\"{}\"))", self.tag("g"))),
                ])
            }
            _ => {
                let v = self.pick_var(Ty::VecG, Use::MutBorrow)?;
                t(format!(
                    "{}.pop().unwrap_or(Guard(\"{}\"))",
                    self.name(v),
                    self.tag("g")
                ))
            }
        })
    }

    fn optint_special(&mut self) -> Option<Node> {
        Some(match self.rng.below(6) {
            0 => {
                let a = self.expr(Ty::Int);
                seq(vec![t("Some("), a, t(")")])
            }
            1 => t("None::<i64>"),
            2 => {
                let a = self.expr(Ty::Int);
                seq(vec![t("opt("), a, t(")")])
            }
            3 => t(format!("mk(\"{}\").pick()", self.tag("g"))),
            4 => {
                let v = self.pick_var(Ty::Guard, Use::Read)?;
                t(format!("{}.pick()", self.name(v)))
            }
            _ => {
                let o = self.expr(Ty::OptInt);
                let c = self.closure_lit(BarKind::Fn, false);
                seq(vec![t("("), o, t(").map("), c, t(")")])
            }
        })
    }

    fn optguard_special(&mut self) -> Option<Node> {
        Some(match self.rng.below(3) {
            0 => {
                let g = self.expr(Ty::Guard);
                seq(vec![t("Some("), g, t(")")])
            }
            1 => t("None::<Guard>"),
            _ => {
                let v = self.pick_var(Ty::VecG, Use::MutBorrow)?;
                t(format!("{}.pop()", self.name(v)))
            }
        })
    }

    fn resint_special(&mut self) -> Option<Node> {
        let a = self.expr(Ty::Int);
        Some(match self.rng.below(3) {
            0 => seq(vec![t("Ok::<i64, i64>("), a, t(")")]),
            1 => seq(vec![t("Err::<i64, i64>("), a, t(")")]),
            _ => seq(vec![t("chk("), a, t(")")]),
        })
    }

    fn vec_special(&mut self) -> Option<Node> {
        Some(if self.rng.chance(70) {
            let a = self.expr(Ty::Guard);
            let b = self.expr(Ty::Guard);
            seq(vec![t("Vec::from(["), a, t(", "), b, t("])")])
        } else {
            t("Vec::<Guard>::new()")
        })
    }

    // ----- blocks and control flow -------------------------------------------------------

    /// `{ statements; tail }` with a few statements.
    fn block(&mut self, ty: Ty) -> Node {
        let n = if self.budget <= 0 {
            0
        } else {
            self.rng.below(if self.depth > 3 { 2 } else { 4 })
        };
        self.block_n(ty, n, false)
    }

    /// `{ n statements; tail }`; a loop body starts with the fuel check.
    fn block_n(&mut self, ty: Ty, n: usize, fuel: bool) -> Node {
        self.block_with(ty, n, fuel, None)
    }

    /// `block_n`, and if `closing` names a loop label and its value type, a last statement
    /// `if c { break 'label value; }` (written in the block's scope).
    fn block_with(&mut self, ty: Ty, n: usize, fuel: bool, closing: Option<(String, Ty)>) -> Node {
        self.env.push();
        self.items.push(0);
        let mut children = Vec::new();
        if fuel {
            children.push(t(match self.labels.last().map(|l| l.kind) {
                Some(LabelKind::Loop(v)) if v != Ty::Unit => {
                    format!(
                        "if fuel() {{ break {}; }}",
                        v.default_expr()
                            .expect("default")
                            .replace("\"m\"", "\"fuel\"")
                    )
                }
                _ => "if fuel() { break; }".to_string(),
            }));
        }
        for _ in 0..n {
            self.last_was_construct = false;
            children.push(self.stmt());
            // After a block, an `if`, a `match` or a loop: look at the locals again.
            if self.last_was_construct
                && self.rng.chance(50)
                && let Some(o) = self.observe()
            {
                let tag = self.tag("o");
                children.push(st(seq(vec![t(format!("lg(\"{tag}\", ")), o, t(");")])));
            }
        }
        if let Some((label, vty)) = closing {
            let c = self.cond_expr(Ty::Bool);
            let v = if vty == Ty::Unit {
                t("")
            } else {
                seq(vec![t(" "), self.break_value(vty)])
            };
            children.push(st(seq(vec![
                t("if "),
                c,
                t(format!(" {{ break {label}")),
                v,
                t("; }"),
            ])));
        }
        if ty != Ty::Unit {
            let tail = match self.rng.chance(35) && ty == Ty::Int {
                true => self.observe().map(|o| ex(Ty::Int, o)),
                false => None,
            };
            let tail = tail.unwrap_or_else(|| self.expr(ty));
            children.push(tail);
        }
        self.items.pop();
        self.env.pop();
        Node::Block(children)
    }

    fn if_expr(&mut self, ty: Ty) -> Node {
        let c = self.cond_expr(Ty::Bool);
        let snap = self.env.snapshot();
        let a = self.block(ty);
        let after_a = self.env.snapshot();
        self.env.restore(&snap);
        let mut parts = vec![t("if "), c, t(" "), ex(ty, a)];
        if ty != Ty::Unit || self.rng.chance(50) {
            let b = self.block(ty);
            parts.push(t(" else "));
            parts.push(ex(ty, b));
        }
        let after_b = self.env.snapshot();
        self.env.restore(&merge(&after_a, &after_b));
        seq(parts)
    }

    /// A scrutinee of type `ty`: an rvalue, a local in place, or `&local`.
    fn scrutinee(&mut self, ty: Ty, in_loop_head: bool) -> (Node, Scrut) {
        if !in_loop_head && self.rng.chance(45) {
            let c: Vec<usize> = self
                .env
                .visible()
                .into_iter()
                .filter(|&v| {
                    let var = &self.env.vars[v];
                    var.ty == ty && var.st == St::Live && var.barrier == self.barriers.len()
                })
                .collect();
            if !c.is_empty() {
                let v = *self.rng.pick(&c);
                let name = self.name(v);
                if ty.is_copy() {
                    return (t(name), Scrut::Place(v));
                }
                if matches!(ty, Ty::OptGuard | Ty::Guard | Ty::Pair | Ty::Tup)
                    && self.rng.chance(30)
                {
                    return (t(format!("&{name}")), Scrut::RefPlace(v));
                }
                return (t(name), Scrut::Place(v));
            }
        }
        let e = self.cond_expr(ty);
        // rustc 1.95 miscompiles a `match` on an indexed place (`[6, 7, 7][i]`) whose guard
        // awaits (debug: segfault; release: wrong value); a block makes it a value.
        if e.render(0).starts_with('[') {
            return (seq(vec![t("{ "), e, t(" }")]), Scrut::Value);
        }
        (e, Scrut::Value)
    }

    /// A pattern for a value of type `ty` (`by_ref`: matched through `&`).
    fn pattern(&mut self, ty: Ty, by_ref: bool, refutable: bool) -> Pat {
        let names = self.fresh_names(2);
        let (a, b) = (names[0].clone(), names[1].clone());
        let m = if !by_ref && self.rng.chance(20) {
            "mut "
        } else {
            ""
        };
        let mutable = !m.is_empty();
        let l = self.lit();
        let pat = |text: String, binds: Vec<(String, Ty, bool)>, effect, refutable| Pat {
            text,
            binds,
            effect,
            refutable,
        };
        let irrefutable_only = !refutable;
        let mut k = self.rng.below(6);
        if irrefutable_only {
            k = 10 + self.rng.below(3);
        }
        match ty {
            Ty::Int => match k {
                0 => pat(l, vec![], Effect::None, true),
                1 => pat(format!("({l} | 7)"), vec![], Effect::None, true),
                2 => pat(format!("0..={l}"), vec![], Effect::None, true),
                3 | 4 => pat(
                    format!("{m}{a} @ 1..=4"),
                    vec![(a, Ty::Int, mutable)],
                    Effect::None,
                    true,
                ),
                10 => pat("_".into(), vec![], Effect::None, false),
                _ => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::Int, mutable)],
                    Effect::None,
                    false,
                ),
            },
            Ty::Bool => match k {
                0..=2 => pat("true".into(), vec![], Effect::None, true),
                3..=5 => pat("false".into(), vec![], Effect::None, true),
                10 => pat("_".into(), vec![], Effect::None, false),
                _ => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::Bool, mutable)],
                    Effect::None,
                    false,
                ),
            },
            Ty::OptInt => match k {
                0 => pat(format!("Some({l})"), vec![], Effect::None, true),
                1 | 2 => pat(
                    format!("Some({m}{a})"),
                    vec![(a, Ty::Int, mutable)],
                    Effect::None,
                    true,
                ),
                3 => pat(
                    format!("Some({a} @ 1..=5)"),
                    vec![(a, Ty::Int, false)],
                    Effect::None,
                    true,
                ),
                4 | 5 => pat("None".into(), vec![], Effect::None, true),
                10 => pat("_".into(), vec![], Effect::None, false),
                _ => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::OptInt, mutable)],
                    Effect::None,
                    false,
                ),
            },
            Ty::OptGuard => match (k, by_ref) {
                (0 | 1, false) => pat(
                    format!("Some({m}{a})"),
                    vec![(a, Ty::Guard, mutable)],
                    Effect::Move,
                    true,
                ),
                (0 | 1, true) => pat(
                    format!("Some({a})"),
                    vec![(a, Ty::RefGuard, false)],
                    Effect::Borrow,
                    true,
                ),
                (2, false) => pat(
                    format!("Some(ref {a})"),
                    vec![(a, Ty::RefGuard, false)],
                    Effect::Borrow,
                    true,
                ),
                (2 | 3, _) => pat("Some(_)".into(), vec![], Effect::None, true),
                (4 | 5, _) => pat("None".into(), vec![], Effect::None, true),
                (10 | 11, _) | (_, true) => pat("_".into(), vec![], Effect::None, false),
                _ => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::OptGuard, mutable)],
                    Effect::Move,
                    false,
                ),
            },
            Ty::ResInt => match k {
                0 | 1 => pat(
                    format!("Ok({m}{a})"),
                    vec![(a, Ty::Int, mutable)],
                    Effect::None,
                    true,
                ),
                2 => pat(
                    format!("Err({a})"),
                    vec![(a, Ty::Int, false)],
                    Effect::None,
                    true,
                ),
                3 => pat(format!("Ok({l})"), vec![], Effect::None, true),
                10 => pat("_".into(), vec![], Effect::None, false),
                11 => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::ResInt, mutable)],
                    Effect::None,
                    false,
                ),
                _ => pat(
                    format!("(Ok({a}) | Err({a}))"),
                    vec![(a, Ty::Int, false)],
                    Effect::None,
                    false,
                ),
            },
            Ty::Pair | Ty::Tup => {
                let tup = ty == Ty::Tup;
                let both = |g: &str, n: &str| {
                    if tup {
                        format!("({g}, {n})")
                    } else {
                        format!("Pair {{ g: {g}, n: {n} }}")
                    }
                };
                let only_g = |g: &str| {
                    if tup {
                        format!("({g}, _)")
                    } else {
                        format!("Pair {{ g: {g}, .. }}")
                    }
                };
                match (k, by_ref) {
                    (0 | 1, _) => pat(both("_", &l), vec![], Effect::None, true),
                    (_, true) => pat(
                        only_g(&a),
                        vec![(a, Ty::RefGuard, false)],
                        Effect::Borrow,
                        false,
                    ),
                    (2 | 3 | 10, false) => pat(
                        both(&format!("{m}{a}"), &b),
                        vec![(a, Ty::Guard, mutable), (b, Ty::Int, false)],
                        Effect::MoveG,
                        false,
                    ),
                    (4 | 11, false) => pat(
                        both(&format!("ref {a}"), &b),
                        vec![(a, Ty::RefGuard, false), (b, Ty::Int, false)],
                        Effect::Borrow,
                        false,
                    ),
                    (5, false) => pat(
                        both("_", &b),
                        vec![(b, Ty::Int, false)],
                        Effect::None,
                        false,
                    ),
                    _ => pat(
                        format!("{m}{a}"),
                        vec![(a, ty, mutable)],
                        Effect::Move,
                        false,
                    ),
                }
            }
            Ty::Guard => match (k, by_ref) {
                (_, true) => pat(
                    a.clone(),
                    vec![(a, Ty::RefGuard, false)],
                    Effect::Borrow,
                    false,
                ),
                (0 | 1, false) => pat(
                    format!("ref {a}"),
                    vec![(a, Ty::RefGuard, false)],
                    Effect::Borrow,
                    false,
                ),
                (2, false) => pat("_".into(), vec![], Effect::None, false),
                _ => pat(
                    format!("{m}{a}"),
                    vec![(a, Ty::Guard, mutable)],
                    Effect::Move,
                    false,
                ),
            },
            _ => pat("_".into(), vec![], Effect::None, false),
        }
    }

    /// Applies a pattern's effect on its place and declares its bindings in the innermost
    /// scope. Returns false (and does nothing) if the model forbids the effect.
    fn bind(&mut self, pat: &Pat, scrut: Scrut) -> bool {
        let ok = match (scrut, pat.effect) {
            (Scrut::Place(v), Effect::Move) => self.use_var(v, Use::Move),
            (Scrut::Place(v), Effect::MoveG) => self.use_var(v, Use::MoveG),
            // `ref` bindings, or `match &x`: borrowed while the bindings live.
            (Scrut::Place(v), Effect::Borrow) | (Scrut::RefPlace(v), _) => {
                self.env.freeze_in_scope(v);
                true
            }
            _ => true,
        };
        if !ok {
            return false;
        }
        for (n, ty, m) in &pat.binds {
            self.declare(n, *ty, *m, St::Live);
        }
        true
    }

    /// A pattern that the model allows on this scrutinee (falls back to `_`).
    fn pattern_for(&mut self, ty: Ty, scrut: Scrut, refutable: bool) -> Pat {
        for _ in 0..4 {
            let p = self.pattern(ty, matches!(scrut, Scrut::RefPlace(_)), refutable);
            let ok = match (scrut, p.effect) {
                (Scrut::Place(v), Effect::Move) => self.use_ok(v, Use::Move),
                (Scrut::Place(v), Effect::MoveG) => self.use_ok(v, Use::MoveG),
                _ => true,
            };
            if ok {
                return p;
            }
        }
        Pat {
            text: "_".into(),
            binds: vec![],
            effect: Effect::None,
            refutable: false,
        }
    }

    fn scrut_ty(&mut self) -> Ty {
        *self.rng.pick(&[
            Ty::OptInt,
            Ty::OptInt,
            Ty::OptGuard,
            Ty::OptGuard,
            Ty::ResInt,
            Ty::Pair,
            Ty::Tup,
            Ty::Int,
            Ty::Bool,
            Ty::Guard,
        ])
    }

    fn if_let(&mut self, ty: Ty) -> Node {
        let sty = self.scrut_ty();
        let (s, sc) = self.scrutinee(sty, false);
        let snap = self.env.snapshot();
        self.env.push();
        let p = self.pattern_for(sty, sc, true);
        self.bind(&p, sc);
        let a = self.block(ty);
        self.env.pop();
        let after_a = self.env.snapshot();
        self.env.restore(&snap);
        let mut parts = vec![t(format!("if let {} = ", p.text)), s, t(" "), ex(ty, a)];
        if ty != Ty::Unit || self.rng.chance(60) {
            let b = self.block(ty);
            parts.push(t(" else "));
            parts.push(ex(ty, b));
        }
        let after_b = self.env.snapshot();
        self.env.restore(&merge(&after_a, &after_b));
        seq(parts)
    }

    /// `if let P = s && cond && let Q = r { .. } else { .. }` (edition 2024 let chains).
    fn chain(&mut self, ty: Ty) -> Node {
        let mut parts = vec![t("if ")];
        let mut fails: Vec<Vec<St>> = Vec::new();
        self.env.push();
        let n = 2 + self.rng.below(2);
        for i in 0..n {
            if i > 0 {
                parts.push(t(" && "));
            }
            if i == 0 || self.rng.chance(40) {
                let sty = self.scrut_ty();
                let (s, sc) = self.scrutinee(sty, false);
                fails.push(self.env.snapshot());
                let p = self.pattern_for(sty, sc, true);
                self.bind(&p, sc);
                parts.push(t(format!("let {} = ", p.text)));
                parts.push(s);
            } else {
                let c = self.cond_expr(Ty::Bool);
                fails.push(self.env.snapshot());
                parts.push(c);
            }
        }
        let a = self.block(ty);
        self.env.pop();
        let after_a = self.env.snapshot();
        let fail = fails
            .iter()
            .skip(1)
            .fold(fails[0].clone(), |acc, s| merge(&acc, s));
        self.env.restore(&fail);
        parts.push(t(" "));
        parts.push(ex(ty, a));
        if ty != Ty::Unit || self.rng.chance(60) {
            let b = self.block(ty);
            parts.push(t(" else "));
            parts.push(ex(ty, b));
        }
        let after_b = self.env.snapshot();
        self.env.restore(&merge(&after_a, &after_b));
        seq(parts)
    }

    fn match_expr(&mut self, ty: Ty) -> Node {
        let sty = self.scrut_ty();
        let (s, sc) = self.scrutinee(sty, false);
        let snap = self.env.snapshot();
        let mut ends: Vec<Vec<St>> = Vec::new();
        let mut arms = Vec::new();
        let n = 1 + self.rng.below(3);
        for i in 0..n {
            let last = i + 1 == n;
            self.env.restore(&snap);
            self.env.push();
            let mut p = self.pattern_for(sty, sc, !last);
            if last && p.refutable {
                p = self.pattern_for(sty, sc, false);
            }
            self.bind(&p, sc);
            let mut arm = vec![t(p.text.clone())];
            if self.rng.chance(25) {
                let saved = self.in_guard;
                self.in_guard = true;
                let g = self.expr(Ty::Bool);
                self.in_guard = saved;
                arm.push(t(" if "));
                arm.push(g);
            }
            arm.push(t(" => "));
            let body = if self.rng.chance(50) {
                ex(ty, self.block(ty))
            } else {
                self.expr(ty)
            };
            arm.push(body);
            arm.push(t(","));
            self.env.pop();
            ends.push(self.env.snapshot());
            // A refutable final arm (after a guard) still needs a catch-all.
            if last && (p.refutable || arm.len() > 4) {
                self.env.restore(&snap);
                self.env.push();
                let body = self.expr(ty);
                self.env.pop();
                ends.push(self.env.snapshot());
                arms.push(st(seq(arm)));
                arms.push(seq(vec![t("_ => "), body, t(",")]));
                break;
            }
            arms.push(if last { seq(arm) } else { st(seq(arm)) });
        }
        let merged = ends
            .iter()
            .skip(1)
            .fold(ends[0].clone(), |acc, s| merge(&acc, s));
        self.env.restore(&merged);
        seq(vec![t("match "), s, t(" "), Node::Block(arms)])
    }

    /// `'lN: loop { fuel; ...; if c { break 'lN value; } }`.
    fn loop_expr(&mut self, ty: Ty) -> Node {
        let label = self.new_label("l");
        let snap = self.env.snapshot();
        self.loop_depth += 1;
        self.labels.push(Label {
            name: label.clone(),
            kind: LabelKind::Loop(ty),
            barrier: self.barriers.len(),
            breaks: Vec::new(),
        });
        let n = self.rng.below(3);
        // A `break` with a value at the end, so the loop usually ends by itself.
        let body = self.block_with(Ty::Unit, n, true, Some((label.clone(), ty)));
        self.labels.pop();
        self.loop_depth -= 1;
        self.env.restore(&snap);
        seq(vec![t(format!("{label}: loop ")), body])
    }

    /// `'bN: { ...; if c { break 'bN value; } ...; tail }`.
    fn labeled(&mut self, ty: Ty) -> Node {
        let label = self.new_label("b");
        self.labels.push(Label {
            name: label.clone(),
            kind: LabelKind::Block(ty),
            barrier: self.barriers.len(),
            breaks: Vec::new(),
        });
        let n = 1 + self.rng.below(3);
        let body = self.block_n(ty, n, false);
        let l = self.labels.pop().expect("label");
        let end = self.env.snapshot();
        let merged = l.breaks.iter().fold(end, |acc, s| merge(&acc, s));
        self.env.restore(&merged);
        seq(vec![t(format!("{label}: ")), body])
    }

    /// A diverging expression: `return v`, `break 'l v`, `continue 'l`.
    fn diverge(&mut self) -> Node {
        let labels = self.reachable_labels();
        // Targets: any labelled one; the innermost one unlabelled if it is a loop (a plain
        // `break` may not leave a labelled block).
        let mut targets: Vec<(usize, bool)> = labels
            .iter()
            .filter(|&&i| !self.labels[i].name.is_empty())
            .map(|&i| (i, false))
            .collect();
        if let Some(&i) = labels.last()
            && !matches!(self.labels[i].kind, LabelKind::Block(_))
        {
            targets.push((i, true));
        }
        if !targets.is_empty() && self.rng.chance(50) {
            let (i, plain) = *self.rng.pick(&targets);
            let (name, kind) = (self.labels[i].name.clone(), self.labels[i].kind);
            let lbl = if plain {
                String::new()
            } else {
                format!(" {name}")
            };
            let is_loop = !matches!(kind, LabelKind::Block(_));
            if is_loop && self.rng.chance(35) {
                return t(format!("continue{lbl}"));
            }
            let value = match kind {
                LabelKind::Loop(v) | LabelKind::Block(v) if v != Ty::Unit => Some(v),
                _ => None,
            };
            let node = match value {
                Some(v) => {
                    let e = self.break_value(v);
                    seq(vec![t(format!("break{lbl} ")), e])
                }
                None => t(format!("break{lbl}")),
            };
            if matches!(kind, LabelKind::Block(_)) {
                let s = self.env.snapshot();
                self.labels[i].breaks.push(s);
            }
            return node;
        }
        let r = if self.ret == Ty::Unit {
            t("")
        } else {
            seq(vec![t(" "), self.expr(self.ret)])
        };
        seq(vec![t("return"), r])
    }

    /// A `break` value: parenthesized if it starts with a label (`break 'a 'b: loop {..}`
    /// does not parse).
    fn break_value(&mut self, ty: Ty) -> Node {
        let e = self.expr(ty);
        if e.render(0).starts_with('\'') {
            seq(vec![t("("), e, t(")")])
        } else {
            e
        }
    }

    /// The condition of an early exit: usually false or data-dependent, so that exits do
    /// not cut most programs short.
    fn exit_cond(&mut self) -> Node {
        match self.rng.below(10) {
            0..=3 => t("false"),
            4 => t("true"),
            _ => self.cond_expr(Ty::Bool),
        }
    }

    /// `if c { <diverge> } else { value }`.
    fn diverge_if(&mut self, ty: Ty) -> Option<Node> {
        let c = self.exit_cond();
        let snap = self.env.snapshot();
        let d = self.diverge();
        let after_a = self.env.snapshot();
        self.env.restore(&snap);
        let b = self.block(ty);
        let after_b = self.env.snapshot();
        self.env.restore(&merge(&after_a, &after_b));
        Some(seq(vec![
            t("if "),
            c,
            t(" "),
            Node::Block(vec![st(seq(vec![d, t(";")]))]),
            t(" else "),
            ex(ty, b),
        ]))
    }

    /// A unit-typed construct: the statements that are expressions.
    fn unit_construct(&mut self) -> Node {
        match self.rng.below(11) {
            0 => self.if_expr(Ty::Unit),
            1 => self.if_let(Ty::Unit),
            2 => self.chain(Ty::Unit),
            3 => self.match_expr(Ty::Unit),
            4 | 5 => self.while_loop(),
            6 | 7 => self.for_loop(),
            8 => self.loop_expr(Ty::Unit),
            9 => self.labeled(Ty::Unit),
            _ => self.block(Ty::Unit),
        }
    }

    fn maybe_label(&mut self) -> (String, String) {
        if self.rng.chance(40) {
            let l = self.new_label("w");
            (l.clone(), format!("{l}: "))
        } else {
            (self.new_label("u"), String::new())
        }
    }

    fn push_loop_label(&mut self, name: String, labelled: bool) {
        self.labels.push(Label {
            // An unlabelled loop can still be targeted by a plain `break`.
            name: if labelled { name } else { String::new() },
            kind: LabelKind::Iter,
            barrier: self.barriers.len(),
            breaks: Vec::new(),
        });
    }

    fn while_loop(&mut self) -> Node {
        let (name, head) = self.maybe_label();
        let snap = self.env.snapshot();
        self.loop_depth += 1;
        let saved = self.no_break;
        self.no_break = true;
        self.env.push();
        let (cond, pat) = if self.rng.chance(50) {
            (self.cond_expr(Ty::Bool), None)
        } else {
            // `while let`: from a Vec (pop) or an rvalue.
            let vecs = self.candidates(Ty::VecG, Use::MutBorrow);
            if !vecs.is_empty() && self.rng.chance(50) {
                let v = *self.rng.pick(&vecs);
                let n = self.fresh_name();
                let c = t(format!("{}.pop()", self.name(v)));
                self.declare(&n, Ty::Guard, false, St::Live);
                (c, Some(format!("Some({n})")))
            } else {
                let sty = *self.rng.pick(&[Ty::OptInt, Ty::OptGuard, Ty::ResInt]);
                let s = self.cond_expr(sty);
                let p = self.pattern(sty, false, true);
                self.bind(&p, Scrut::Value);
                (s, Some(p.text))
            }
        };
        self.no_break = saved;
        let labelled = !head.is_empty();
        self.push_loop_label(name, labelled);
        let n = 1 + self.rng.below(3);
        let body = self.block_n(Ty::Unit, n, true);
        self.labels.pop();
        self.env.pop();
        self.loop_depth -= 1;
        self.env.restore(&snap);
        let kw = match pat {
            Some(p) => format!("{head}while let {p} = "),
            None => format!("{head}while "),
        };
        seq(vec![t(kw), cond, t(" "), body])
    }

    fn for_loop(&mut self) -> Node {
        let (name, head) = self.maybe_label();
        let names = self.fresh_names(2);
        let (a, b) = (names[0].clone(), names[1].clone());
        let mut borrowed = None;
        let (pat, iter, binds): (String, Node, Vec<(String, Ty)>) = match self.rng.below(5) {
            0 | 1 => {
                let n = self.expr(Ty::Int);
                (
                    a.clone(),
                    seq(vec![t("0..lim("), n, t(")")]),
                    vec![(a, Ty::Int)],
                )
            }
            2 => {
                let v = self.cond_expr(Ty::VecG);
                let p = if self.rng.chance(20) {
                    "_".into()
                } else {
                    a.clone()
                };
                let binds = if p == "_" {
                    vec![]
                } else {
                    vec![(a, Ty::Guard)]
                };
                (p, v, binds)
            }
            3 => match self.pick_var(Ty::VecG, Use::Read) {
                Some(v) => {
                    borrowed = Some(v);
                    (
                        a.clone(),
                        t(format!("{}.iter()", self.name(v))),
                        vec![(a, Ty::RefGuard)],
                    )
                }
                None => {
                    let n = self.expr(Ty::Int);
                    (
                        a.clone(),
                        seq(vec![t("0..lim("), n, t(")")]),
                        vec![(a, Ty::Int)],
                    )
                }
            },
            _ => {
                let x1 = self.expr(Ty::Int);
                let x2 = self.expr(Ty::Int);
                let x3 = self.expr(Ty::Int);
                let x4 = self.expr(Ty::Int);
                (
                    format!("({a}, {b})"),
                    seq(vec![
                        t("[("),
                        x1,
                        t(", "),
                        x2,
                        t("), ("),
                        x3,
                        t(", "),
                        x4,
                        t(")]"),
                    ]),
                    vec![(a, Ty::Int), (b, Ty::Int)],
                )
            }
        };
        // Moves in the iterator expression happen once, before the loop; the body moves
        // nothing from outside (loop depth), so this is the state after the loop too.
        let pre_body = self.env.snapshot();
        self.env.push();
        if let Some(v) = borrowed {
            self.env.freeze_in_scope(v);
        }
        self.loop_depth += 1;
        for (n, ty) in &binds {
            self.declare(n, *ty, false, St::Live);
        }
        let labelled = !head.is_empty();
        self.push_loop_label(name, labelled);
        let n = 1 + self.rng.below(3);
        let body = self.block_n(Ty::Unit, n, true);
        self.labels.pop();
        self.loop_depth -= 1;
        self.env.pop();
        self.env.restore(&pre_body);
        seq(vec![t(format!("{head}for {pat} in ")), iter, t(" "), body])
    }

    // ----- statements --------------------------------------------------------------------

    fn stmt(&mut self) -> Node {
        self.budget -= 1;
        let aw = if self.can_await { 1 } else { 0 };
        let weights = [
            30,      // 0 let
            4,       // 1 let x; (deferred)
            5,       // 2 let destructuring
            4,       // 3 let-else
            4,       // 4 let reference
            5,       // 5 let closure
            5 * aw,  // 6 let future
            4,       // 7 let _ = ...
            10,      // 8 assignment
            6,       // 9 calls with effects
            14,      // 10 control construct
            10 * aw, // 11 await statement
            5,       // 12 early exit under if
            3,       // 13 item
            12,      // 14 observe locals
        ];
        for _ in 0..6 {
            let k = self.rng.weighted(&weights).expect("weights");
            let saved = self.save();
            match self.stmt_kind(k) {
                Some(n) => return st(n),
                None => self.load(saved),
            }
        }
        let e = self.expr(Ty::Int);
        st(seq(vec![
            t(format!("lg(\"{}\", ", self.tag("s"))),
            e,
            t(");"),
        ]))
    }

    fn stmt_kind(&mut self, k: usize) -> Option<Node> {
        match k {
            0 => Some(self.let_simple()),
            1 => {
                let ty = *self.rng.pick(&[Ty::Int, Ty::Guard]);
                let name = self.fresh_name();
                let m = self.rng.chance(30);
                self.declare(&name, ty, m, St::Uninit);
                Some(t(format!(
                    "let {}{name}: {};",
                    if m { "mut " } else { "" },
                    ty.rust().expect("type")
                )))
            }
            2 => Some(self.let_destructure()),
            3 => self.let_else(),
            4 => self.let_ref(),
            5 => self.let_closure(),
            6 => self.let_future(),
            7 => Some(self.let_underscore()),
            8 => self.assign(),
            9 => self.effect_call(),
            10 => {
                let c = self.unit_construct();
                self.last_was_construct = true;
                Some(c)
            }
            11 => {
                let ty = *self.rng.pick(&[Ty::Int, Ty::Unit, Ty::Guard, Ty::OptInt]);
                let a = if ty == Ty::Int && self.rng.chance(40) {
                    self.int_await()?
                } else if self.rng.chance(75) {
                    self.await_tk(ty)
                } else {
                    self.await_async(ty)
                };
                Some(seq(vec![ex(ty, a), t(";")]))
            }
            12 => {
                if self.rng.chance(15) {
                    let d = self.diverge();
                    return Some(seq(vec![d, t(";")]));
                }
                if self.try_ok() && self.rng.chance(30) {
                    let r = self.expr(self.ret);
                    return Some(seq(vec![t("("), r, t(")?;")]));
                }
                let c = self.exit_cond();
                let snap = self.env.snapshot();
                let d = self.diverge();
                let after = self.env.snapshot();
                self.env.restore(&merge(&snap, &after));
                Some(seq(vec![
                    t("if "),
                    c,
                    t(" "),
                    Node::Block(vec![st(seq(vec![d, t(";")]))]),
                ]))
            }
            13 => self.item(),
            _ => {
                let o = self.observe()?;
                Some(seq(vec![
                    t(format!("lg(\"{}\", ", self.tag("o"))),
                    o,
                    t(");"),
                ]))
            }
        }
    }

    fn value_ty(&mut self) -> Ty {
        let w = [30, 5, 20, 8, 8, 6, 8, 6, 8];
        Ty::VALUES[self.rng.weighted(&w).expect("weights")]
    }

    fn let_simple(&mut self) -> Node {
        let name = self.fresh_name();
        // Shadowing often keeps the type: a binding mixed up with the one it shadows then
        // gives a wrong value instead of a type error.
        let shadowed = self
            .env
            .visible()
            .into_iter()
            .find(|&v| self.env.vars[v].name == name)
            .map(|v| self.env.vars[v].ty)
            .filter(|ty| Ty::VALUES.contains(ty));
        let ty = match shadowed {
            Some(ty) if self.rng.chance(60) => ty,
            _ => self.value_ty(),
        };
        let init = self.expr(ty);
        let m = self.rng.chance(if ty == Ty::Bool { 10 } else { 35 });
        self.declare(&name, ty, m, St::Live);
        let annot = if self.rng.chance(25) {
            format!(": {}", ty.rust().expect("type"))
        } else {
            String::new()
        };
        seq(vec![
            t(format!(
                "let {}{name}{annot} = ",
                if m { "mut " } else { "" }
            )),
            init,
            t(";"),
        ])
    }

    fn let_destructure(&mut self) -> Node {
        let ty = *self.rng.pick(&[Ty::Pair, Ty::Tup, Ty::Tup]);
        let places: Vec<usize> = self
            .env
            .visible()
            .into_iter()
            .filter(|&v| {
                let var = &self.env.vars[v];
                var.ty == ty && var.st == St::Live && var.barrier == self.barriers.len()
            })
            .collect();
        let (s, sc) = if !places.is_empty() && self.rng.chance(50) {
            let v = *self.rng.pick(&places);
            (t(self.name(v)), Scrut::Place(v))
        } else {
            (self.expr(ty), Scrut::Value)
        };
        let mut p = self.pattern_for(ty, sc, false);
        if sc == Scrut::Value && p.effect == Effect::Borrow {
            // `ref` bindings of a temporary: fine (the temporary is extended), but keep the
            // model simple.
            p = Pat {
                text: "_".into(),
                binds: vec![],
                effect: Effect::None,
                refutable: false,
            };
        }
        self.bind(&p, sc);
        seq(vec![t(format!("let {} = ", p.text)), s, t(";")])
    }

    fn let_else(&mut self) -> Option<Node> {
        let ty = *self
            .rng
            .pick(&[Ty::OptInt, Ty::OptGuard, Ty::ResInt, Ty::Int]);
        let (s, sc) = self.scrutinee(ty, false);
        // `let P = { .. } else { .. };` does not parse: a scrutinee ending in `}` needs
        // parentheses.
        let s = if s.render(0).ends_with('}') {
            seq(vec![t("("), s, t(")")])
        } else {
            s
        };
        let mut p = self.pattern_for(ty, sc, true);
        if sc == Scrut::Value && p.effect == Effect::Borrow {
            p = self.pattern_for(ty, Scrut::Value, true);
            if p.effect == Effect::Borrow {
                return None;
            }
        }
        let snap = self.env.snapshot();
        // The else block: a statement or two, then a diverging one.
        self.env.push();
        let mut children = Vec::new();
        if self.rng.chance(30) {
            children.push(self.stmt());
        }
        let d = self.diverge();
        children.push(st(seq(vec![d, t(";")])));
        self.env.pop();
        let after_else = self.env.snapshot();
        self.env.restore(&merge(&snap, &after_else));
        if !self.bind(&p, sc) {
            return None;
        }
        Some(seq(vec![
            t(format!("let {} = ", p.text)),
            s,
            t(" else "),
            Node::Block(children),
            t(";"),
        ]))
    }

    fn let_ref(&mut self) -> Option<Node> {
        let rhs = match self.rng.below(4) {
            0 | 1 => {
                let c = self.candidates(Ty::Guard, Use::Read);
                let c: Vec<usize> = c
                    .into_iter()
                    .filter(|&v| self.env.vars[v].barrier == self.barriers.len())
                    .collect();
                if c.is_empty() {
                    return None;
                }
                let v = *self.rng.pick(&c);
                self.env.freeze_in_scope(v);
                format!("&{}", self.name(v))
            }
            2 => {
                let c: Vec<usize> = [Ty::Pair, Ty::Tup]
                    .iter()
                    .flat_map(|&ty| self.candidates(ty, Use::ReadG))
                    .filter(|&v| self.env.vars[v].barrier == self.barriers.len())
                    .collect();
                if c.is_empty() {
                    return None;
                }
                let v = *self.rng.pick(&c);
                self.env.freeze_in_scope(v);
                format!("&{}.{}", self.name(v), self.env.vars[v].ty.fields().0)
            }
            _ => format!("&mk(\"{}\")", self.tag("g")),
        };
        let name = self.fresh_name();
        self.declare(&name, Ty::RefGuard, false, St::Live);
        let annot = if self.rng.chance(30) { ": &Guard" } else { "" };
        Some(t(format!("let {name}{annot} = {rhs};")))
    }

    fn let_closure(&mut self) -> Option<Node> {
        let name = self.fresh_name();
        if self.rng.chance(35) {
            // FnOnce: consumes a Guard local when called.
            let c: Vec<usize> = self
                .candidates(Ty::Guard, Use::Move)
                .into_iter()
                .filter(|&v| self.env.vars[v].barrier == self.barriers.len())
                .collect();
            if c.is_empty() {
                return None;
            }
            let g = *self.rng.pick(&c);
            let gname = self.name(g);
            let mv = self.rng.chance(50);
            self.use_var(g, Use::Move);
            let kind = if mv { BarKind::FnMove } else { BarKind::Fn };
            let saved = self.enter_barrier(kind, Ty::Int);
            let body = self.expr(Ty::Int);
            self.exit_barrier(saved, true);
            self.declare(&name, Ty::CloOnce, false, St::Live);
            return Some(seq(vec![
                t(format!("let {name} = {}|| ", if mv { "move " } else { "" })),
                body,
                t(format!(" + consume({gname});")),
            ]));
        }
        let kind = if self.rng.chance(40) {
            BarKind::FnMove
        } else {
            BarKind::Fn
        };
        let saved = self.enter_barrier(kind, Ty::Int);
        self.env.push();
        let p = self.fresh_name();
        self.declare(&p, Ty::Int, false, St::Live);
        let body = self.expr(Ty::Int);
        self.env.pop();
        self.exit_barrier(saved, true);
        self.declare(&name, Ty::CloFn, false, St::Live);
        let mv = if kind == BarKind::FnMove { "move " } else { "" };
        Some(seq(vec![
            t(format!("let {name} = {mv}|{p}: i64| ")),
            body,
            t(";"),
        ]))
    }

    fn let_future(&mut self) -> Option<Node> {
        let tag = self.tag("t");
        let rhs = match self.rng.below(5) {
            0 => {
                let p = *self.rng.pick(&[0, 1, 2]);
                let v = self.expr(Ty::Int);
                seq(vec![t(format!("tk(\"{tag}\", {p}, ")), v, t(")")])
            }
            1 => {
                let g = self.expr(Ty::Guard);
                let n = self.expr(Ty::Int);
                seq(vec![t(format!("eat(\"{tag}\", ")), g, t(", "), n, t(")")])
            }
            2 => {
                let c: Vec<usize> = self
                    .candidates(Ty::Guard, Use::Read)
                    .into_iter()
                    .filter(|&v| self.env.vars[v].barrier == self.barriers.len())
                    .collect();
                if c.is_empty() {
                    return None;
                }
                let v = *self.rng.pick(&c);
                self.env.freeze_in_scope(v);
                t(format!("rb(\"{tag}\", &{})", self.name(v)))
            }
            _ => {
                let kind = if self.rng.chance(40) {
                    BarKind::AsyncMove
                } else {
                    BarKind::Async
                };
                let saved = self.enter_barrier(kind, Ty::Int);
                let body = self.block(Ty::Int);
                self.exit_barrier(saved, true);
                let kw = if kind == BarKind::AsyncMove {
                    "async move "
                } else {
                    "async "
                };
                seq(vec![t(kw), ex(Ty::Int, body)])
            }
        };
        let name = self.fresh_name();
        self.declare(&name, Ty::FutInt, false, St::Live);
        Some(seq(vec![t(format!("let {name} = ")), rhs, t(";")]))
    }

    fn let_underscore(&mut self) -> Node {
        match self.rng.below(3) {
            0 => {
                // `let _ = place;` moves nothing.
                let c: Vec<usize> = self
                    .env
                    .visible()
                    .into_iter()
                    .filter(|&v| {
                        let var = &self.env.vars[v];
                        var.st == St::Live
                            && var.barrier == self.barriers.len()
                            && var.ty.rust().is_some()
                    })
                    .collect();
                if !c.is_empty() {
                    let v = *self.rng.pick(&c);
                    return t(format!("let _ = {};", self.name(v)));
                }
                let e = self.expr(Ty::Guard);
                seq(vec![t("let _ = "), e, t(";")])
            }
            1 => {
                let ty = self.value_ty();
                let e = self.expr(ty);
                seq(vec![t("let _ = "), e, t(";")])
            }
            _ => {
                let ty = *self
                    .rng
                    .pick(&[Ty::Guard, Ty::Pair, Ty::VecG, Ty::OptGuard]);
                let e = self.expr(ty);
                let name = format!("_{}", self.fresh_name());
                self.declare(&name, ty, false, St::Live);
                seq(vec![t(format!("let {name} = ")), e, t(";")])
            }
        }
    }

    fn assign(&mut self) -> Option<Node> {
        let vis = self.env.visible();
        let targets: Vec<usize> = vis
            .iter()
            .copied()
            .filter(|&v| {
                let ty = self.env.vars[v].ty;
                Ty::VALUES.contains(&ty)
                    && (self.use_ok(v, Use::Assign) || ty.is_agg() && self.use_ok(v, Use::AssignG))
            })
            .collect();
        if targets.is_empty() {
            return None;
        }
        let v = *self.rng.pick(&targets);
        let ty = self.env.vars[v].ty;
        let name = self.name(v);
        if ty.is_agg() && self.rng.chance(60) {
            let (fg, fnn) = ty.fields();
            if self.rng.chance(50) && self.use_ok(v, Use::AssignN) {
                let e = self.expr(Ty::Int);
                if !self.use_var(v, Use::AssignN) {
                    return None;
                }
                return Some(seq(vec![t(format!("{name}.{fnn} = ")), e, t(";")]));
            }
            let e = self.expr(Ty::Guard);
            if !self.use_var(v, Use::AssignG) {
                return None;
            }
            return Some(seq(vec![t(format!("{name}.{fg} = ")), e, t(";")]));
        }
        if !self.use_ok(v, Use::Assign) {
            return None;
        }
        if ty == Ty::Int && self.env.vars[v].st == St::Live && self.rng.chance(40) {
            let op = *self.rng.pick(&["+=", "-=", "*="]);
            let e = self.expr(Ty::Int);
            if !self.use_ok(v, Use::Assign) || self.env.vars[v].st != St::Live {
                return None;
            }
            return Some(seq(vec![t(format!("{name} {op} ")), e, t(";")]));
        }
        let e = self.expr(ty);
        if !self.use_var(v, Use::Assign) {
            return None;
        }
        Some(seq(vec![t(format!("{name} = ")), e, t(";")]))
    }

    fn effect_call(&mut self) -> Option<Node> {
        Some(match self.rng.below(5) {
            0 | 1 => {
                let e = self.expr(Ty::Int);
                seq(vec![t(format!("lg(\"{}\", ", self.tag("s"))), e, t(");")])
            }
            2 => {
                let g = self.expr(Ty::Guard);
                seq(vec![t("consume("), g, t(");")])
            }
            3 => {
                let c: Vec<usize> = self
                    .env
                    .visible()
                    .into_iter()
                    .filter(|&v| !self.env.vars[v].ty.is_copy() && self.use_ok(v, Use::Move))
                    .collect();
                if c.is_empty() {
                    return None;
                }
                let v = *self.rng.pick(&c);
                self.use_var(v, Use::Move);
                t(format!("drop({});", self.name(v)))
            }
            _ => {
                let v = self.pick_var(Ty::VecG, Use::MutBorrow)?;
                self.freeze(v);
                let g = self.expr(Ty::Guard);
                self.unfreeze(v);
                seq(vec![t(format!("{}.push(", self.name(v))), g, t(");")])
            }
        })
    }

    /// A block-local item that shadows the crate-level one of the same name.
    fn item(&mut self) -> Option<Node> {
        let k = self.rng.below(3);
        let mask = 1u8 << k;
        let cur = self.items.last_mut()?;
        if *cur & mask != 0 {
            return None;
        }
        *cur |= mask;
        let l = 10 + self.rng.below(90);
        Some(t(match k {
            0 => format!("const K: i64 = {l};"),
            1 => format!("fn hf(x: i64) -> i64 {{ x * 2 + {l} }}"),
            _ => format!("struct W(i64); impl W {{ fn get(&self) -> i64 {{ self.0 * 3 + {l} }} }}"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible() {
        for seed in 0..50 {
            assert_eq!(generate(seed), generate(seed));
        }
        assert_ne!(generate(1).body, generate(2).body);
    }

    #[test]
    fn covers_the_grammar() {
        let all: String = (0..400).map(|s| generate(s).source("p", None)).collect();
        for needle in [
            ".await",
            "async move",
            "if let",
            "while let",
            "for ",
            "loop ",
            "match ",
            "?",
            "return",
            "break",
            "continue",
            "move |",
            "const K",
            "fn hf",
            "struct W",
            "ref ",
            "peek()",
            "into_x()",
            "expect(",
            "let _ = ",
            "&mk(",
            "else {",
            "consume(",
            " && let ",
        ] {
            assert!(all.contains(needle), "no program has `{needle}`");
        }
    }
}
