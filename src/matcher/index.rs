//! All terms of all watchlists in one lookup structure.
//!
//! Every allowed surface form of a term's first word (clitic forms pre-expanded) is a key of a
//! hash map, so scanning a text costs one lookup per word however many watchlists there are;
//! phrases then compare the few following words. Prefix terms (`x*`) are keyed by their prefix
//! forms and found by walking a byte trie along the word (every key that begins the word, in one
//! pass that usually stops after a byte or two), which costs nothing when no watchlist uses them. The maps use a
//! fast non-cryptographic hash (FxHash): keys are watchlist terms, not attacker-chosen.

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use rustc_hash::FxHashMap as HashMap;

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
    /// A search over the keys of `prefixes`; built on first scan after the last insert.
    prefix_search: OnceLock<Option<PrefixSearch>>,
}

/// The keys that begin a word, found in one walk along its bytes that usually stops after a
/// byte or two: an anchored aho-corasick DFA (one array lookup per byte), or a hash-map trie if
/// the DFA cannot be built (too many states).
#[derive(Debug)]
enum PrefixSearch {
    Dfa {
        dfa: Box<DFA>,
        start: StateID,
        /// Per pattern: its key's length in bytes, and its terms.
        keys: Vec<(usize, Vec<TermId>)>,
    },
    Trie(PrefixTrie),
}

impl PrefixSearch {
    fn prefixes_of(&self, word: &str, out: &mut Vec<TermId>) {
        match self {
            PrefixSearch::Trie(trie) => trie.prefixes_of(word, out),
            PrefixSearch::Dfa { dfa, start, keys } => {
                let mut sid = *start;
                for (i, byte) in word.bytes().enumerate() {
                    sid = dfa.next_state(Anchored::Yes, sid, byte);
                    if !dfa.is_special(sid) {
                        continue;
                    }
                    if dfa.is_dead(sid) {
                        break;
                    }
                    if dfa.is_match(sid) {
                        for k in 0..dfa.match_len(sid) {
                            let (len, ids) = &keys[dfa.match_pattern(sid, k).as_usize()];
                            // A match state also lists keys that are only suffixes of the
                            // bytes read; only a key as long as them begins the word.
                            if *len == i + 1 {
                                out.extend(ids);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Node 0 is the root; `terms[node]` are the terms whose prefix form ends at that node.
#[derive(Debug, Default)]
struct PrefixTrie {
    edges: HashMap<(u32, u8), u32>,
    terms: Vec<Vec<TermId>>,
}

impl PrefixTrie {
    /// Adds the terms of every key that `word` begins with to `out`.
    fn prefixes_of(&self, word: &str, out: &mut Vec<TermId>) {
        let mut node = 0;
        for byte in word.bytes() {
            match self.edges.get(&(node, byte)) {
                Some(&next) => {
                    node = next;
                    out.extend(&self.terms[node as usize]);
                }
                None => break,
            }
        }
    }
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
                self.prefix_search = OnceLock::new();
                self.prefixes.entry(form).or_default().push(id);
            } else {
                self.exact.entry(form).or_default().push(id);
            }
        }
        self.ids.insert(term.clone(), id);
        self.terms.push(term);
        id
    }

    fn build_prefix_search(&self) -> Option<PrefixSearch> {
        if self.prefixes.is_empty() {
            return None;
        }
        let keys: Vec<(&String, &Vec<TermId>)> = self.prefixes.iter().collect();
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Anchored)
            .build(keys.iter().map(|(key, _)| key.as_bytes()));
        if let Ok(dfa) = dfa
            && let Ok(start) = dfa.start_state(Anchored::Yes)
        {
            let keys = keys
                .into_iter()
                .map(|(key, ids)| (key.len(), ids.clone()))
                .collect();
            return Some(PrefixSearch::Dfa {
                dfa: Box::new(dfa),
                start,
                keys,
            });
        }
        let mut trie = PrefixTrie {
            edges: HashMap::default(),
            terms: vec![Vec::new()],
        };
        for (key, ids) in &self.prefixes {
            let mut node = 0u32;
            for byte in key.bytes() {
                let fresh = trie.terms.len() as u32;
                node = *trie.edges.entry((node, byte)).or_insert(fresh);
                if node == fresh {
                    trie.terms.push(Vec::new());
                }
            }
            trie.terms[node as usize].extend(ids);
        }
        Some(PrefixSearch::Trie(trie))
    }

    /// Number of distinct terms; ids are `0..len()`.
    pub(crate) fn len(&self) -> usize {
        self.terms.len()
    }

    /// Calls `found(term, words)` for every occurrence of a term in `words` (the normalized words
    /// of one text), `words` being the range of word indices the occurrence covers. Occurrences
    /// come in text order; one term is reported at most once per starting word.
    pub(crate) fn scan(&self, words: &[&str], mut found: impl FnMut(TermId, Range<usize>)) {
        let prefixes = self
            .prefix_search
            .get_or_init(|| self.build_prefix_search())
            .as_ref();
        let mut candidates: Vec<TermId> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            candidates.clear();
            if let Some(ids) = self.exact.get(*word) {
                candidates.extend(ids);
            }
            if let Some(search) = prefixes {
                search.prefixes_of(word, &mut candidates);
            }
            if candidates.len() > 1 {
                candidates.sort_unstable();
                candidates.dedup();
            }
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
    fn a_prefix_key_that_is_only_a_suffix_of_the_word_start_does_not_match() {
        // "ab*" and "b*": in "abc" only "ab*" begins the word, though the automaton's state
        // after "ab" also knows "b".
        let index = index(&["ab*", "b*", "abcd*"]);
        assert_eq!(occurrences(&index, "abc"), [(0, "abc".to_string())]);
        assert_eq!(
            occurrences(&index, "abcde bx"),
            [
                (0, "abcde".to_string()),
                (2, "abcde".to_string()),
                (1, "bx".to_string())
            ]
        );
    }

    #[test]
    fn phrase_at_end_of_text_needs_all_words() {
        let index = index(&["حزب الله"]);
        assert!(occurrences(&index, "قال حزب").is_empty());
    }
}
