//! The watchlist query language: boolean combinations of term groups and quoted terms.
//!
//! ```text
//! query   := or
//! or      := and ( "OR" and )*
//! and     := near ( "AND" near )*          -- "AND NOT x" is AND followed by a NOT operand
//! near    := unary ( "NEAR/" n unary )*    -- both sides within n words, either order
//! unary   := "NOT" unary | primary
//! primary := "(" or ")" | group-name | '"' term '"'
//! ```
//! Precedence is NOT > NEAR > AND > OR; keywords are upper-case so that lower-case words can
//! only be group names. Errors carry the byte offset of the problem so the configuration loader
//! can report `file:line:col`. Pure: no I/O.

use super::term::TermPattern;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A named term group of the watchlist.
    Group(String),
    /// An inline term, as written between the quotes; may be a phrase, may end with `*`.
    Term(String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// Both sides occur in one field with at most `distance` words between them, in either order.
    Near {
        left: Box<Expr>,
        right: Box<Expr>,
        distance: u32,
    },
}

/// Why a query does not parse, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// Byte offset into the query string where the problem is.
    pub offset: usize,
    pub message: String,
}

/// Most words, quoted terms, operators and parentheses in one query. Every later pass over a
/// query (validation, compiling, matching) recurses once per level of its tree, and a chain
/// of operators is as deep as it is long, so the size is bounded where the user can be told.
const MAX_TOKENS: usize = 1000;

/// Most parentheses and NOTs open at once: the parser itself recurses per level.
const MAX_NESTING: usize = 64;

/// Parses `src`, accepting only the group names in `groups`.
pub fn parse(src: &str, groups: &[String]) -> Result<Expr, QueryError> {
    let tokens = lex(src)?;
    if let Some(token) = tokens.get(MAX_TOKENS) {
        return Err(QueryError {
            offset: token.offset,
            message: format!(
                "the query is longer than {MAX_TOKENS} words, terms and operators; put the terms \
                 in [terms] groups and combine the groups in the query"
            ),
        });
    }
    let mut parser = Parser {
        src,
        groups,
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return Err(QueryError {
            offset: 0,
            message: "the query is empty; expected a group name or a quoted term".into(),
        });
    }
    let expr = parser.or(None)?;
    if let Some(token) = parser.peek() {
        let message = match token.kind {
            Kind::RParen => "unexpected ) with no matching (".to_string(),
            Kind::Not => "expected AND, OR or NEAR/n before NOT; write AND NOT to exclude".into(),
            _ => format!("expected AND, OR or NEAR/n before {}", token.describe(src)),
        } + &operator_case_hint(token, src);
        return Err(QueryError {
            offset: token.offset,
            message,
        });
    }
    if matches_without_terms(&expr) {
        return Err(QueryError {
            offset: 0,
            message: "a query needs at least one positive term; as written it matches articles \
                      that contain none of its terms"
                .into(),
        });
    }
    Ok(expr)
}

/// Whether `expr` is satisfied by a text in which no term occurs. Such a query would flag nearly
/// every article, and the matcher relies on its absence to skip watchlists without hits.
fn matches_without_terms(expr: &Expr) -> bool {
    match expr {
        Expr::Group(_) | Expr::Term(_) | Expr::Near { .. } => false,
        Expr::And(a, b) => matches_without_terms(a) && matches_without_terms(b),
        Expr::Or(a, b) => matches_without_terms(a) || matches_without_terms(b),
        Expr::Not(inner) => !matches_without_terms(inner),
    }
}

fn contains_not(expr: &Expr) -> bool {
    match expr {
        Expr::Group(_) | Expr::Term(_) => false,
        Expr::Not(_) => true,
        Expr::And(a, b) | Expr::Or(a, b) => contains_not(a) || contains_not(b),
        Expr::Near { left, right, .. } => contains_not(left) || contains_not(right),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Near(u32),
    Ident,
    Quoted(String),
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    offset: usize,
    len: usize,
}

impl Token {
    fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.offset..self.offset + self.len]
    }

    /// How the token is named in messages.
    fn describe(&self, src: &str) -> String {
        match self.kind {
            Kind::Ident => format!("group {}", self.text(src)),
            Kind::Quoted(_) => format!("the term {}", self.text(src)),
            _ => self.text(src).to_string(),
        }
    }
}

