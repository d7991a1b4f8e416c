//! The shape of a generated program: a tree of text pieces that knows just enough about
//! itself to be shrunk.
//!
//! The generator writes Rust source directly, but it writes it as a [`Node`] tree instead of
//! a flat string, marking three things the minimizer needs:
//!
//! - [`Node::Stmt`]: a statement inside a block, which may be deleted;
//! - [`Node::Expr`]: an expression together with its type ([`Ty`]), which may be replaced by
//!   the type's simplest value ([`Ty::default_expr`]) or by a smaller expression of the same
//!   type found inside it (that is how `if c { a } else { b }` becomes `{ a }`, and
//!   `x + tick(y).await` becomes `tick(y).await`);
//! - [`Node::Block`]: a `{ ... }` whose children are printed one per line.
//!
//! Everything else is [`Node::Text`] (tokens that go together, such as a fuel check that
//! keeps a loop finite, and that the minimizer must never remove) and [`Node::Seq`].
//! A candidate made this way may no longer compile: the minimizer just discards it.

use crate::model::Ty;

/// A piece of a generated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Tokens printed as they are.
    Text(String),
    /// Pieces printed one after the other.
    Seq(Vec<Node>),
    /// `{`, the children one per line, `}`.
    Block(Vec<Node>),
    /// A statement of a block (deletable).
    Stmt(Box<Node>),
    /// An expression of a known type (replaceable).
    Expr(Ty, Box<Node>),
}

/// Text.
pub fn t(s: impl Into<String>) -> Node {
    Node::Text(s.into())
}

/// A sequence.
pub fn seq(parts: Vec<Node>) -> Node {
    Node::Seq(parts)
}

/// A typed expression.
pub fn ex(ty: Ty, n: Node) -> Node {
    Node::Expr(ty, Box::new(n))
}

/// A statement.
pub fn st(n: Node) -> Node {
    Node::Stmt(Box::new(n))
}

impl Node {
    /// The source text, blocks indented by four spaces from `indent`.
    pub fn render(&self, indent: usize) -> String {
        let mut out = String::new();
        self.render_into(indent, &mut out);
        out
    }

    fn render_into(&self, indent: usize, out: &mut String) {
        match self {
            Node::Text(s) => out.push_str(s),
            Node::Seq(parts) => parts.iter().for_each(|p| p.render_into(indent, out)),
            Node::Stmt(n) | Node::Expr(_, n) => n.render_into(indent, out),
            Node::Block(children) => {
                if children.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push_str("{\n");
                for c in children {
                    for _ in 0..indent + 1 {
                        out.push_str("    ");
                    }
                    c.render_into(indent + 1, out);
                    out.push('\n');
                }
                for _ in 0..indent {
                    out.push_str("    ");
                }
                out.push('}');
            }
        }
    }

    /// The children, in order.
    pub fn children(&self) -> &[Node] {
        match self {
            Node::Text(_) => &[],
            Node::Seq(c) | Node::Block(c) => c,
            Node::Stmt(n) | Node::Expr(_, n) => std::slice::from_ref(&**n),
        }
    }

    fn children_mut(&mut self) -> &mut [Node] {
        match self {
            Node::Text(_) => &mut [],
            Node::Seq(c) | Node::Block(c) => c,
            Node::Stmt(n) | Node::Expr(_, n) => std::slice::from_mut(&mut **n),
        }
    }

    /// The node at `path` (child indices from here).
    pub fn at(&self, path: &[usize]) -> &Node {
        path.iter().fold(self, |n, &i| &n.children()[i])
    }

    /// The node at `path`, mutably.
    pub fn at_mut(&mut self, path: &[usize]) -> &mut Node {
        let mut n = self;
        for &i in path {
            n = &mut n.children_mut()[i];
        }
        n
    }

    /// Every node's path, parents before children.
    pub fn paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        let mut stack = vec![Vec::new()];
        while let Some(p) = stack.pop() {
            let n = self.at(&p);
            for i in (0..n.children().len()).rev() {
                let mut c = p.clone();
                c.push(i);
                stack.push(c);
            }
            out.push(p);
        }
        out
    }

    /// A copy with the child `index` of the block at `block` removed.
    pub fn without(&self, block: &[usize], index: usize) -> Node {
        let mut n = self.clone();
        if let Node::Block(c) = n.at_mut(block) {
            c.remove(index);
        }
        n
    }

    /// A copy with the node at `path` replaced.
    pub fn replaced(&self, path: &[usize], with: Node) -> Node {
        let mut n = self.clone();
        *n.at_mut(path) = with;
        n
    }

    /// How many nodes this tree has.
    pub fn count(&self) -> usize {
        1 + self.children().iter().map(Node::count).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_edit() {
        let body = Node::Block(vec![
            st(seq(vec![t("let x = "), ex(Ty::Int, t("1")), t(";")])),
            ex(Ty::Int, t("x")),
        ]);
        assert_eq!(body.render(0), "{\n    let x = 1;\n    x\n}");
        let paths = body.paths();
        assert_eq!(paths[0], Vec::<usize>::new());
        assert_eq!(body.without(&[], 0).render(0), "{\n    x\n}");
        let r = body.replaced(&[0, 0, 1], ex(Ty::Int, t("2")));
        assert_eq!(r.render(0), "{\n    let x = 2;\n    x\n}");
        assert_eq!(body.count(), 9);
    }
}
