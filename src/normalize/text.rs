//! Arabic-aware text normalization and word splitting (contract: `corpus/matching/README.md` §1–§2).
//!
//! One code path serves article text, watchlist terms and dedupe hashing, so a term and the words it
//! should match are always folded the same way. Words keep the character offsets of the *original*
//! text, because hits are highlighted in the stored (un-normalized) article.
//!
//! Normalization is done piecewise rather than on the whole string so every output character can be
//! traced back to the input characters it came from. NFKC is only context-dependent inside a run that
//! starts at a "boundary" character (canonical combining class 0 and NFKC quick-check Yes, which
//! never composes with what precedes it), so normalizing run by run gives exactly the whole-string
//! result.

use std::ops::Range;

use sha2::{Digest, Sha256};
use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Normalizes `s` as the matching contract §1 prescribes, in its order: NFKC; drop invisible and
/// bidi marks; drop tatweel and Arabic diacritics; fold alef/yeh/teh-marbuta/keheh variants; map
/// Arabic-Indic and Persian digits to ASCII; lower-case.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for_each_piece(s, |piece, _| {
        if let Piece::Char(c) = piece {
            out.push(c);
        }
    });
    out
}

/// A word of normalized text, with where it stands in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The normalized word.
    pub norm: String,
    /// Character offset of the word's first character in the original text.
    pub start: usize,
    /// Character offset just past the word in the original text (exclusive).
    pub end: usize,
}

/// Splits `s` into normalized words (contract §2): maximal runs of letters, marks and digits after
/// normalization; everything else, apostrophes and hyphens included, separates words.
pub fn tokenize(s: &str) -> Vec<Token> {
    tokenize_with_bytes(s)
        .into_iter()
        .map(|(token, _)| token)
        .collect()
}

/// [`tokenize`], plus each word's byte range in `s`, so callers can slice the surface text of a
/// hit without walking the string again.
pub(crate) fn tokenize_with_bytes(s: &str) -> Vec<(Token, Range<usize>)> {
    let mut words = Vec::new();
    let mut current: Option<(String, Span)> = None;
    for_each_piece(s, |piece, span| match piece {
        Piece::Char(c) if is_word_char(c) => match &mut current {
            Some((norm, word)) => {
                norm.push(c);
                word.extend_to(&span);
            }
            None => current = Some((c.to_string(), span)),
        },
        Piece::Char(_) => {
            if let Some((norm, word)) = current.take() {
                words.push(word.into_token(norm));
            }
        }
        // A dropped diacritic or tatweel belongs to the letter before it; keeping it inside the
        // word's span means a highlight never cuts a mark off its letter.
        Piece::Dropped => {
            if let Some((_, word)) = &mut current {
                word.extend_to(&span);
            }
        }
    });
    if let Some((norm, word)) = current {
        words.push(word.into_token(norm));
    }
    words
}

/// The words of one text as the matcher scans them: every normalized word in one shared buffer
/// (no allocation per word), with where each stands in the original. Reusable across texts.
#[derive(Debug, Default)]
pub(crate) struct Words {
    buf: String,
    words: Vec<Word>,
}

#[derive(Debug, Clone)]
pub(crate) struct Word {
    norm: Range<usize>,
    pub(crate) chars: Range<usize>,
    pub(crate) bytes: Range<usize>,
}