/// A hint for `and`, `or`, `not`, `near` written in lower case, which read as group names.
fn operator_case_hint(token: &Token, src: &str) -> String {
    let upper = token.text(src).to_ascii_uppercase();
    if token.kind == Kind::Ident && matches!(upper.as_str(), "AND" | "OR" | "NOT" | "NEAR") {
        format!("; operators are written in capitals ({upper})")
    } else {
        String::new()
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '"' => {
                let body_start = offset + 1;
                let Some(close) = src[body_start..].find('"') else {
                    return Err(QueryError {
                        offset,
                        message: "this quoted term is never closed; expected a closing \"".into(),
                    });
                };
                let end = body_start + close;
                while chars.next_if(|&(i, _)| i <= end).is_some() {}
                let token = Kind::Quoted(src[body_start..end].to_string());
                tokens.push(Token {
                    kind: token,
                    offset,
                    len: end + 1 - offset,
                });
                continue;
            }
            c if is_ident_char(c) => {
                let mut end = offset + c.len_utf8();
                while let Some((i, c)) = chars.next_if(|&(_, c)| is_ident_char(c)) {
                    end = i + c.len_utf8();
                }
                let kind = match &src[offset..end] {
                    "AND" => Kind::And,
                    "OR" => Kind::Or,
                    "NOT" => Kind::Not,
                    "NEAR" => {
                        let distance = lex_near_distance(src, end)?;
                        while chars.next_if(|&(i, _)| i < distance.1).is_some() {}
                        end = distance.1;
                        Kind::Near(distance.0)
                    }
                    _ => Kind::Ident,
                };
                tokens.push(Token {
                    kind,
                    offset,
                    len: end - offset,
                });
                continue;
            }
            other => {
                return Err(QueryError {
                    offset,
                    message: format!(
                        "unexpected character {other:?}; group names use letters, digits, _ and -, \
                         and terms go in double quotes"
                    ),
                });
            }
        };
        tokens.push(Token {
            kind,
            offset,
            len: c.len_utf8(),
        });
    }
    Ok(tokens)
}

/// Reads the `/n` after `NEAR` (which ends at `at`); returns n and the offset just past it.
fn lex_near_distance(src: &str, at: usize) -> Result<(u32, usize), QueryError> {
    let Some(after_slash) = src[at..].strip_prefix('/') else {
        return Err(QueryError {
            offset: at,
            message: "NEAR needs a distance in words: write NEAR/n, e.g. NEAR/5".into(),
        });
    };
    let digits = after_slash.bytes().take_while(u8::is_ascii_digit).count();
    let end = at + 1 + digits;
    let digits_then_ident = after_slash[digits..]
        .chars()
        .next()
        .is_some_and(is_ident_char);
    if digits == 0 || digits_then_ident {
        return Err(QueryError {
            offset: at + 1,
            message: "expected a number of words after NEAR/, e.g. NEAR/5".into(),
        });
    }
    let distance = after_slash[..digits]
        .parse::<u32>()
        .map_err(|_| QueryError {
            offset: at + 1,
            message: format!("NEAR distance {} is too large", &after_slash[..digits]),
        })?;
    Ok((distance, end))
}

