//! Shrinking a differing program while the difference persists.
//!
//! Greedy and batched: from the current program, make every one-step reduction
//! ([`candidates`]): delete a statement (or a match arm), replace an expression by its
//! type's simplest value, replace an expression by the nearest smaller expression of the
//! same type inside it (which is how branches, operands and wrappers go away), drop a
//! parameter. Candidates are sorted smallest first and built in chunks, many programs per
//! crate; the smallest candidate of the first chunk that still differs becomes the current
//! program, and the search starts again. It stops when no candidate differs. Candidates
//! that no longer compile (either way) just do not count.

use std::io;

use crate::ast::{Node, ex, t};
use crate::generate::Program;
use crate::model::Ty;
use crate::runner::{Difference, Outcome, Runner};

/// Candidates built per crate.
const CHUNK: usize = 40;

/// The smallest program found that still differs, with its difference; `None` if `program`
/// does not differ when run alone.
pub fn minimize(runner: &Runner, program: &Program) -> io::Result<Option<(Program, Difference)>> {
    let first = runner.run_batch(std::slice::from_ref(program))?;
    let Some(Outcome::Differs(mut diff)) = first.into_iter().next() else {
        return Ok(None);
    };
    let mut cur = program.clone();
    loop {
        let cands = candidates(&cur);
        let mut next = None;
        for chunk in cands.chunks(CHUNK) {
            let outs = runner.run_batch(chunk)?;
            // The same class of difference: a value difference must not shrink into a
            // mere drop-order difference.
            next = chunk.iter().zip(outs).find_map(|(p, o)| match o {
                Outcome::Differs(d) if d.class() == diff.class() => Some((p.clone(), d)),
                _ => None,
            });
            if next.is_some() {
                break;
            }
        }
        match next {
            Some((p, d)) => {
                if runner.verbose {
                    eprintln!("  [minimize] {} -> {} bytes", size(&cur), size(&p));
                }
                cur = p;
                diff = d;
            }
            None => break,
        }
    }
    Ok(Some((cur, diff)))
}

fn size(p: &Program) -> usize {
    p.source("p", None).len()
}

/// Every one-step reduction of `p`, distinct, smallest first.
pub fn candidates(p: &Program) -> Vec<Program> {
    let body = &p.body;
    let mut bodies: Vec<Node> = Vec::new();
    for (k, path) in body.paths().into_iter().enumerate() {
        let node = body.at(&path);
        match node {
            Node::Block(children) => {
                for (j, c) in children.iter().enumerate() {
                    if matches!(c, Node::Stmt(_)) {
                        bodies.push(body.without(&path, j));
                    }
                }
            }
            Node::Expr(ty, inner) => {
                if *ty != Ty::Unit
                    && let Some(d) = ty.default_expr()
                    && inner.render(0) != d
                {
                    // A tag of its own, so that logs still tell guards apart.
                    let d = d.replace("\"m\"", &format!("\"m{k}\""));
                    bodies.push(body.replaced(&path, ex(*ty, t(d))));
                }
                for q in nearest_of_type(node, *ty) {
                    bodies.push(body.replaced(&path, node.at(&q).clone()));
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<Program> = bodies
        .into_iter()
        .map(|b| Program {
            params: p.params.clone(),
            ret: p.ret,
            body: b,
        })
        .collect();
    for j in 0..p.params.len() {
        let mut q = p.clone();
        q.params.remove(j);
        out.push(q);
    }
    // Strictly smaller only, so that the search ends.
    let own = p.source("p", None).len();
    let mut keyed: Vec<(String, Program)> = out
        .into_iter()
        .map(|q| (q.source("p", None), q))
        .filter(|(s, _)| s.len() < own)
        .collect();
    keyed.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, q)| q).collect()
}

/// Paths (relative to `node`) of the outermost expressions of type `ty` strictly inside it.
fn nearest_of_type(node: &Node, ty: Ty) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<usize>> = (0..node.children().len()).map(|i| vec![i]).collect();
    while let Some(p) = stack.pop() {
        let n = node.at(&p);
        if let Node::Expr(t2, _) = n
            && *t2 == ty
        {
            out.push(p);
            continue;
        }
        for i in 0..n.children().len() {
            let mut c = p.clone();
            c.push(i);
            stack.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{seq, st};

    #[test]
    fn reductions() {
        let body = Node::Block(vec![
            st(seq(vec![t("let x = "), ex(Ty::Int, t("1")), t(";")])),
            ex(
                Ty::Int,
                seq(vec![
                    t("("),
                    ex(Ty::Int, t("x")),
                    t(" + "),
                    ex(Ty::Int, t("2")),
                    t(")"),
                ]),
            ),
        ]);
        let p = Program {
            params: vec![],
            ret: Ty::Int,
            body,
        };
        let texts: Vec<String> = candidates(&p).iter().map(|c| c.body.render(0)).collect();
        assert!(texts.contains(&"{\n    (x + 2)\n}".to_string()));
        assert!(texts.contains(&"{\n    let x = 1;\n    x\n}".to_string()));
        assert!(texts.contains(&"{\n    let x = 1;\n    0\n}".to_string()));
        assert!(!texts.contains(&"{\n    let x = 1;\n    (x + 2)\n}".to_string()));
        assert!(texts.windows(2).all(|w| w[0].len() <= w[1].len()));
    }
}