impl Words {
    /// Replaces the contents with the words of `s`, split exactly as [`tokenize`] splits them.
    ///
    /// Most of a text is ASCII and basic Arabic letters, which normalize one character at a
    /// time to one character (case and letter folds only); stretches of them are read directly.
    /// Whatever else there is (marks, presentation forms, other scripts) goes through the whole
    /// normalization, in segments that start and end at NFKC boundaries, so the result is
    /// exactly that of normalizing the whole text.
    pub(crate) fn fill(&mut self, s: &str) {
        self.buf.clear();
        self.words.clear();
        let (buf, words) = (&mut self.buf, &mut self.words);
        // The word being built, if the last piece was part of one.
        let mut open: Option<Word> = None;
        // Where the unread rest of `s` starts, in bytes and in characters.
        let (mut byte, mut char_idx) = (0, 0);
        while byte < s.len() {
            // The simple stretch: each character followed by another simple one (or the end),
            // so no mark or composition attaches to it.
            let bytes = s.as_bytes();
            let mut len = simple_len(bytes, byte);
            while let Some(l) = len {
                let end = byte + l;
                let next = simple_len(bytes, end);
                if next.is_none() && end < bytes.len() {
                    break;
                }
                let folded = match l {
                    1 => bytes[byte]
                        .is_ascii_alphanumeric()
                        .then(|| char::from(bytes[byte].to_ascii_lowercase())),
                    _ => s[byte..end].chars().next().map(fold_letter),
                };
                match folded {
                    Some(f) => {
                        let word = open.get_or_insert(Word {
                            norm: buf.len()..buf.len(),
                            chars: char_idx..char_idx,
                            bytes: byte..byte,
                        });
                        buf.push(f);
                        word.norm.end = buf.len();
                        word.chars.end = char_idx + 1;
                        word.bytes.end = end;
                    }
                    None => words.extend(open.take()),
                }
                char_idx += 1;
                byte = end;
                len = next;
            }
            if byte == s.len() {
                break;
            }
            // The rest up to where a simple stretch starts again, normalized in full.
            let mut chars = s[byte..].char_indices().peekable();
            let mut count = 0;
            let mut end = s.len();
            while let Some((offset, c)) = chars.next() {
                if count > 0 && is_simple(c) && chars.peek().is_none_or(|&(_, n)| is_simple(n)) {
                    end = byte + offset;
                    break;
                }
                count += 1;
            }
            let (base_byte, base_char) = (byte, char_idx);
            for_each_piece(&s[byte..end], |piece, span| {
                let chars = base_char + span.chars.0..base_char + span.chars.1;
                let bytes = base_byte + span.bytes.0..base_byte + span.bytes.1;
                match piece {
                    Piece::Char(c) if is_word_char(c) => {
                        let word = open.get_or_insert(Word {
                            norm: buf.len()..buf.len(),
                            chars: chars.clone(),
                            bytes: bytes.clone(),
                        });
                        word.chars.end = chars.end;
                        word.bytes.end = bytes.end;
                        buf.push(c);
                        word.norm.end = buf.len();
                    }
                    Piece::Char(_) => words.extend(open.take()),
                    Piece::Dropped => {
                        if let Some(word) = &mut open {
                            word.chars.end = chars.end;
                            word.bytes.end = bytes.end;
                        }
                    }
                }
            });
            byte = end;
            char_idx += count;
        }
        words.extend(open);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    pub(crate) fn get(&self, i: usize) -> &Word {
        &self.words[i]
    }

    /// The normalized words, in order.
    pub(crate) fn norms(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(|w| &self.buf[w.norm.clone()])
    }
}

/// Hex SHA-256 of the normalized words of `title` and `body`: the same story text gives the same
/// hash whatever its diacritics, tatweel, presentation forms, invisible marks, punctuation or
/// whitespace, so exact duplicates re-published with cosmetic edits collapse into one.
pub fn content_hash(title: &str, body: &str) -> String {
    content_hash_with(title, body, |_| {})
}

/// [`content_hash`], calling `on_word` with each normalized word (title first) as it is hashed:
/// what else is computed from the words (the story signature) needs no second pass over them.
pub fn content_hash_with(title: &str, body: &str, mut on_word: impl FnMut(&str)) -> String {
    content_hash_of_words(title, body, |_, words| words.norms().for_each(&mut on_word))
}

/// [`content_hash`], calling `on_part` with the words of the title (`false`) and then of the
/// body (`true`), for whatever else reads them (the story signature, the matcher).
pub(crate) fn content_hash_of_words(
    title: &str,
    body: &str,
    mut on_part: impl FnMut(bool, &Words),
) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in [title, body].into_iter().enumerate() {
        if i > 0 {
            // Record separator: moving a word between title and body changes the hash.
            hasher.update([0x1e]);
        }
        with_words(part, |words| {
            for norm in words.norms() {
                hasher.update(norm.as_bytes());
                // Unit separator: never part of a word, so word boundaries are unambiguous.
                hasher.update([0x1f]);
            }
            on_part(i > 0, words);
        });
    }
    hex::encode(hasher.finalize())
}

/// Calls `f` with the words of `s` ([`Words::fill`]) in this thread's reusable buffer, so hashing
/// or matching an article's words allocates nothing per word or per article.
pub(crate) fn with_words<T>(s: &str, f: impl FnOnce(&Words) -> T) -> T {
    thread_local! {
        static WORDS: std::cell::RefCell<Words> = std::cell::RefCell::new(Words::default());
    }
    WORDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut words) => {
            words.fill(s);
            let out = f(&words);
            // A hostile megabyte body must not stay allocated in every worker thread.
            if words.buf.capacity() > 1 << 16 || words.words.capacity() > 1 << 12 {
                *words = Words::default();
            }
            out
        }
        // Called from inside `f` (not done today): a buffer of its own.
        Err(_) => {
            let mut words = Words::default();
            words.fill(s);
            f(&words)
        }
    })
}