struct Parser<'a> {
    src: &'a str,
    groups: &'a [String],
    tokens: Vec<Token>,
    pos: usize,
    /// Parentheses and NOTs open around the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        let hit = self.peek().is_some_and(|t| &t.kind == kind);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// `after` names what came before this operand, for messages (`None` at the start).
    fn or(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let mut left = self.and(after)?;
        while self.eat(&Kind::Or) {
            let right = self.and(Some("OR"))?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let mut left = self.near(after)?;
        while self.eat(&Kind::And) {
            let right = self.near(Some("AND"))?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn near(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let mut left = self.unary(after)?;
        while let Some(&Token {
            kind: Kind::Near(distance),
            offset,
            ..
        }) = self.peek()
        {
            self.pos += 1;
            let right = self.unary(Some("NEAR"))?;
            if contains_not(&left) || contains_not(&right) {
                return Err(QueryError {
                    offset,
                    message: "NOT cannot be used inside NEAR; NEAR needs terms or groups on both \
                              sides (exclude with AND NOT outside it)"
                        .into(),
                });
            }
            left = Expr::Near {
                left: Box::new(left),
                right: Box::new(right),
                distance,
            };
        }
        Ok(left)
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        if let Some(offset) = self
            .peek()
            .filter(|t| t.kind == Kind::Not)
            .map(|t| t.offset)
        {
            self.pos += 1;
            self.enter(offset)?;
            let inner = self.unary(Some("NOT"));
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.primary(after)
    }

    /// One more level of parentheses or NOT, at `offset`; an error past [`MAX_NESTING`].
    fn enter(&mut self, offset: usize) -> Result<(), QueryError> {
        if self.depth == MAX_NESTING {
            return Err(QueryError {
                offset,
                message: format!(
                    "parentheses and NOT are nested more than {MAX_NESTING} levels deep here; \
                     simplify the query"
                ),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn primary(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let Some(token) = self.tokens.get(self.pos) else {
            return Err(self.expected_operand(after, None));
        };
        let expr = match &token.kind {
            Kind::LParen => {
                let open = token.offset;
                self.pos += 1;
                self.enter(open)?;
                let inner = self.or(Some("("));
                self.depth -= 1;
                let inner = inner?;
                if !self.eat(&Kind::RParen) {
                    return Err(match self.peek() {
                        None => QueryError {
                            offset: open,
                            message: "this ( is never closed; expected )".into(),
                        },
                        Some(t) => QueryError {
                            offset: t.offset,
                            message: format!(
                                "expected AND, OR, NEAR/n or ) before {}{}",
                                t.describe(self.src),
                                operator_case_hint(t, self.src)
                            ),
                        },
                    });
                }
                return Ok(inner);
            }
            Kind::Ident => self.group(token)?,
            Kind::Quoted(term) => match TermPattern::parse(term) {
                Ok(_) => Expr::Term(term.clone()),
                Err(why) => {
                    return Err(QueryError {
                        offset: token.offset,
                        message: format!("quoted term {}: {why}", token.text(self.src)),
                    });
                }
            },
            _ => return Err(self.expected_operand(after, Some(token))),
        };
        self.pos += 1;
        Ok(expr)
    }

    fn group(&self, token: &Token) -> Result<Expr, QueryError> {
        let name = token.text(self.src);
        if self.groups.iter().any(|g| g == name) {
            return Ok(Expr::Group(name.to_string()));
        }
        let mut message = if self.groups.is_empty() {
            format!(
                "unknown group \"{name}\" in query; this watchlist defines no groups, so quote \
                 the term instead: \"{name}\""
            )
        } else {
            format!(
                "unknown group \"{name}\" in query; groups are {}",
                self.groups.join(", ")
            )
        };
        message.push_str(&operator_case_hint(token, self.src));
        Err(QueryError {
            offset: token.offset,
            message,
        })
    }

    fn expected_operand(&self, after: Option<&str>, found: Option<&Token>) -> QueryError {
        let mut message = match after {
            Some(after) => format!("expected a group name or a quoted term after {after}"),
            None => "expected a group name or a quoted term at the start of the query".into(),
        };
        if let Some(found) = found {
            message.push_str(&format!(", found {}", found.describe(self.src)));
        }
        QueryError {
            offset: found.map_or(self.src.len(), |t| t.offset),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<String> {
        vec!["russia".into(), "israel".into()]
    }

    fn ok(src: &str) -> Expr {
        parse(src, &groups()).unwrap_or_else(|e| panic!("{src}: {e} at {}", e.offset))
    }

    fn err(src: &str) -> QueryError {
        parse(src, &groups()).expect_err(src)
    }

    fn g(name: &str) -> Box<Expr> {
        Box::new(Expr::Group(name.into()))
    }

    #[test]
    fn precedence_is_not_near_and_or() {
        assert_eq!(
            ok("russia OR israel AND \"Iran\""),
            Expr::Or(
                g("russia"),
                Box::new(Expr::And(g("israel"), Box::new(Expr::Term("Iran".into()))))
            )
        );
        assert_eq!(
            ok("russia AND israel NEAR/3 \"غزة\""),
            Expr::And(
                g("russia"),
                Box::new(Expr::Near {
                    left: g("israel"),
                    right: Box::new(Expr::Term("غزة".into())),
                    distance: 3
                })
            )
        );
        assert_eq!(
            ok("russia AND NOT israel"),
            Expr::And(g("russia"), Box::new(Expr::Not(g("israel"))))
        );
        assert_eq!(
            ok("(russia OR israel) AND \"Putin*\""),
            Expr::And(
                Box::new(Expr::Or(g("russia"), g("israel"))),
                Box::new(Expr::Term("Putin*".into()))
            )
        );
    }

    #[test]
    fn unknown_group_lists_the_known_ones() {
        let e = err("russia AND isreal");
        assert_eq!(
            e.message,
            "unknown group \"isreal\" in query; groups are russia, israel"
        );
        assert_eq!(e.offset, 11);
        assert!(
            err("russia and israel")
                .message
                .contains("operators are written in capitals (AND)")
        );
        assert!(
            err("not russia")
                .message
                .contains("operators are written in capitals (NOT)")
        );
    }

    #[test]
    fn missing_operands_say_what_was_expected() {
        let e = err("russia AND");
        assert_eq!(
            e.message,
            "expected a group name or a quoted term after AND"
        );
        assert_eq!(e.offset, 10);
        assert_eq!(
            err("russia OR )").message,
            "expected a group name or a quoted term after OR, found )"
        );
        assert_eq!(
            err("").message,
            "the query is empty; expected a group name or a quoted term"
        );
        assert!(
            err("AND israel")
                .message
                .contains("at the start of the query")
        );
    }

    #[test]
    fn structure_errors_point_at_the_problem() {
        assert_eq!(err("(russia AND israel").offset, 0);
        assert!(err("(russia AND israel").message.contains("never closed"));
        assert_eq!(
            err("russia israel").message,
            "expected AND, OR or NEAR/n before group israel"
        );
        assert!(err("russia NOT israel").message.contains("AND NOT"));
        assert_eq!(
            err("russia) AND israel").message,
            "unexpected ) with no matching ("
        );
        assert_eq!(err("russia AND \"Putin").offset, 11);
        assert!(
            err("russia AND \"--\"")
                .message
                .contains("no letters or digits")
        );
        assert!(
            err("russia & israel")
                .message
                .contains("unexpected character '&'")
        );
    }

    #[test]
    fn near_needs_a_distance_and_positive_sides() {
        assert!(err("russia NEAR israel").message.contains("NEAR/n"));
        assert!(
            err("russia NEAR/ israel")
                .message
                .contains("number of words")
        );
        assert!(
            err("russia NEAR/5x israel")
                .message
                .contains("number of words")
        );
        assert!(
            err("russia NEAR/99999999999 israel")
                .message
                .contains("too large")
        );
        assert!(
            err("russia NEAR/3 NOT israel")
                .message
                .contains("NOT cannot be used inside NEAR")
        );
        assert_eq!(
            ok("russia NEAR/0 israel"),
            Expr::Near {
                left: g("russia"),
                right: g("israel"),
                distance: 0
            }
        );
    }

    #[test]
    fn a_query_must_require_some_term() {
        for src in [
            "NOT russia",
            "NOT russia AND NOT israel",
            "russia OR NOT israel",
        ] {
            assert_eq!(
                err(src).message.split(';').next(),
                Some("a query needs at least one positive term"),
                "{src}"
            );
        }
        ok("NOT NOT russia");
        ok("russia AND NOT \"بعون الله\"");
    }
}
