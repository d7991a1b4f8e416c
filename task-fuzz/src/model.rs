//! What the generator knows about a program while writing it: the types of values, and for
//! every local its scope, mutability, move state and borrows.
//!
//! The generated programs must compile as plain `async fn`s, so the generator keeps a small
//! model of what rustc checks:
//!
//! - **Types** ([`Ty`]): a closed set, each with a Rust spelling and a simplest value.
//! - **Scopes** ([`Env`]): a stack of scopes; a name refers to its innermost binding
//!   (shadowing hides the outer one, which still lives until its scope ends).
//! - **Move state** ([`St`]): live, moved (also "maybe moved": both forbid reading), never
//!   initialized (`let x;`), or partially moved (a struct whose `g` field was moved out).
//!   Where control flow splits (`if`, `match`, `&&`), each branch starts from the same
//!   snapshot and the results are merged ([`merge`]) pessimistically.
//! - **Borrows** ([`Var::frozen`]): a local that is borrowed (by a reference local, a stored
//!   closure or future, a `ref` binding, a `match &x`, a `for .. in x.iter()`, or a method
//!   receiver while its arguments are evaluated) is frozen: no moves, no assignments.
//! - **Loops**: a local may be moved only at the loop depth it was declared at (moving it in
//!   a loop body would move it twice).
//!
//! The model is conservative: it forbids some valid programs. A program it wrongly allows
//! fails to compile as a plain `async fn` and is counted as "generator invalid".

/// The types a generated program uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ty {
    /// `()`.
    Unit,
    /// `i64`.
    Int,
    /// `bool`.
    Bool,
    /// `Guard`: logs `drop <tag>` when dropped.
    Guard,
    /// `Option<i64>`.
    OptInt,
    /// `Option<Guard>`.
    OptGuard,
    /// `Result<i64, i64>`.
    ResInt,
    /// `Pair { g: Guard, n: i64 }`: a struct, for partial moves.
    Pair,
    /// `(Guard, i64)`: a tuple, for partial moves.
    Tup,
    /// `Vec<Guard>`.
    VecG,
    /// `&Guard`.
    RefGuard,
    /// A closure `Fn(i64) -> i64` (a local's type only).
    CloFn,
    /// A closure `FnOnce() -> i64` (a local's type only).
    CloOnce,
    /// A future with `Output = i64` (a local's type only).
    FutInt,
}

impl Ty {
    /// Types a `let` may bind from an arbitrary expression.
    pub const VALUES: [Ty; 9] = [
        Ty::Int,
        Ty::Bool,
        Ty::Guard,
        Ty::OptInt,
        Ty::OptGuard,
        Ty::ResInt,
        Ty::Pair,
        Ty::Tup,
        Ty::VecG,
    ];

    /// Whether values of this type are `Copy`.
    pub fn is_copy(self) -> bool {
        matches!(
            self,
            Ty::Unit | Ty::Int | Ty::Bool | Ty::OptInt | Ty::ResInt | Ty::RefGuard
        )
    }

    /// Whether the type is a struct/tuple with a `Guard` field `g` (`.0`) and an `i64`
    /// field `n` (`.1`).
    pub fn is_agg(self) -> bool {
        matches!(self, Ty::Pair | Ty::Tup)
    }

    /// The Rust spelling, where there is one.
    pub fn rust(self) -> Option<&'static str> {
        Some(match self {
            Ty::Unit => "()",
            Ty::Int => "i64",
            Ty::Bool => "bool",
            Ty::Guard => "Guard",
            Ty::OptInt => "Option<i64>",
            Ty::OptGuard => "Option<Guard>",
            Ty::ResInt => "Result<i64, i64>",
            Ty::Pair => "Pair",
            Ty::Tup => "(Guard, i64)",
            Ty::VecG => "Vec<Guard>",
            Ty::RefGuard => "&Guard",
            Ty::CloFn | Ty::CloOnce | Ty::FutInt => return None,
        })
    }

    /// The simplest expression of this type, where there is one.
    pub fn default_expr(self) -> Option<&'static str> {
        Some(match self {
            Ty::Unit => "()",
            Ty::Int => "0",
            Ty::Bool => "false",
            Ty::Guard => "Guard(\"m\")",
            Ty::OptInt => "None::<i64>",
            Ty::OptGuard => "None::<Guard>",
            Ty::ResInt => "Ok::<i64, i64>(0)",
            Ty::Pair => "Pair { g: Guard(\"m\"), n: 0 }",
            Ty::Tup => "(Guard(\"m\"), 0)",
            Ty::VecG => "Vec::<Guard>::new()",
            Ty::RefGuard => "&Guard(\"m\")",
            Ty::CloFn | Ty::CloOnce | Ty::FutInt => return None,
        })
    }

    /// The name of an `Agg` type's fields: (`g`, `n`) or (`0`, `1`).
    pub fn fields(self) -> (&'static str, &'static str) {
        match self {
            Ty::Tup => ("0", "1"),
            _ => ("g", "n"),
        }
    }
}

