//! Watchlist matching: which watchlists an article satisfies, and which words made it so.
//!
//! All terms of all watchlists are compiled into one `TermIndex` keyed by normalized
//! word, so each field of an article is normalized and split once and each of its words costs one
//! hash lookup, however many watchlists there are. The occurrences found are then handed to the
//! watchlists that own the terms, and only those watchlists evaluate their query: a query is never
//! satisfied without one of its positive terms (the parser refuses such queries), so a watchlist
//! without hits can be skipped unseen.
//!
//! The rules for what counts as an occurrence are the contract in `corpus/matching/README.md`.

mod eval;
mod index;
pub mod query;
mod term;

use std::collections::HashSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::model::Field;
use crate::normalize::text::{Words, tokenize_with_bytes, with_words};
use eval::{Node, Occurrence};
use index::{TermId, TermIndex};
use query::QueryError;
pub(crate) use term::TermPattern;

/// A watchlist as configured: its name (the file stem), title, where to look, its named term
/// groups and its query.
#[derive(Debug, Clone, Default)]
pub struct WatchlistSpec {
    pub name: String,
    pub title: String,
    pub fields: Vec<Field>,
    pub groups: Vec<(String, Vec<String>)>,
    pub query: String,
    /// Only articles from these source ids; empty means every source.
    pub sources: Vec<String>,
    /// Only articles in these languages (primary subtags, lower-case, e.g. "ar"); empty means
    /// every language. An article whose language is unknown is outside a language scope.
    pub languages: Vec<String>,
    /// At least this many distinct terms must be found; 0 and 1 mean no extra requirement.
    pub min_hits: usize,
}

/// What the matcher needs to know about an article: the text of each field it may look at,
/// and what scopes a watchlist to some sources or languages.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArticleFields<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// The URL as stored (canonical), so hit offsets point into the stored field.
    pub url: &'a str,
    /// The `source` field is both the source id and its display name.
    pub source_id: &'a str,
    pub source_name: &'a str,
    pub language: Option<&'a str>,
}

/// One term occurrence that contributed to a watchlist match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The term as written in the watchlist.
    pub term: String,
    /// The group the term belongs to; for an inline "quoted" term, the term itself.
    pub group: String,
    pub field: Field,
    /// Char offsets into that field's original text, end exclusive; clitics attached to the
    /// first word are inside the span.
    pub start: usize,
    pub end: usize,
    /// The matched text, as it stands in the original.
    pub text: String,
}

/// A watchlist whose query an article satisfied, with the hits of its positive terms.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchlistMatch {
    pub watchlist: String,
    pub hits: Vec<Hit>,
}

#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("watchlist {watchlist}: {source}")]
    Query {
        watchlist: String,
        source: QueryError,
    },
    #[error("watchlist {watchlist}: {message}")]
    Invalid { watchlist: String, message: String },
}

/// Compiled watchlists; cheap to share between threads (`Send + Sync`, read-only).
#[derive(Debug)]
pub struct Matcher {
    index: TermIndex,
    /// For each term id, the watchlist atoms it belongs to.
    owners: Vec<Vec<Owner>>,
    watchlists: Vec<Watchlist>,
}

/// A term's place in one watchlist.
#[derive(Debug)]
struct Owner {
    watchlist: usize,
    atom: usize,
    /// As written in the watchlist, for [`Hit::term`].
    term: String,
}

#[derive(Debug)]
struct Watchlist {
    name: String,
    fields: Vec<Field>,
    atoms: Vec<Atom>,
    query: Node,
    sources: Vec<String>,
    languages: Vec<String>,
    min_hits: usize,
}

impl Watchlist {
    /// Whether an article from `source` in `language` is within this watchlist's scope.
    fn in_scope(&self, source: &str, language: Option<&str>) -> bool {
        let source_ok = self.sources.is_empty() || self.sources.iter().any(|s| s == source);
        let language_ok = self.languages.is_empty()
            || language
                .map(primary_language)
                .is_some_and(|l| self.languages.contains(&l));
        source_ok && language_ok
    }
}

