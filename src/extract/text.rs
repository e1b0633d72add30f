//! HTML to plain text.
//!
//! Watchlists match words, and digests show paragraphs, so text keeps paragraph boundaries
//! (block elements become "\n\n") but nothing else of the markup: entities decoded,
//! runs of whitespace (including no-break spaces) collapsed to one space.

use scraper::{ElementRef, Html, Node};

/// Plain text of an HTML fragment, paragraphs joined with "\n\n".
pub fn html_to_text(fragment: &str) -> String {
    // Most feed descriptions are plain text: without a tag, an entity or a NUL (which the
    // parser drops) parsing would only collapse the whitespace, so do just that.
    if !fragment.contains(['<', '&', '\0']) {
        let mut out = Paragraphs::default();
        out.push_text(fragment);
        return out.into_text();
    }
    parsed_text(fragment)
}

/// [`html_to_text`] through the HTML parser, whatever the fragment holds.
fn parsed_text(fragment: &str) -> String {
    let html = Html::parse_fragment(&super::depth::flatten_deep(fragment));
    let mut out = Paragraphs::default();
    collect(html.root_element(), &mut out);
    out.into_text()
}

/// Plain text of one element of a parsed document, paragraphs joined with "\n\n".
pub fn element_text(element: ElementRef<'_>) -> String {
    let mut out = Paragraphs::default();
    collect(element, &mut out);
    out.into_text()
}

/// Elements whose content is never reader-visible text.
pub(crate) fn is_invisible(tag: &str) -> bool {
    matches!(
        tag,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "head"
            | "iframe"
            | "object"
            | "embed"
            | "svg"
            | "math"
            | "canvas"
            | "select"
            | "button"
            | "input"
            | "textarea"
    )
}

/// Elements that start a new paragraph in rendered text.
pub(crate) fn is_block(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "div"
            | "br"
            | "hr"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "pre"
            | "table"
            | "tr"
            | "td"
            | "th"
            | "thead"
            | "tbody"
            | "section"
            | "article"
            | "aside"
            | "header"
            | "footer"
            | "nav"
            | "main"
            | "figure"
            | "figcaption"
            | "address"
            | "form"
            | "fieldset"
            | "details"
            | "summary"
            | "body"
            | "html"
    )
}

/// Accumulates text into paragraphs, collapsing whitespace as it goes.
#[derive(Default)]
pub(crate) struct Paragraphs {
    done: Vec<String>,
    current: String,
    /// Whitespace was seen since the last word; written only if another word follows.
    pending_space: bool,
}

impl Paragraphs {
    pub(crate) fn push_text(&mut self, text: &str) {
        let mut words = text.split_whitespace().peekable();
        if words.peek().is_none() {
            self.pending_space |= !text.is_empty();
            return;
        }
        self.pending_space |= text.starts_with(char::is_whitespace);
        for word in words {
            if self.pending_space && !self.current.is_empty() {
                self.current.push(' ');
            }
            self.current.push_str(word);
            self.pending_space = true;
        }
        self.pending_space = text.ends_with(char::is_whitespace);
    }

    /// Ends the current paragraph, if it has any text.
    pub(crate) fn paragraph_break(&mut self) {
        let text = self.current.trim();
        if text.len() == self.current.len() {
            // Already trimmed (the usual case): moved, not copied.
            if !text.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
            }
        } else if !text.is_empty() {
            self.done.push(text.to_string());
        }
        self.current.clear();
        self.pending_space = false;
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        self.paragraph_break();
        self.done
    }

    /// The paragraphs joined with "\n\n"; a single one is returned as it is, not copied.
    pub(crate) fn into_text(self) -> String {
        let mut done = self.finish();
        if done.len() == 1 {
            return done.pop().unwrap_or_default();
        }
        done.join("\n\n")
    }
}

fn collect(element: ElementRef<'_>, out: &mut Paragraphs) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => out.push_text(text),
            Node::Element(el) => {
                let tag = el.name();
                if is_invisible(tag) {
                    continue;
                }
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                if is_block(tag) {
                    out.paragraph_break();
                    collect(child, out);
                    out.paragraph_break();
                } else {
                    collect(child, out);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_markup_reads_as_the_parser_reads_it() {
        for text in [
            "",
            "   ",
            "plain words",
            "  leading and trailing\n",
            "lines\r\nand\rreturns\n\n\nand\tblank lines",
            "no-break\u{a0}spaces\u{2003}and\u{3000}others",
            "قال الكرملين > إن الاجتماع \"مهم\" ' ;",
            "\u{200f}rtl mark\u{feff} kept",
        ] {
            assert_eq!(html_to_text(text), parsed_text(text), "{text:?}");
        }
        // Anything with markup, an entity or a NUL still goes through the parser.
        assert_eq!(html_to_text("a &amp; b"), "a & b");
        assert_eq!(html_to_text("a<p>b"), "a\n\nb");
        assert_eq!(html_to_text("a\0b"), "ab");
    }

    #[test]
    fn blocks_become_paragraphs_and_whitespace_collapses() {
        let html =
            "<div><p>الفقرة   الأولى\n مع <b>نص</b>&nbsp;عريض</p><p>Second &amp; last</p></div>";
        assert_eq!(
            html_to_text(html),
            "الفقرة الأولى مع نص عريض\n\nSecond & last"
        );
    }

    #[test]
    fn line_breaks_lists_and_headings_split_paragraphs() {
        let html = "<h2>عنوان</h2>سطر أول<br>سطر ثان<ul><li>one</li><li>two</li></ul>";
        assert_eq!(
            html_to_text(html),
            "عنوان\n\nسطر أول\n\nسطر ثان\n\none\n\ntwo"
        );
    }

    #[test]
    fn scripts_styles_and_comments_are_dropped() {
        let html = "<p>keep<script>var x = 1;</script><style>p{}</style><!-- note --> this</p>";
        assert_eq!(html_to_text(html), "keep this");
    }

    #[test]
    fn inline_elements_do_not_add_spaces() {
        assert_eq!(html_to_text("<span>ال</span><span>قدس</span>"), "القدس");
        assert_eq!(html_to_text("a <i>b</i> c"), "a b c");
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(html_to_text("  Russia and Israel  "), "Russia and Israel");
        assert_eq!(html_to_text(""), "");
    }
}
