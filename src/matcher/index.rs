//! All terms of all watchlists in one lookup structure.
//!
//! Every allowed surface form of a term's first word (clitic forms pre-expanded) is a key of a
//! hash map, so scanning a text costs one lookup per word however many watchlists there are;
//! phrases then compare the few following words. Prefix terms (`x*`) are keyed by their prefix
//! forms and looked up with each distinct prefix length, which costs nothing when no watchlist
//! uses them.

use std::collections::HashMap;
use std::ops::Range;

use super::term::TermPattern;

/// Index of a distinct term in a [`TermIndex`].
pub(crate) type TermId = usize;

#[derive(Debug, Default)]
pub(crate) struct TermIndex {
    terms: Vec<TermPattern>,
    /// Terms written the same way in several places share one id.
    ids: HashMap<TermPattern, TermId>,
    /// First-word form → terms whose first word must equal it.
    exact: HashMap<String, Vec<TermId>>,
    /// First-word prefix form → single-word prefix terms.
    prefixes: HashMap<String, Vec<TermId>>,
    /// Distinct byte lengths of the keys of `prefixes`, ascending.
    prefix_lens: Vec<usize>,
}

impl TermIndex {
    /// Adds `term` (once, however often it is inserted) and returns its id.
    pub(crate) fn insert(&mut self, term: TermPattern) -> TermId {
        if let Some(&id) = self.ids.get(&term) {
            return id;
        }
        let id = self.terms.len();
        let prefix = term.first_word_is_prefix();
        for form in term.first_word_forms() {
            if prefix {
                if let Err(at) = self.prefix_lens.binary_search(&form.len()) {
                    self.prefix_lens.insert(at, form.len());
                }
                self.prefixes.entry(form).or_default().push(id);
            } else {
                self.exact.entry(form).or_default().push(id);
            }
        }
        self.ids.insert(term.clone(), id);
        self.terms.push(term);
        id
    }

    /// Number of distinct terms; ids are `0..len()`.
    pub(crate) fn len(&self) -> usize {
        self.terms.len()
    }

    /// Calls `found(term, words)` for every occurrence of a term in `words` (the normalized words
    /// of one text), `words` being the range of word indices the occurrence covers. Occurrences
    /// come in text order; one term is reported at most once per starting word.
    pub(crate) fn scan(&self, words: &[&str], mut found: impl FnMut(TermId, Range<usize>)) {
        let mut candidates: Vec<TermId> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            candidates.clear();
            if let Some(ids) = self.exact.get(*word) {
                candidates.extend(ids);
            }
            for &len in self
                .prefix_lens
                .iter()
                .take_while(|&&len| len <= word.len())
            {
                if let Some(ids) = word.get(..len).and_then(|key| self.prefixes.get(key)) {
                    candidates.extend(ids);
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            for &id in &candidates {
                let term = &self.terms[id];
                if term.rest_matches(&words[i + 1..]) {
                    found(id, i..i + term.words.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::text::tokenize;

    fn index(terms: &[&str]) -> TermIndex {
        let mut index = TermIndex::default();
        for term in terms {
            index.insert(TermPattern::parse(term).unwrap());
        }
        index
    }

    /// (term id, surface words) of every occurrence in `text`.
    fn occurrences(index: &TermIndex, text: &str) -> Vec<(TermId, String)> {
        let tokens = tokenize(text);
        let words: Vec<&str> = tokens.iter().map(|t| t.norm.as_str()).collect();
        let mut out = Vec::new();
        index.scan(&words, |id, range| out.push((id, words[range].join(" "))));
        out
    }

    #[test]
    fn same_term_written_twice_is_indexed_once() {
        let mut index = TermIndex::default();
        let a = index.insert(TermPattern::parse("إسرائيل").unwrap());
        let b = index.insert(TermPattern::parse("اسرائيل").unwrap());
        assert_eq!(a, b);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn phrases_and_words_share_the_map() {
        let index = index(&["تل أبيب", "تل", "Tel Aviv"]);
        assert_eq!(
            occurrences(&index, "وتل أبيب و tel-aviv"),
            [
                (0, "وتل ابيب".to_string()),
                (1, "وتل".to_string()),
                (2, "tel aviv".to_string()),
            ]
        );
    }

    #[test]
    fn prefix_terms_match_word_beginnings_with_clitics() {
        let index = index(&["Putin*", "روس*", "Tel Av*"]);
        let found = occurrences(&index, "Putinism وروسيا Rasputin Tel Avivian الروسية");
        assert_eq!(
            found,
            [
                (0, "putinism".to_string()),
                (1, "وروسيا".to_string()),
                (2, "tel avivian".to_string()),
            ]
        );
    }

    #[test]
    fn phrase_at_end_of_text_needs_all_words() {
        let index = index(&["حزب الله"]);
        assert!(occurrences(&index, "قال حزب").is_empty());
    }
}