/// "ar-LB" → "ar": the primary subtag, lower-case, which is what watchlists list.
pub fn primary_language(tag: &str) -> String {
    tag.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A group or inline term the query refers to.
#[derive(Debug)]
struct Atom {
    /// Group name, or the inline term as written.
    label: String,
    /// A group and an inline term may be spelled alike; they are still different atoms.
    is_group: bool,
    /// Finding it can help the query match (it is not only under NOT); only those atoms are
    /// reported as hits and make the watchlist worth evaluating.
    positive: bool,
}

/// Term occurrences in an article's title and body, found by [`Matcher::prescan`].
#[derive(Default)]
pub(crate) struct Prescanned(Vec<FieldHit>);

/// One occurrence of an indexed term in one of the fields being matched.
struct FieldHit {
    term: TermId,
    field: usize,
    words: Range<usize>,
    chars: Range<usize>,
    bytes: Range<usize>,
}

impl Matcher {
    /// Compiles every watchlist; the first invalid one is reported with its name.
    pub fn compile(specs: &[WatchlistSpec]) -> Result<Matcher, MatcherError> {
        let mut index = TermIndex::default();
        let mut memberships: Vec<(TermId, Owner)> = Vec::new();
        let mut watchlists = Vec::with_capacity(specs.len());
        for (number, spec) in specs.iter().enumerate() {
            let invalid = |message: String| MatcherError::Invalid {
                watchlist: spec.name.clone(),
                message,
            };
            if specs[..number].iter().any(|other| other.name == spec.name) {
                return Err(invalid("another watchlist has the same name".into()));
            }
            if spec.fields.is_empty() {
                return Err(invalid(
                    "fields is empty; list where to look, e.g. [\"title\", \"body\"]".into(),
                ));
            }
            let groups = compile_groups(&spec.groups).map_err(invalid)?;
            let names: Vec<String> = spec.groups.iter().map(|(name, _)| name.clone()).collect();
            let expr = query::parse(&spec.query, &names).map_err(|source| MatcherError::Query {
                watchlist: spec.name.clone(),
                source,
            })?;

            let mut atoms: Vec<Atom> = Vec::new();
            let mut atom_of = |label: &str, is_group: bool| -> Result<usize, String> {
                let known = atoms
                    .iter()
                    .position(|a| a.label == label && a.is_group == is_group);
                if let Some(i) = known {
                    return Ok(i);
                }
                let terms: Vec<(String, TermPattern)> = if is_group {
                    groups
                        .iter()
                        .find(|(group, _)| group == label)
                        .map(|(_, terms)| terms.clone())
                        .ok_or_else(|| format!("unknown group \"{label}\""))?
                } else {
                    vec![(label.to_string(), TermPattern::parse(label)?)]
                };
                let atom = atoms.len();
                for (raw, pattern) in terms {
                    let owner = Owner {
                        watchlist: number,
                        atom,
                        term: raw,
                    };
                    memberships.push((index.insert(pattern), owner));
                }
                atoms.push(Atom {
                    label: label.to_string(),
                    is_group,
                    positive: false,
                });
                Ok(atom)
            };
            let query = Node::compile(&expr, &mut atom_of).map_err(invalid)?;
            query.visit_atoms(false, &mut |atom, positive| {
                atoms[atom].positive |= positive
            });
            watchlists.push(Watchlist {
                name: spec.name.clone(),
                fields: spec.fields.clone(),
                atoms,
                query,
                sources: spec.sources.clone(),
                languages: spec.languages.iter().map(|l| primary_language(l)).collect(),
                min_hits: spec.min_hits,
            });
        }
        let mut owners: Vec<Vec<Owner>> = (0..index.len()).map(|_| Vec::new()).collect();
        for (term, owner) in memberships {
            owners[term].push(owner);
        }
        Ok(Matcher {
            index,
            owners,
            watchlists,
        })
    }

    /// Only watchlists whose query is satisfied are returned; hits are those of the terms relevant
    /// to the query's positive part, in the fields the watchlist looks at. Source and language
    /// scopes are not applied (the texts have neither); `min_hits` is.
    pub fn match_fields(&self, fields: &[(Field, &str)]) -> Vec<WatchlistMatch> {
        self.match_scoped(fields, self.scan(fields, 0, Vec::new()), None)
    }

    /// Matches a stored or fetched article: every field, and each watchlist's source and
    /// language scope.
    pub fn match_article(&self, article: &ArticleFields<'_>) -> Vec<WatchlistMatch> {
        let fields = Self::article_fields(article);
        let found = self.scan(&fields, 0, Vec::new());
        self.match_scoped(&fields, found, Some((article.source_id, article.language)))
    }

    /// [`Matcher::match_article`], with the title and body already scanned (by
    /// [`Matcher::prescan`] while their words were read for the content hash), so each article's
    /// text is split into words once.
    pub(crate) fn match_prescanned(
        &self,
        article: &ArticleFields<'_>,
        title_and_body: Prescanned,
    ) -> Vec<WatchlistMatch> {
        let fields = Self::article_fields(article);
        let found = self.scan(&fields, 2, title_and_body.0);
        self.match_scoped(&fields, found, Some((article.source_id, article.language)))
    }

    /// Scans the words of an article's title (`body` false) or body into `into`; the words
    /// must be those of the title and body that [`Matcher::match_prescanned`] is then given.
    pub(crate) fn prescan(&self, body: bool, words: &Words, into: &mut Prescanned) {
        self.scan_words(usize::from(body), words, &mut into.0);
    }

    /// The fields an article is matched on, in the order hits are reported: title, body, URL,
    /// source id and (when it differs) source name.
    fn article_fields<'a>(article: &ArticleFields<'a>) -> Vec<(Field, &'a str)> {
        let mut fields = vec![
            (Field::Title, article.title),
            (Field::Body, article.body),
            (Field::Url, article.url),
            (Field::Source, article.source_id),
        ];
        if !article.source_name.is_empty() && article.source_name != article.source_id {
            fields.push((Field::Source, article.source_name));
        }
        fields
    }

    /// Names of the compiled watchlists, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.watchlists.iter().map(|w| w.name.as_str())
    }

    fn match_scoped(
        &self,
        fields: &[(Field, &str)],
        found: Vec<FieldHit>,
        scope: Option<(&str, Option<&str>)>,
    ) -> Vec<WatchlistMatch> {
        // (watchlist, index into `found`, owner) of every occurrence a watchlist can see,
        // grouped by watchlist below (a stable sort keeps text order within each).
        let mut seen: Vec<(usize, usize, &Owner)> = Vec::new();
        for (i, hit) in found.iter().enumerate() {
            let field = fields[hit.field].0;
            for owner in &self.owners[hit.term] {
                let watchlist = &self.watchlists[owner.watchlist];
                if watchlist.fields.contains(&field) {
                    seen.push((owner.watchlist, i, owner));
                }
            }
        }
        seen.sort_by_key(|&(watchlist, _, _)| watchlist);
        let mut matches = Vec::new();
        for group in seen.chunk_by(|a, b| a.0 == b.0) {
            let number = group[0].0;
            let occurrences: Vec<(usize, &Owner)> =
                group.iter().map(|&(_, i, owner)| (i, owner)).collect();
            let watchlist = &self.watchlists[number];
            if let Some((source, language)) = scope
                && !watchlist.in_scope(source, language)
            {
                continue;
            }
            if !occurrences
                .iter()
                .any(|(_, owner)| watchlist.atoms[owner.atom].positive)
            {
                continue;
            }
            let mut by_atom: Vec<Vec<Occurrence>> = vec![Vec::new(); watchlist.atoms.len()];
            for &(i, owner) in &occurrences {
                by_atom[owner.atom].push(Occurrence {
                    field: found[i].field,
                    words: found[i].words.clone(),
                });
            }
            if !watchlist.query.holds(&by_atom) {
                continue;
            }
            if watchlist.min_hits > 1 {
                let mut distinct: Vec<TermId> = occurrences
                    .iter()
                    .filter(|(_, owner)| watchlist.atoms[owner.atom].positive)
                    .map(|&(i, _)| found[i].term)
                    .collect();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() < watchlist.min_hits {
                    continue;
                }
            }
            let mut hits: Vec<(usize, Hit)> = occurrences
                .iter()
                .filter(|(_, owner)| watchlist.atoms[owner.atom].positive)
                .map(|&(i, owner)| {
                    let at = &found[i];
                    let (field, text) = fields[at.field];
                    let hit = Hit {
                        term: owner.term.clone(),
                        group: watchlist.atoms[owner.atom].label.clone(),
                        field,
                        start: at.chars.start,
                        end: at.chars.end,
                        text: text[at.bytes.clone()].to_string(),
                    };
                    (at.field, hit)
                })
                .collect();
            hits.sort_by(|(fa, a), (fb, b)| {
                (fa, a.start, a.end, &a.group, &a.term)
                    .cmp(&(fb, b.start, b.end, &b.group, &b.term))
            });
            hits.dedup();
            matches.push(WatchlistMatch {
                watchlist: watchlist.name.clone(),
                hits: hits.into_iter().map(|(_, hit)| hit).collect(),
            });
        }
        matches
    }

    /// Single-group convenience for tests/tools: does `text` contain any of `terms` under the
    /// contract? Terms that cannot match anything (no letters or digits) are ignored.
    pub fn any_term_matches(terms: &[String], text: &str) -> bool {
        let mut index = TermIndex::default();
        for term in terms {
            if let Ok(pattern) = TermPattern::parse(term) {
                index.insert(pattern);
            }
        }
        let tokens = tokenize_with_bytes(text);
        let words: Vec<&str> = tokens.iter().map(|(t, _)| t.norm.as_str()).collect();
        let mut any = false;
        index.scan(&words, |_, _| any = true);
        any
    }

    /// Every occurrence of every indexed term in `fields`, each field tokenized once.
    /// Adds to `found` the occurrences in `fields[from..]`.
    fn scan(
        &self,
        fields: &[(Field, &str)],
        from: usize,
        mut found: Vec<FieldHit>,
    ) -> Vec<FieldHit> {
        for (field, (_, text)) in fields.iter().enumerate().skip(from) {
            with_words(text, |tokens| self.scan_words(field, tokens, &mut found));
        }
        found
    }

    fn scan_words(&self, field: usize, tokens: &Words, found: &mut Vec<FieldHit>) {
        let words: Vec<&str> = tokens.norms().collect();
        self.index.scan(&words, |term, range| {
            let first = tokens.get(range.start);
            let last = tokens.get(range.end - 1);
            found.push(FieldHit {
                term,
                field,
                chars: first.chars.start..last.chars.end,
                bytes: first.bytes.start..last.bytes.end,
                words: range,
            });
        });
    }
}

