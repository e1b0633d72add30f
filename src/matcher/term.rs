//! One watchlist term, normalized and ready to be indexed (contract §3).

use crate::normalize::text::{is_arabic_letter, is_word_char, normalize, tokenize};

/// The conjunctions that may open an Arabic word, before a preposition.
const CONJUNCTIONS: [&str; 3] = ["", "و", "ف"];
/// The prepositions that may be attached after the conjunction.
const PREPOSITIONS: [&str; 4] = ["", "ب", "ل", "ك"];
/// The definite article; `ل` + `ال` is written `لل`.
const ARTICLE: &str = "ال";

/// A term as the matcher sees it: its normalized words, and whether the last one is a prefix
/// (the term was written with a trailing `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TermPattern {
    pub(crate) words: Vec<String>,
    pub(crate) prefix: bool,
}

impl TermPattern {
    /// Normalizes a term as written in a watchlist. The error says what is wrong with it, for the
    /// caller to put in context (group, file, query offset).
    pub(crate) fn parse(raw: &str) -> Result<TermPattern, String> {
        let trimmed = raw.trim();
        let (body, prefix) = match trimmed.strip_suffix('*') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        if body.contains('*') {
            return Err("a * may only end a term, to match words that begin with it".into());
        }
        if prefix
            && !normalize(body)
                .chars()
                .next_back()
                .is_some_and(is_word_char)
        {
            return Err("a * must directly follow a letter or digit".into());
        }
        let words: Vec<String> = tokenize(body).into_iter().map(|t| t.norm).collect();
        if words.is_empty() {
            return Err("the term has no letters or digits".into());
        }
        Ok(TermPattern { words, prefix })
    }

    /// Arabic terms (first word written in Arabic letters) may carry attached clitics.
    fn is_arabic(&self) -> bool {
        self.words[0].chars().any(is_arabic_letter)
    }

    /// Every form the first word may take in text: the word itself and, for Arabic terms, the
    /// word with `[و|ف]?[ب|ل|ك]?` attached, plus `[و|ف]?لل` for terms opening with `ال`. Text words
    /// are compared against these whole forms; nothing is ever stripped from the text word,
    /// so a term that itself begins with a clitic-like letter (`بوتين`, `لبنان`) is safe.
    pub(crate) fn first_word_forms(&self) -> Vec<String> {
        let first = &self.words[0];
        if !self.is_arabic() {
            return vec![first.clone()];
        }
        let mut forms = Vec::with_capacity(CONJUNCTIONS.len() * (PREPOSITIONS.len() + 1));
        for conjunction in CONJUNCTIONS {
            for preposition in PREPOSITIONS {
                forms.push(format!("{conjunction}{preposition}{first}"));
            }
            if let Some(rest) = first.strip_prefix(ARTICLE) {
                forms.push(format!("{conjunction}لل{rest}"));
            }
        }
        forms
    }

    /// Whether the first word alone is matched as a prefix.
    pub(crate) fn first_word_is_prefix(&self) -> bool {
        self.prefix && self.words.len() == 1
    }

    /// Whether the words after the first match `following`, the text words right after the one
    /// that matched the first word. Later words take no clitics.
    pub(crate) fn rest_matches(&self, following: &[&str]) -> bool {
        let rest = &self.words[1..];
        if following.len() < rest.len() {
            return false;
        }
        rest.iter()
            .zip(following)
            .enumerate()
            .all(|(i, (word, text))| {
                if self.prefix && i + 1 == rest.len() {
                    text.starts_with(word.as_str())
                } else {
                    word == text
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_normalized_like_text() {
        let term = TermPattern::parse("  بنيامين  نتنـياهو ").unwrap();
        assert_eq!(term.words, ["بنيامين", "نتنياهو"]);
        assert!(!term.prefix);
        assert_eq!(
            TermPattern::parse("Tel-Aviv").unwrap().words,
            ["tel", "aviv"]
        );
    }

    #[test]
    fn arabic_terms_get_twelve_clitic_forms() {
        let forms = TermPattern::parse("إسرائيل").unwrap().first_word_forms();
        assert_eq!(forms.len(), 12);
        for form in [
            "اسرائيل",
            "واسرائيل",
            "فاسرائيل",
            "باسرائيل",
            "وباسرائيل",
            "فلاسرائيل",
            "وكاسرائيل",
        ] {
            assert!(forms.iter().any(|f| f == form), "{form} missing");
        }
    }

    #[test]
    fn article_terms_also_get_the_lam_contraction() {
        let forms = TermPattern::parse("الكرملين").unwrap().first_word_forms();
        assert_eq!(forms.len(), 15);
        for form in [
            "للكرملين",
            "وللكرملين",
            "فللكرملين",
            "بالكرملين",
            "والكرملين",
        ] {
            assert!(forms.iter().any(|f| f == form), "{form} missing");
        }
    }

    #[test]
    fn latin_terms_take_no_clitics() {
        assert_eq!(
            TermPattern::parse("Putin").unwrap().first_word_forms(),
            ["putin"]
        );
    }

    #[test]
    fn star_makes_a_prefix_only_at_the_end() {
        let term = TermPattern::parse("Putin*").unwrap();
        assert!(term.prefix && term.first_word_is_prefix());
        assert!(TermPattern::parse("Pu*tin").is_err());
        assert!(TermPattern::parse("Putin *").is_err());
        assert!(TermPattern::parse("*").is_err());
        assert!(TermPattern::parse(" -- ").is_err());
    }
}