/// The move state of a local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    /// Initialized and whole.
    Live,
    /// Declared with `let x;` and certainly not yet assigned.
    Uninit,
    /// Moved out, or maybe moved, or maybe uninitialized: unusable until assigned.
    Moved,
    /// Its `g` field was moved out; `n` is still readable.
    PartG,
}

/// The state after two control-flow paths join.
pub fn merge_st(a: St, b: St) -> St {
    match (a, b) {
        _ if a == b => a,
        (St::Live, St::PartG) | (St::PartG, St::Live) => St::PartG,
        _ => St::Moved,
    }
}

/// Joins two snapshots (see [`Env::snapshot`]); entries only one of them has are kept.
pub fn merge(a: &[St], b: &[St]) -> Vec<St> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| match (a.get(i), b.get(i)) {
            (Some(&x), Some(&y)) => merge_st(x, y),
            (Some(&x), None) | (None, Some(&x)) => x,
            (None, None) => unreachable!(),
        })
        .collect()
}

/// A local.
#[derive(Debug, Clone)]
pub struct Var {
    /// Its name (several locals may share one).
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Declared `mut`.
    pub mutable: bool,
    /// Move state.
    pub st: St,
    /// How many loops enclose its declaration.
    pub loop_depth: u32,
    /// How many closures/async blocks enclose its declaration.
    pub barrier: usize,
    /// How many live borrows it has (see the module docs).
    pub frozen: u32,
}

/// A lexical scope: its locals, and the borrows that end with it.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    vars: Vec<usize>,
    frozen: Vec<usize>,
}

/// All locals ever declared (indexed by id), and the stack of open scopes.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Every local declared so far; ids are indices. Locals of closed scopes stay here
    /// (they are just no longer visible).
    pub vars: Vec<Var>,
    scopes: Vec<Scope>,
}

impl Env {
    /// Opens a scope.
    pub fn push(&mut self) {
        self.scopes.push(Scope::default());
    }

    /// Closes the innermost scope: its locals become invisible, its borrows end.
    pub fn pop(&mut self) {
        let s = self.scopes.pop().expect("scope underflow");
        for v in s.frozen {
            self.vars[v].frozen -= 1;
        }
    }

    /// Declares a local in the innermost scope.
    pub fn declare(&mut self, var: Var) -> usize {
        let id = self.vars.len();
        self.vars.push(var);
        self.scopes.last_mut().expect("no scope").vars.push(id);
        id
    }

    /// Freezes `v` until the innermost scope closes.
    pub fn freeze_in_scope(&mut self, v: usize) {
        self.vars[v].frozen += 1;
        self.scopes.last_mut().expect("no scope").frozen.push(v);
    }

    /// The locals a name can reach: for each name, its innermost binding.
    pub fn visible(&self) -> Vec<usize> {
        let mut by_name: Vec<(&str, usize)> = Vec::new();
        for s in &self.scopes {
            for &v in &s.vars {
                let name = self.vars[v].name.as_str();
                match by_name.iter_mut().find(|(n, _)| *n == name) {
                    Some(e) => e.1 = v,
                    None => by_name.push((name, v)),
                }
            }
        }
        by_name.into_iter().map(|(_, v)| v).collect()
    }

    /// Whether `name` is bound in some open scope.
    pub fn is_bound(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.vars.iter().any(|&v| self.vars[v].name == name))
    }

    /// The move state of every local.
    pub fn snapshot(&self) -> Vec<St> {
        self.vars.iter().map(|v| v.st).collect()
    }

    /// Sets the move state of the locals `snap` knows.
    pub fn restore(&mut self, snap: &[St]) {
        for (v, &s) in self.vars.iter_mut().zip(snap) {
            v.st = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> Var {
        Var {
            name: name.into(),
            ty: Ty::Int,
            mutable: false,
            st: St::Live,
            loop_depth: 0,
            barrier: 0,
            frozen: 0,
        }
    }

    #[test]
    fn shadowing_and_borrows() {
        let mut env = Env::default();
        env.push();
        let a = env.declare(var("x"));
        env.push();
        let b = env.declare(var("x"));
        env.freeze_in_scope(a);
        assert_eq!(env.visible(), vec![b]);
        env.pop();
        assert_eq!(env.visible(), vec![a]);
        assert_eq!(env.vars[a].frozen, 0);
        assert_eq!(
            merge(&[St::Live, St::Live], &[St::Moved, St::Live]),
            vec![St::Moved, St::Live]
        );
        assert_eq!(merge_st(St::Live, St::PartG), St::PartG);
    }
}
