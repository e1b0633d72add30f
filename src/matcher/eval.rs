//! Evaluating a compiled query over the term occurrences found in one article.

use std::ops::Range;

use super::query::Expr;

/// A query with its groups and inline terms replaced by atom indices (see `Matcher`).
#[derive(Debug)]
pub(crate) enum Node {
    Atom(usize),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Near {
        left: Box<Node>,
        right: Box<Node>,
        distance: usize,
    },
}

/// Where an atom occurred: which of the matched fields, and which words of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Occurrence {
    pub(crate) field: usize,
    pub(crate) words: Range<usize>,
}

impl Node {
    /// Builds the node for `expr`, numbering each group or inline term through
    /// `atom(label, is_group)`.
    pub(crate) fn compile<E>(
        expr: &Expr,
        atom: &mut impl FnMut(&str, bool) -> Result<usize, E>,
    ) -> Result<Node, E> {
        let mut pair = |a: &Expr, b: &Expr| -> Result<(Box<Node>, Box<Node>), E> {
            Ok((
                Box::new(Node::compile(a, atom)?),
                Box::new(Node::compile(b, atom)?),
            ))
        };
        Ok(match expr {
            Expr::Group(name) => Node::Atom(atom(name, true)?),
            Expr::Term(term) => Node::Atom(atom(term, false)?),
            Expr::And(a, b) => {
                let (a, b) = pair(a, b)?;
                Node::And(a, b)
            }
            Expr::Or(a, b) => {
                let (a, b) = pair(a, b)?;
                Node::Or(a, b)
            }
            Expr::Not(inner) => Node::Not(Box::new(Node::compile(inner, atom)?)),
            Expr::Near {
                left,
                right,
                distance,
            } => {
                let (left, right) = pair(left, right)?;
                let distance = usize::try_from(*distance).unwrap_or(usize::MAX);
                Node::Near {
                    left,
                    right,
                    distance,
                }
            }
        })
    }

    /// Calls `visit(atom, positive)` for every atom, `positive` meaning it sits under an even
    /// number of NOTs, i.e. finding it can only help the query match.
    pub(crate) fn visit_atoms(&self, negated: bool, visit: &mut impl FnMut(usize, bool)) {
        match self {
            Node::Atom(atom) => visit(*atom, !negated),
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Near {
                left: a, right: b, ..
            } => {
                a.visit_atoms(negated, visit);
                b.visit_atoms(negated, visit);
            }
            Node::Not(inner) => inner.visit_atoms(!negated, visit),
        }
    }

    /// Whether the query holds, given each atom's occurrences.
    pub(crate) fn holds(&self, occurrences: &[Vec<Occurrence>]) -> bool {
        match self {
            Node::Atom(atom) => occurrences.get(*atom).is_some_and(|o| !o.is_empty()),
            Node::And(a, b) => a.holds(occurrences) && b.holds(occurrences),
            Node::Or(a, b) => a.holds(occurrences) || b.holds(occurrences),
            Node::Not(inner) => !inner.holds(occurrences),
            Node::Near { .. } => !self.spans(occurrences).is_empty(),
        }
    }

    /// Where a positive sub-query is satisfied: for an atom its occurrences, for NEAR the stretch
    /// covering each close pair. The parser keeps NOT out of NEAR, where it would have no place.
    fn spans(&self, occurrences: &[Vec<Occurrence>]) -> Vec<Occurrence> {
        match self {
            Node::Atom(atom) => occurrences.get(*atom).cloned().unwrap_or_default(),
            Node::Or(a, b) => [a.spans(occurrences), b.spans(occurrences)].concat(),
            Node::And(a, b) => {
                let (a, b) = (a.spans(occurrences), b.spans(occurrences));
                if a.is_empty() || b.is_empty() {
                    Vec::new()
                } else {
                    [a, b].concat()
                }
            }
            Node::Not(_) => Vec::new(),
            Node::Near {
                left,
                right,
                distance,
            } => {
                let right = right.spans(occurrences);
                let mut close = Vec::new();
                for l in left.spans(occurrences) {
                    for r in right.iter().filter(|r| r.field == l.field) {
                        if words_between(&l.words, &r.words) <= *distance {
                            close.push(Occurrence {
                                field: l.field,
                                words: l.words.start.min(r.words.start)
                                    ..l.words.end.max(r.words.end),
                            });
                        }
                    }
                }
                close
            }
        }
    }
}

/// Words strictly between two occurrences; 0 when they touch or overlap.
fn words_between(a: &Range<usize>, b: &Range<usize>) -> usize {
    if a.end <= b.start {
        b.start - a.end
    } else {
        a.start.saturating_sub(b.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(i: usize) -> Box<Node> {
        Box::new(Node::Atom(i))
    }

    fn at(field: usize, words: Range<usize>) -> Occurrence {
        Occurrence { field, words }
    }

    #[test]
    fn near_counts_words_between_in_either_order_within_one_field() {
        let near = Node::Near {
            left: atom(0),
            right: atom(1),
            distance: 2,
        };
        assert!(near.holds(&[vec![at(0, 0..1)], vec![at(0, 3..5)]]));
        assert!(near.holds(&[vec![at(0, 7..8)], vec![at(0, 3..5)]]));
        assert!(!near.holds(&[vec![at(0, 0..1)], vec![at(0, 4..5)]]));
        assert!(!near.holds(&[vec![at(0, 0..1)], vec![at(1, 1..2)]]));
        assert!(!near.holds(&[vec![at(0, 0..1)], vec![]]));
    }

    #[test]
    fn nested_near_uses_the_span_of_the_inner_pair() {
        let inner = Node::Near {
            left: atom(0),
            right: atom(1),
            distance: 0,
        };
        let outer = Node::Near {
            left: Box::new(inner),
            right: atom(2),
            distance: 1,
        };
        assert!(outer.holds(&[vec![at(0, 0..1)], vec![at(0, 1..2)], vec![at(0, 3..4)]]));
        assert!(!outer.holds(&[vec![at(0, 0..1)], vec![at(0, 1..2)], vec![at(0, 4..5)]]));
    }

    #[test]
    fn polarity_follows_the_nots() {
        let node = Node::And(
            atom(0),
            Box::new(Node::Not(Box::new(Node::Or(
                atom(1),
                Box::new(Node::Not(atom(2))),
            )))),
        );
        let mut seen = Vec::new();
        node.visit_atoms(false, &mut |a, positive| seen.push((a, positive)));
        assert_eq!(seen, [(0, true), (1, false), (2, true)]);
    }
}