/// Whether `c` (already normalized) is part of a word: general category L*, M* or N*.
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    if is_basic_arabic_letter(c) {
        return true;
    }
    use GeneralCategory as G;
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// Whether `c` (already normalized) is an Arabic-script letter; decides which terms take clitics.
pub(crate) fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}')
        && c.is_alphabetic()
}

/// What one input character (or NFKC run) turned into.
enum Piece {
    /// A normalized output character.
    Char(char),
    /// A tatweel or diacritic that normalization removed (step 3).
    Dropped,
}

/// Where a piece came from in the original text.
#[derive(Clone, Copy)]
struct Span {
    chars: (usize, usize),
    bytes: (usize, usize),
}

impl Span {
    fn extend_to(&mut self, later: &Span) {
        self.chars.1 = later.chars.1;
        self.bytes.1 = later.bytes.1;
    }

    fn into_token(self, norm: String) -> (Token, Range<usize>) {
        let token = Token {
            norm,
            start: self.chars.0,
            end: self.chars.1,
        };
        (token, self.bytes.0..self.bytes.1)
    }
}

/// Runs the whole normalization over `s`, calling `emit` for every output piece with the span of
/// original text it came from. Invisible marks (step 2) emit nothing at all.
fn for_each_piece(s: &str, mut emit: impl FnMut(Piece, Span)) {
    // The current NFKC run: (byte offset, char) of each input character in it.
    let mut run: Vec<(usize, char)> = Vec::new();
    let mut run_first_char = 0;
    // Only the text's first run can start with a non-boundary character.
    let mut run_at_boundary = true;
    let mut chars = s.char_indices().enumerate().peekable();
    // Whether the next character is a boundary, when the fast path already looked.
    let mut next_is_boundary: Option<bool> = None;
    while let Some((char_idx, (byte_idx, c))) = chars.next() {
        let boundary = next_is_boundary
            .take()
            .unwrap_or_else(|| is_nfkc_boundary(c));
        if boundary && !run.is_empty() {
            flush_run(&run, run_at_boundary, run_first_char, byte_idx, &mut emit);
            run.clear();
        }
        // Fast path for the bulk of the text (ASCII and basic Arabic letters): a boundary
        // character followed by another boundary is a run of its own, normalized alone, as
        // `flush_run` would do for a one-character run.
        if boundary && (c.is_ascii() || is_basic_arabic_letter(c)) {
            let next = chars.peek().map(|&(_, (b, n))| (b, n));
            next_is_boundary = next.map(|(_, n)| is_nfkc_boundary(n));
            if next_is_boundary != Some(false) {
                let end = next.map_or(s.len(), |(b, _)| b);
                let span = Span {
                    chars: (char_idx, char_idx + 1),
                    bytes: (byte_idx, end),
                };
                post_nfkc(c, span, &mut emit);
                continue;
            }
        }
        if run.is_empty() {
            run_first_char = char_idx;
            run_at_boundary = boundary;
        }
        run.push((byte_idx, c));
    }
    if !run.is_empty() {
        flush_run(&run, run_at_boundary, run_first_char, s.len(), &mut emit);
    }
}

/// ASCII and basic Arabic letters: characters NFKC leaves alone when what follows is one of
/// them too, and that the later steps only lower-case or fold.
fn is_simple(c: char) -> bool {
    c.is_ascii() || is_basic_arabic_letter(c)
}

/// The UTF-8 length of the character at byte `at` of `bytes` if it [`is_simple`]; `None` for any
/// other character and past the end. Reads the bytes without decoding: ASCII is one byte, and
/// U+0621–U+063F and U+0641–U+064A are D8 A1–BF and D9 81–8A.
fn simple_len(bytes: &[u8], at: usize) -> Option<usize> {
    match (bytes.get(at), bytes.get(at + 1)) {
        (Some(b), _) if b.is_ascii() => Some(1),
        (Some(0xD8), Some(0xA1..=0xBF)) | (Some(0xD9), Some(0x81..=0x8A)) => Some(2),
        _ => None,
    }
}