/// Checks group names and normalizes their terms: (group name, [(term as written, pattern)]).
type CompiledGroups = Vec<(String, Vec<(String, TermPattern)>)>;

fn compile_groups(groups: &[(String, Vec<String>)]) -> Result<CompiledGroups, String> {
    let mut compiled = Vec::with_capacity(groups.len());
    let mut names: HashSet<&str> = HashSet::new();
    for (name, terms) in groups {
        let usable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !matches!(name.as_str(), "AND" | "OR" | "NOT" | "NEAR");
        if !usable {
            return Err(format!(
                "group name \"{name}\" cannot be used in a query; use letters, digits, _ and - \
                 (and not AND, OR, NOT, NEAR)"
            ));
        }
        if !names.insert(name) {
            return Err(format!("group \"{name}\" is defined twice"));
        }
        if terms.is_empty() {
            return Err(format!("group \"{name}\" has no terms"));
        }
        let patterns = terms
            .iter()
            .map(|raw| {
                TermPattern::parse(raw)
                    .map(|pattern| (raw.clone(), pattern))
                    .map_err(|why| format!("group \"{name}\": term \"{raw}\": {why}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        compiled.push((name.clone(), patterns));
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The shared corpus sits beside an ancestor of the crate: `../shared/corpus` from the main
    /// crate, `../../shared/corpus` from a scratch crate.
    fn corpus_dir() -> PathBuf {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        manifest
            .ancestors()
            .map(|dir| dir.join("shared/corpus"))
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "no shared/corpus directory beside any ancestor of {}",
                    manifest.display()
                )
            })
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn agrees_with_every_developer_case() {
        let path = corpus_dir().join("matching/dev.jsonl");
        let data =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut cases = 0;
        let mut disagreements = Vec::new();
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let terms: Vec<String> = serde_json::from_value(case["terms"].clone()).unwrap();
            let text = case["text"].as_str().unwrap();
            let expect = case["expect"].as_bool().unwrap();
            cases += 1;
            if Matcher::any_term_matches(&terms, text) != expect {
                disagreements.push(format!(
                    "{} (expected {expect}: {})",
                    case["id"], case["why"]
                ));
            }
        }
        assert!(cases > 0, "{} has no cases", path.display());
        assert!(
            disagreements.is_empty(),
            "{} of {cases} cases disagree:\n{}",
            disagreements.len(),
            disagreements.join("\n")
        );
    }

    /// (terms, text, expected) for each rule of the contract that is easy to get wrong.
    fn check(cases: &[(&[&str], &str, bool)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(terms, text, expect)| {
                Matcher::any_term_matches(&strings(terms), text) != *expect
            })
            .map(|(terms, text, expect)| format!("{terms:?} in {text:?}: expected {expect}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn clitics_attach_in_order_and_only_in_front() {
        check(&[
            (&["الكرملين"], "مقرب للكرملين", true),
            (&["الكرملين"], "وللكرملين رأي آخر", true),
            (&["الكرملين"], "فللكرملين", true),
            (&["الكرملين"], "كالكرملين", true),
            (&["الكرملين"], "فبالكرملين", true),
            (&["الكرملين"], "وَبِالكرملين", true),
            (&["الكرملين"], "كرملين", false),
            (&["الكرملين"], "وفالكرملين", false),
            (&["الكرملين"], "لبالكرملين", false),
            (&["الكرملين"], "للكرملينية", false),
            (&["روسيا"], "وبروسيا", true),
            (&["روسيا"], "بوروسيا", false),
            (&["روسيا"], "الروسيا", false),
            (&["إسرائيل"], "وكإسرائيل", true),
            (&["إسرائيل"], "للإسرائيل", false),
            (&["عون"], "عونكم", false),
        ]);
    }

    #[test]
    fn terms_starting_with_clitic_letters_are_whole_words() {
        check(&[
            (&["بوتين"], "بوتين", true),
            (&["بوتين"], "وبوتين", true),
            (&["بوتين"], "ببوتين", true),
            (&["بوتين"], "فلبوتين", true),
            (&["بوتين"], "وتين", false),
            (&["بوتين"], "توتين", false),
            (&["لبنان"], "للبنان", true),
            (&["لبنان"], "وللبنان", true),
            (&["لبنان"], "بنان", false),
            (&["لبنان"], "نان", false),
            (&["بيروت"], "وبيروت", true),
            (&["بيروت"], "يروت", false),
            (&["فلاديمير بوتين"], "فلاديمير بوتين", true),
            (&["فلاديمير بوتين"], "وفلاديمير بوتين", true),
            (&["فلاديمير بوتين"], "لاديمير بوتين", false),
            (&["فلاديمير بوتين"], "فلاديمير وبوتين", false),
        ]);
    }

    #[test]
    fn phrases_allow_only_punctuation_between_words() {
        check(&[
            (&["تل أبيب"], "تل-أبيب", true),
            (&["تل أبيب"], "تل، أبيب", true),
            (&["تل أبيب"], "تل\nأبيب", true),
            (&["تل أبيب"], "تل\u{00A0}ابيب", true),
            (&["Tel Aviv"], "Tel — Aviv", true),
            (&["Tel Aviv"], "TEL\tAVIV", true),
            (&["Tel Aviv"], "Tel big Aviv", false),
            (&["Tel Aviv"], "TelAviv", false),
            (&["حزب الله"], "حزب (الله)", true),
            (&["حزب الله"], "حزب ولله", false),
            (&["حزب الله"], "حزب لله", false),
            (&["بنيامين نتنياهو"], "بنيامين (بيبي) نتنياهو", false),
        ]);
    }

    #[test]
    fn english_terms_are_whole_words_without_clitics() {
        check(&[
            (&["Putin"], "Putin's visit", true),
            (&["Putin"], "PUTIN’S VISIT", true),
            (&["Putin"], "Rasputin", false),
            (&["Putin"], "Putins", false),
            (&["Putin"], "وPutin", false),
            (&["Putin"], "بوتين", false),
            (&["Israel"], "Israel-based", true),
        ]);
    }

    #[test]
    fn digits_fold_and_stay_part_of_words() {
        check(&[
            (&["G20"], "قمة G٢٠ في روما", true),
            (&["G20"], "قمة G۲۰ في روما", true),
            (&["G20"], "G20s", false),
            (&["روسيا"], "#روسيا٢٠٢٤", false),
            (&["روسيا"], "روسيا ٢٠٢٤", true),
            (&["2024"], "عام ٢٠٢٤", true),
        ]);
    }

    #[test]
    fn presentation_forms_and_invisible_marks_do_not_hide_terms() {
        check(&[
            (
                &["لبنان"],
                "في \u{FEDF}\u{FE92}\u{FEE8}\u{FE8E}\u{FEE5} اليوم",
                true,
            ),
            (&["فلاديمير بوتين"], "ف\u{FEFB}ديمير بوتين", true),
            (&["بوتين"], "\u{2067}بوتين\u{2069}", true),
            (&["بوتين"], "بو\u{200D}تين", true),
            (&["بوتين"], "و\u{200F}بوتين", true),
            (&["Putin"], "Pu\u{202E}tin", true),
            (&["Putin"], "Pu\u{00AD}tin", true),
            (&["Putin"], "Ｐｕｔｉｎ", true),
            (&["نتنياهو"], "نتنـــياهو", true),
            (&["نتنياهو"], "نَتَنْيَاهُو", true),
        ]);
    }

    #[test]
    fn prefix_terms_match_beginnings() {
        check(&[
            (&["Putin*"], "Putinism", true),
            (&["Putin*"], "Rasputin", false),
            (&["روس*"], "والروسية", false),
            (&["روس*"], "وروسيا", true),
            (&["Tel Av*"], "Tel Avivian", true),
        ]);
    }

    fn spec(
        name: &str,
        fields: &[Field],
        groups: &[(&str, &[&str])],
        query: &str,
    ) -> WatchlistSpec {
        WatchlistSpec {
            name: name.into(),
            title: name.into(),
            fields: fields.to_vec(),
            groups: groups
                .iter()
                .map(|(g, terms)| (g.to_string(), strings(terms)))
                .collect(),
            query: query.into(),
            ..WatchlistSpec::default()
        }
    }

    fn russia_israel(query: &str) -> WatchlistSpec {
        spec(
            "russia-israel",
            &[Field::Title, Field::Body],
            &[
                ("russia", &["روسيا", "الكرملين", "بوتين", "Russia", "Putin"]),
                ("israel", &["إسرائيل", "تل أبيب", "نتنياهو", "Israel"]),
            ],
            query,
        )
    }

    #[test]
    fn query_errors_name_the_watchlist() {
        let err = Matcher::compile(&[russia_israel("russia AND isreal")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "watchlist russia-israel: unknown group \"isreal\" in query; groups are russia, israel"
        );
        assert!(matches!(
            err,
            MatcherError::Query {
                source: QueryError { offset: 11, .. },
                ..
            }
        ));
    }

    #[test]
    fn invalid_watchlists_are_refused_with_the_reason() {
        let bad_term = spec("w", &[Field::Body], &[("g", &["Putin", "--"])], "g");
        assert_eq!(
            Matcher::compile(&[bad_term]).unwrap_err().to_string(),
            "watchlist w: group \"g\": term \"--\": the term has no letters or digits"
        );
        let cases = [
            (spec("w", &[], &[("g", &["Putin"])], "g"), "fields is empty"),
            (
                spec("w", &[Field::Body], &[("g", &[])], "g"),
                "has no terms",
            ),
            (
                spec("w", &[Field::Body], &[("روسيا", &["روسيا"])], "g"),
                "cannot be used in a query",
            ),
        ];
        for (spec, why) in cases {
            let err = Matcher::compile(&[spec]).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let twice = [russia_israel("russia"), russia_israel("israel")];
        assert!(
            Matcher::compile(&twice)
                .unwrap_err()
                .to_string()
                .contains("same name")
        );
    }

    #[test]
    fn title_and_body_read_with_the_content_hash_match_as_read_alone() {
        let by_url = spec(
            "by-url",
            &[Field::Url, Field::Source, Field::Title],
            &[("site", &["example", "wire"])],
            "site",
        );
        let matcher = Matcher::compile(&[russia_israel("russia AND israel"), by_url]).unwrap();
        let articles = [
            ArticleFields {
                title: "لقاء بين بُوتين ونتنـياهو",
                body: "قال مصدر مقرب للكرملين إن Russia’s موقف من تل-أبيب ثابت.",
                url: "https://news.example/a",
                source_id: "wire",
                source_name: "The Wire",
                language: Some("ar"),
            },
            ArticleFields {
                title: "Putin",
                body: "Nothing about the other side.",
                url: "https://other.test/b",
                source_id: "s1",
                ..ArticleFields::default()
            },
            ArticleFields {
                title: "",
                body: "Israel and Russia, wire example",
                url: "",
                source_id: "",
                ..ArticleFields::default()
            },
        ];
        let mut matched = 0;
        for article in &articles {
            let mut prescanned = Prescanned::default();
            crate::normalize::text::content_hash_of_words(
                article.title,
                article.body,
                |body, words| matcher.prescan(body, words, &mut prescanned),
            );
            let direct = matcher.match_article(article);
            matched += direct.len();
            assert_eq!(matcher.match_prescanned(article, prescanned), direct);
        }
        // Both watchlists on the first article (hits in every field), none on the second, the
        // body's words on the third.
        assert_eq!(matched, 3);
    }

    #[test]
    fn hits_carry_original_offsets_and_surface_text() {
        let matcher = Matcher::compile(&[russia_israel("russia AND israel")]).unwrap();
        let title = "لقاء بين بُوتين ونتنـياهو";
        let body = "قال مصدر مقرب للكرملين إن Russia’s موقف من تل-أبيب ثابت.";
        let matches = matcher.match_fields(&[(Field::Title, title), (Field::Body, body)]);
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].watchlist, "russia-israel");
        let got: Vec<(&str, &str, Field, &str)> = matches[0]
            .hits
            .iter()
            .map(|h| (h.term.as_str(), h.group.as_str(), h.field, h.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("بوتين", "russia", Field::Title, "بُوتين"),
                ("نتنياهو", "israel", Field::Title, "ونتنـياهو"),
                ("الكرملين", "russia", Field::Body, "للكرملين"),
                ("Russia", "russia", Field::Body, "Russia"),
                ("تل أبيب", "israel", Field::Body, "تل-أبيب"),
            ]
        );
        for hit in &matches[0].hits {
            let field_text = if hit.field == Field::Title {
                title
            } else {
                body
            };
            let by_offsets: String = field_text
                .chars()
                .skip(hit.start)
                .take(hit.end - hit.start)
                .collect();
            assert_eq!(by_offsets, hit.text);
        }
    }

    #[test]
    fn only_satisfied_watchlists_and_their_fields_count() {
        let specs = [
            russia_israel("russia AND israel"),
            spec(
                "titles-only",
                &[Field::Title],
                &[("lebanon", &["لبنان", "Lebanon"])],
                "lebanon",
            ),
            spec("urls", &[Field::Url], &[("putin", &["Putin"])], "putin"),
        ];
        let matcher = Matcher::compile(&specs).unwrap();
        let names = |fields: &[(Field, &str)]| -> Vec<String> {
            matcher
                .match_fields(fields)
                .into_iter()
                .map(|m| m.watchlist)
                .collect()
        };
        assert_eq!(
            names(&[
                (Field::Title, "بوتين في موسكو"),
                (Field::Body, "لا ذكر للطرف الآخر")
            ]),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&[(Field::Title, "أزمة"), (Field::Body, "للبنان ديون")]),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&[
                (Field::Title, "ديون للبنان"),
                (Field::Url, "https://x.org/putin-visit")
            ]),
            ["titles-only", "urls"]
        );
        assert_eq!(
            names(&[
                (Field::Title, "Putin meets Netanyahu"),
                (Field::Body, "Israel and Russia")
            ]),
            ["russia-israel"]
        );
    }

    #[test]
    fn not_excludes_and_its_terms_are_not_hits() {
        let lebanon = spec(
            "lebanon",
            &[Field::Body],
            &[("aoun", &["عون"])],
            "aoun AND NOT \"بعون الله\"",
        );
        let matcher = Matcher::compile(&[lebanon]).unwrap();
        assert!(
            matcher
                .match_fields(&[(Field::Body, "سننتصر بعون الله")])
                .is_empty()
        );
        let matches = matcher.match_fields(&[(Field::Body, "استقبل الرئيس عون الوفد")]);
        assert_eq!(matches.len(), 1);
        assert!(matches[0].hits.iter().all(|h| h.group == "aoun"));
    }

    #[test]
    fn inline_terms_are_their_own_group() {
        let matcher = Matcher::compile(&[russia_israel("russia AND \"غزة\"")]).unwrap();
        let matches = matcher.match_fields(&[(Field::Body, "بوتين يتحدث عن غزة")]);
        let groups: Vec<(&str, &str)> = matches[0]
            .hits
            .iter()
            .map(|h| (h.group.as_str(), h.term.as_str()))
            .collect();
        assert_eq!(groups, [("russia", "بوتين"), ("غزة", "غزة")]);
    }

    #[test]
    fn a_group_and_an_inline_term_spelled_alike_stay_apart() {
        let spec = spec(
            "w",
            &[Field::Body],
            &[("putin", &["بوتين"])],
            "putin AND \"putin\"",
        );
        let matcher = Matcher::compile(&[spec]).unwrap();
        assert!(
            matcher
                .match_fields(&[(Field::Body, "وصل بوتين")])
                .is_empty()
        );
        let matches = matcher.match_fields(&[(Field::Body, "Putin = بوتين")]);
        let groups: Vec<(&str, &str)> = matches[0]
            .hits
            .iter()
            .map(|h| (h.group.as_str(), h.text.as_str()))
            .collect();
        assert_eq!(groups, [("putin", "Putin"), ("putin", "بوتين")]);
    }

    #[test]
    fn near_counts_words_within_one_field() {
        let matcher = Matcher::compile(&[russia_israel("russia NEAR/2 israel")]).unwrap();
        let matched = |title: &str, body: &str| {
            !matcher
                .match_fields(&[(Field::Title, title), (Field::Body, body)])
                .is_empty()
        };
        assert!(matched("", "Putin met Israel"));
        assert!(matched("", "Israel, said Putin"));
        assert!(matched("", "تل أبيب ترد على الكرملين"));
        assert!(!matched("", "Israel then flew home and called Putin"));
        assert!(!matched("Putin", "Israel"));
    }

    #[test]
    fn watchlists_share_terms_without_mixing_them() {
        let specs = [
            russia_israel("russia"),
            spec(
                "kremlin",
                &[Field::Body],
                &[("k", &["الكرملين", "Kremlin"])],
                "k",
            ),
        ];
        let matcher = Matcher::compile(&specs).unwrap();
        let matches = matcher.match_fields(&[(Field::Body, "بيان من الكرملين")]);
        let got: Vec<(&str, &str)> = matches
            .iter()
            .map(|m| (m.watchlist.as_str(), m.hits[0].group.as_str()))
            .collect();
        assert_eq!(got, [("russia-israel", "russia"), ("kremlin", "k")]);
    }

    fn article<'a>(title: &'a str, body: &'a str) -> ArticleFields<'a> {
        ArticleFields {
            title,
            body,
            url: "https://news.example/2026/putin-visit",
            source_id: "wire-ar",
            source_name: "وكالة الأنباء",
            language: Some("ar"),
        }
    }

    fn matched(matcher: &Matcher, article: &ArticleFields<'_>) -> Vec<String> {
        matcher
            .match_article(article)
            .into_iter()
            .map(|m| m.watchlist)
            .collect()
    }

    #[test]
    fn url_and_source_fields_are_searched_only_when_listed() {
        let by_url = spec("url", &[Field::Url], &[("p", &["putin"])], "p");
        let by_source = spec("src", &[Field::Source], &[("w", &["وكالة", "wire"])], "w");
        let by_text = spec(
            "text",
            &[Field::Title, Field::Body],
            &[("p", &["putin"])],
            "p",
        );
        let matcher = Matcher::compile(&[by_url, by_source, by_text]).unwrap();
        let a = article("عنوان", "نص");
        assert_eq!(matched(&matcher, &a), ["url", "src"]);
        let found = matcher.match_article(&a);
        let url_hit = &found[0].hits[0];
        assert_eq!(
            (url_hit.field, url_hit.text.as_str()),
            (Field::Url, "putin")
        );
        // The source is matched by id and by display name.
        let texts: Vec<&str> = found[1].hits.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(texts, ["wire", "وكالة"]);
        assert!(found[1].hits.iter().all(|h| h.field == Field::Source));
    }

    #[test]
    fn source_and_language_scopes_limit_which_articles_count() {
        let mut only_wire = russia_israel("russia");
        only_wire.name = "wire".into();
        only_wire.sources = vec!["wire-ar".into()];
        let mut only_en = russia_israel("russia");
        only_en.name = "english".into();
        only_en.languages = vec!["EN".into()];
        let mut only_ar = russia_israel("russia");
        only_ar.name = "arabic".into();
        only_ar.languages = vec!["ar".into()];
        let matcher = Matcher::compile(&[only_wire, only_en, only_ar]).unwrap();

        let a = article("بوتين في موسكو", "");
        assert_eq!(matched(&matcher, &a), ["wire", "arabic"]);
        let elsewhere = ArticleFields {
            source_id: "other",
            language: Some("ar-LB"),
            ..a
        };
        assert_eq!(matched(&matcher, &elsewhere), ["arabic"]);
        let unknown = ArticleFields {
            language: None,
            ..a
        };
        assert_eq!(matched(&matcher, &unknown), ["wire"]);
        // Offline texts have no source or language: scopes do not apply there.
        assert_eq!(matcher.match_fields(&[(Field::Title, "Putin")]).len(), 3);
    }

    #[test]
    fn min_hits_counts_distinct_terms_not_repetitions() {
        let mut w = russia_israel("russia OR israel");
        w.min_hits = 2;
        let matcher = Matcher::compile(&[w]).unwrap();
        let count = |text: &str| matcher.match_fields(&[(Field::Body, text)]).len();
        assert_eq!(count("بوتين قال: بوتين يرى أن بوتين"), 0);
        assert_eq!(count("بوتين وروسيا"), 1);
        // The same term in two spellings is one term.
        assert_eq!(count("Putin putin PUTIN"), 0);
        assert_eq!(count("Putin and Israel"), 1);
    }

    #[test]
    fn matcher_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Matcher>();
    }
}
