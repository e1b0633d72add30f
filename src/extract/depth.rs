//! A guard against pathologically deep HTML before it reaches the parser.
//!
//! html5ever's tree builder scans the stack of open elements for many start tags, so a page
//! nested 100,000 levels deep costs quadratic time (minutes of CPU for half a megabyte). Browsers
//! cap nesting too (Chromium's parser stops at 512). Here tags that would open an element deeper
//! than [`MAX_DEPTH`] — and their matching end tags — are dropped before parsing; their text stays.
//! Elements whose end tag is optional or absent (void elements, `p`, `li`, `td`, …) are not
//! counted, so ordinary sloppy HTML never drifts towards the limit, and a page within the limit
//! is passed through untouched. Links, headings and `<time>` are never dropped.

use std::borrow::Cow;

/// Deepest nesting kept, as in Chromium's HTML parser.
pub const MAX_DEPTH: usize = 512;

/// Elements that never take an end tag, or whose end tag may be left out.
const UNCOUNTED: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
    "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html", "head",
    "body",
    // What extraction reads is kept at any depth: links, headings, dates. Parsers close these
    // before nesting another of the same, so they cannot build depth by themselves.
    "a", "h1", "h2", "h3", "h4", "h5", "h6", "time", "title",
];

/// `html` with tags nested deeper than [`MAX_DEPTH`] removed (borrowed when nothing is removed).
pub fn flatten_deep(html: &str) -> Cow<'_, str> {
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut out: Option<String> = None;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + offset;
        let Some(len) = memchr::memchr(b'>', &bytes[start..]) else {
            break;
        };
        let end = start + len + 1;
        let tag = &html[start + 1..end - 1];
        i = end;
        let (closing, rest) = match tag.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty()
            || !name.as_bytes()[0].is_ascii_alphabetic()
            || tag.ends_with('/')
            || UNCOUNTED.iter().any(|u| u.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let drop = if closing {
            let too_deep = depth > MAX_DEPTH;
            depth = depth.saturating_sub(1);
            too_deep
        } else {
            depth += 1;
            depth > MAX_DEPTH
        };
        if drop {
            let buf = out.get_or_insert_with(|| String::with_capacity(html.len()));
            buf.push_str(&html[copied..start]);
            copied = end;
        }
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut buf) => {
            buf.push_str(&html[copied..]);
            Cow::Owned(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_pass_through_untouched() {
        let page =
            "<html><body><div><p>one<p>two<ul><li>a<li>b</ul><br><img src=x></div></body></html>";
        assert!(matches!(flatten_deep(page), Cow::Borrowed(_)));
        let many_paragraphs = format!("<div>{}</div>", "<p>text".repeat(5_000));
        assert!(matches!(flatten_deep(&many_paragraphs), Cow::Borrowed(_)));
    }

    #[test]
    fn nesting_beyond_the_limit_is_flattened_and_text_kept() {
        let deep = format!(
            "<body>{}<a href=\"/post/1/x\">link</a> words{}</body>",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let flat = flatten_deep(&deep);
        assert_eq!(flat.matches("<div>").count(), MAX_DEPTH);
        assert_eq!(flat.matches("</div>").count(), MAX_DEPTH);
        assert!(flat.contains(">link</a> words"));
        let doc = scraper::Html::parse_document(&flat);
        let a = scraper::Selector::parse("a").expect("selector");
        assert_eq!(doc.select(&a).count(), 1);
    }
}