/// Arabic letters U+0621–U+064A (tatweel aside): the bulk of Arabic text, and all of them
/// unchanged by NFKC, never combining backwards, letters (category Lo) and caseless.
fn is_basic_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{063F}' | '\u{0641}'..='\u{064A}')
}

/// A character before which NFKC never looks back: it does not combine with anything before it
/// and does not reorder with preceding marks.
fn is_nfkc_boundary(c: char) -> bool {
    c.is_ascii()
        || is_basic_arabic_letter(c)
        || (canonical_combining_class(c) == 0
            && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes)
}

/// Normalizes one NFKC run. Output characters are attributed to the single input character they
/// came from when the run normalizes character by character (the usual case, e.g. presentation
/// forms); otherwise (a real composition such as alef + madda) to the whole run.
fn flush_run(
    run: &[(usize, char)],
    at_boundary: bool,
    first_char: usize,
    end_byte: usize,
    emit: &mut impl FnMut(Piece, Span),
) {
    let span_of = |i: usize| {
        let end = run.get(i + 1).map_or(end_byte, |&(b, _)| b);
        Span {
            chars: (first_char + i, first_char + i + 1),
            bytes: (run[i].0, end),
        }
    };
    if let [(_, c)] = run
        && at_boundary
    {
        post_nfkc(*c, span_of(0), emit);
        return;
    }
    let whole: String = run.iter().map(|&(_, c)| c).nfkc().collect();
    let per_char: Vec<String> = run
        .iter()
        .map(|&(_, c)| std::iter::once(c).nfkc().collect())
        .collect();
    if per_char.concat() == whole {
        for (i, part) in per_char.iter().enumerate() {
            let span = span_of(i);
            part.chars().for_each(|c| post_nfkc(c, span, emit));
        }
    } else {
        let span = Span {
            chars: (first_char, first_char + run.len()),
            bytes: (run[0].0, end_byte),
        };
        whole.chars().for_each(|c| post_nfkc(c, span, emit));
    }
}

/// Steps 2–6 of the contract for one NFKC output character.
fn post_nfkc(c: char, span: Span, emit: &mut impl FnMut(Piece, Span)) {
    if c.is_ascii() {
        emit(Piece::Char(c.to_ascii_lowercase()), span);
        return;
    }
    if is_basic_arabic_letter(c) {
        emit(Piece::Char(fold_letter(c)), span);
        return;
    }
    if is_invisible(c) {
        return;
    }
    if is_tatweel_or_diacritic(c) {
        emit(Piece::Dropped, span);
        return;
    }
    let folded = fold_letter(c);
    for lower in folded.to_lowercase() {
        emit(Piece::Char(lower), span);
    }
}

/// Step 2: zero-width, bidi and other invisible format marks.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
            | '\u{00AD}'
    )
}

/// Step 3: tatweel, harakat, tanween, shadda, sukun, hamza marks, superscript alef, Quranic marks.
fn is_tatweel_or_diacritic(c: char) -> bool {
    matches!(
        c,
        '\u{0640}'
            | '\u{0610}'..='\u{061A}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{06D6}'..='\u{06ED}'
    )
}

/// Steps 4 and 5: letter variants and non-ASCII digits.
fn fold_letter(c: char) -> char {
    match c {
        'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
        'ى' | 'ی' | 'ے' => 'ي',
        'ة' | 'ۀ' | 'ہ' | 'ە' => 'ه',
        'ک' => 'ك',
        '\u{0660}'..='\u{0669}' => digit(c as u32 - 0x0660),
        '\u{06F0}'..='\u{06F9}' => digit(c as u32 - 0x06F0),
        _ => c,
    }
}

fn digit(value: u32) -> char {
    char::from_digit(value, 10).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norms(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.norm).collect()
    }

    /// The surface text of each word, cut from the original by its char offsets.
    fn surfaces(s: &str) -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        tokenize(s)
            .iter()
            .map(|t| chars[t.start..t.end].iter().collect())
            .collect()
    }

    #[test]
    fn contract_table_examples() {
        assert_eq!(normalize("الإسرائيلية"), "الاسرائيليه");
        assert_eq!(normalize("روسياً"), "روسيا");
        assert_eq!(normalize("عوناً"), "عونا");
        assert_eq!(normalize("لـروسيا"), "لروسيا");
        assert_eq!(normalize("Kre\u{200B}mlin"), "kremlin");
    }

    #[test]
    fn presentation_forms_and_ligatures_fold() {
        assert_eq!(
            normalize("\u{FE87}\u{FEB3}\u{FEAE}\u{FE8D}\u{FE8B}\u{FEF4}\u{FEDE}"),
            "اسرائيل"
        );
        assert_eq!(normalize("\u{FEFB}"), "لا");
        assert_eq!(normalize("\u{FDF2}"), "الله");
        assert_eq!(normalize("Ｒｕｓｓｉａ"), "russia");
        assert_eq!(normalize("a\u{00A0}b"), "a b");
    }

    #[test]
    fn bidi_and_invisible_marks_vanish() {
        for mark in [
            '\u{200F}', '\u{200E}', '\u{202B}', '\u{2067}', '\u{061C}', '\u{FEFF}', '\u{00AD}',
        ] {
            assert_eq!(
                normalize(&format!("إسرا{mark}ئيل")),
                "اسرائيل",
                "mark U+{:04X}",
                mark as u32
            );
        }
    }

    #[test]
    fn letters_and_digits_fold() {
        assert_eq!(normalize("أإآٱ"), "اااا");
        assert_eq!(normalize("ىیے"), "ييي");
        assert_eq!(normalize("ةۀہە"), "هههه");
        assert_eq!(normalize("ک"), "ك");
        assert_eq!(normalize("٠١٢٣٤٥٦٧٨٩ ۰۱۲۳۴۵۶۷۸۹"), "0123456789 0123456789");
        assert_eq!(normalize("نتنـــياهو"), "نتنياهو");
        assert_eq!(normalize("رُوسْيَا"), "روسيا");
    }

    #[test]
    fn piecewise_nfkc_equals_whole_string_nfkc() {
        // Runs that compose, reorder or expand across characters: decomposed Hangul, marks out of
        // canonical order, shadda + fatha in both orders, alef + madda, Tibetan vowel signs,
        // presentation forms next to marks.
        let samples = [
            "\u{1100}\u{1161}\u{11A8} 한국",
            "a\u{0301}\u{0316}b e\u{0316}\u{0301}",
            "بَّ بَّ \u{0651}\u{064E}",
            "\u{0627}\u{0653}\u{0654} \u{FE8D}\u{0653}",
            "\u{0F40}\u{0F73}\u{0F71}\u{0F72}",
            "\u{FDF2}\u{064E} \u{FEFB}\u{0651} ﬁ ½ ㎏",
            "\u{0301}leading mark",
        ];
        for sample in samples {
            let mut whole = String::new();
            for c in sample.nfkc() {
                let span = Span {
                    chars: (0, 0),
                    bytes: (0, 0),
                };
                post_nfkc(c, span, &mut |piece, _| {
                    if let Piece::Char(c) = piece {
                        whole.push(c);
                    }
                });
            }
            assert_eq!(normalize(sample), whole, "{sample:?}");
        }
    }

    #[test]
    fn decomposed_hamza_composes_before_folding() {
        // alef + hamza above composes to أ under NFKC, then folds to ا like a precomposed أ.
        assert_eq!(normalize("\u{0627}\u{0654}سرائيل"), normalize("أسرائيل"));
        assert_eq!(normalize("\u{0627}\u{0653}"), "ا");
    }

    #[test]
    fn punctuation_apostrophes_and_hyphens_split_words() {
        assert_eq!(
            norms("Russia's Russia’s Russia‘s"),
            ["russia", "s", "russia", "s", "russia", "s"]
        );
        assert_eq!(
            norms("Russia-Israel, Israel/Lebanon Tel–Aviv"),
            ["russia", "israel", "israel", "lebanon", "tel", "aviv"]
        );
        assert_eq!(norms("Israeli\u{2011}Lebanese"), ["israeli", "lebanese"]);
        assert_eq!(norms("#روسيا٢٠٢٤"), ["روسيا2024"]);
        assert_eq!(norms("لـ\"حزب الله\""), ["ل", "حزب", "الله"]);
    }

    #[test]
    fn offsets_point_into_the_original_text() {
        let text = "قال نتنـــياهو: \u{200F}Kre\u{200B}mlin’s رُوسْيَا";
        assert_eq!(
            surfaces(text),
            ["قال", "نتنـــياهو", "Kre\u{200B}mlin", "s", "رُوسْيَا"]
        );
        assert_eq!(norms(text), ["قال", "نتنياهو", "kremlin", "s", "روسيا"]);
        // Offsets are in chars, not bytes.
        let tokens = tokenize("ab روسيا");
        assert_eq!((tokens[1].start, tokens[1].end), (3, 8));
    }

    #[test]
    fn offsets_survive_presentation_forms() {
        let text = "في \u{FE87}\u{FEB3}\u{FEAE}\u{FE8D}\u{FE8B}\u{FEF4}\u{FEDE} اليوم";
        let tokens = tokenize(text);
        assert_eq!(tokens[1].norm, "اسرائيل");
        assert_eq!((tokens[1].start, tokens[1].end), (3, 10));
        assert_eq!(surfaces(text)[2], "اليوم");
    }

    #[test]
    fn byte_ranges_match_char_offsets() {
        let text = "وصل بوتین إلى \u{FDF2} Ｒｕｓｓｉａ";
        for (token, bytes) in tokenize_with_bytes(text) {
            let by_chars: String = text
                .chars()
                .skip(token.start)
                .take(token.end - token.start)
                .collect();
            assert_eq!(&text[bytes], by_chars);
        }
    }

    #[test]
    fn shared_buffer_words_equal_tokens_including_marks_and_compositions() {
        // The fast path (a lone ASCII or Arabic letter) must hand over to the NFKC runs exactly
        // where a mark, composition or presentation form follows.
        let samples = [
            "قال نتنـــياهو: \u{200F}Kre\u{200B}mlin’s رُوسْيَا",
            "\u{0627}\u{0654}سرائيل و\u{0627}\u{0653} ﻹسرائيل \u{FDF2}\u{064E}",
            "a\u{0301}\u{0316}b Ｒｕｓｓｉａ ½ ﬁne Putin's x",
            "\u{0301}leading mark, trailing ب\u{064E}",
            "",
            "   ",
        ];
        let mut words = Words::default();
        for sample in samples {
            words.fill(sample);
            let expected = tokenize_with_bytes(sample);
            assert_eq!(words.len(), expected.len(), "{sample:?}");
            for (i, (norm, (token, bytes))) in words.norms().zip(&expected).enumerate() {
                assert_eq!(norm, token.norm, "{sample:?}");
                let w = words.get(i);
                assert_eq!((w.chars.start, w.chars.end), (token.start, token.end));
                assert_eq!(&w.bytes, bytes, "{sample:?}");
            }
        }
    }

    #[test]
    fn words_equal_tokens_on_random_mixtures_of_simple_and_other_characters() {
        // Simple stretches and fully normalized segments alternate at every possible place:
        // ASCII and basic Arabic letters next to marks, compositions, presentation forms,
        // invisible marks, tatweel, other scripts and separators.
        let alphabet: Vec<char> =
            "aZ9 ،.'-بتأإآىةاله\u{0640}\u{064E}\u{0651}\u{0653}\u{0654}\u{0301}\u{0316}\
                                   \u{200F}\u{FEFF}\u{FEFB}\u{FDF2}ﬁＲ½éÉΣς٣۴ک\n"
                .chars()
                .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut words = Words::default();
        for _ in 0..5_000 {
            let len = next(12);
            let sample: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            words.fill(&sample);
            let expected = tokenize_with_bytes(&sample);
            let got: Vec<(String, Range<usize>, Range<usize>)> = (0..words.len())
                .map(|i| {
                    let w = words.get(i);
                    (
                        words.buf[w.norm.clone()].to_string(),
                        w.chars.clone(),
                        w.bytes.clone(),
                    )
                })
                .collect();
            let want: Vec<(String, Range<usize>, Range<usize>)> = expected
                .into_iter()
                .map(|(t, bytes)| (t.norm, t.start..t.end, bytes))
                .collect();
            assert_eq!(got, want, "{sample:?}");
        }
    }

    #[test]
    fn simple_characters_are_recognised_from_their_bytes() {
        for c in ('\0'..='\u{7F}').chain('\u{0600}'..='\u{06FF}') {
            let text = c.to_string();
            let expected = is_simple(c).then_some(c.len_utf8());
            assert_eq!(simple_len(text.as_bytes(), 0), expected, "{c:?}");
        }
    }

    #[test]
    fn content_hash_ignores_cosmetic_differences() {
        let a = content_hash("بوتين يلتقي نتنياهو", "قال الكرملين: إن الاجتماع «مهم».");
        let b = content_hash("بوتين  يلتقي نتنـياهو", "قال  الكرملينُ إن الاجتماع مهمّ");
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            content_hash("بوتين يلتقي", "نتنياهو قال الكرملين إن الاجتماع مهم")
        );
        assert_ne!(
            a,
            content_hash("بوتين يلتقي نتنياهو", "قال الكرملين إن الاجتماع")
        );
    }
}
