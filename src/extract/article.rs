//! Article pages: title, main text, publication date, author, language.
//!
//! Per-source selectors win where they find something. Otherwise metadata the publisher
//! meant for machines (Open Graph, JSON-LD, `<time datetime>`) is preferred over guessing
//! from the layout, and the body comes from a Readability-style scorer: text blocks are
//! scored by length and commas, the score flows to their parent and grandparent, link-heavy
//! containers are penalised, and navigation, asides, headers, footers, hidden elements and
//! comment/share/related widgets are dropped before scoring. Forms are not dropped: ASP.NET
//! sites (LBCI among them) wrap the whole page in one.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use scraper::{ElementRef, Html, Node, Selector};
use serde_json::Value;
use url::Url;

use super::date::{DateContext, parse_date, parse_date_in};
use super::feed::primary_language;
use super::text::{Paragraphs, is_block, is_invisible};
use super::{ArticleRules, Extracted, Extractor, PageContext};

/// marsad's own extractor: metadata from Open Graph / JSON-LD / `<time>`, the body from a
/// Readability-style scorer on scraper's DOM.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generic;

impl Extractor for Generic {
    fn name(&self) -> &'static str {
        "marsad"
    }

    fn extract(&self, html: &str, page: &PageContext<'_>) -> Extracted {
        extract_with(html, page)
    }
}

/// Extracts an article page fetched now, with zoneless dates read as UTC; `rules` are the
/// source's selectors, tried before the generic extractor for each field.
pub fn extract_article(html: &str, url: &Url, rules: Option<&ArticleRules>) -> Extracted {
    extract_with(html, &PageContext::new(url).with_rules(rules))
}

fn extract_with(html: &str, ctx: &PageContext<'_>) -> Extracted {
    let (url, rules, dates) = (ctx.url, ctx.rules, ctx.dates());
    let doc = Html::parse_document(&strip_inert(&super::depth::flatten_deep(html)));
    let page = PageMeta::collect(&doc);

    let title = rules
        .and_then(|r| r.title.as_ref())
        .and_then(|sel| doc.select(sel).map(one_line).find(|t| !t.is_empty()))
        .unwrap_or_else(|| generic_title(&doc, &page));
    let body = rules
        .and_then(|r| r.body.as_ref())
        .map(|sel| {
            let mut segments = Vec::new();
            for element in doc.select(sel) {
                segments.extend(Blocks::walk(element, true).segments);
            }
            join_segments(segments.iter().filter(|s| !s.is_link_list()))
        })
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| main_text(&doc, &page));
    let published = rules
        .and_then(|r| r.published.as_ref())
        .and_then(|sel| doc.select(sel).find_map(|e| element_date(e, &dates)))
        .or_else(|| generic_published(&doc, &page, url, &dates));
    let author = generic_author(&doc, &page);
    let language = language(&doc, &page, &title, &body);
    Extracted {
        title,
        body,
        published,
        author,
        language,
    }
}

/// The page without what never becomes text: the contents of `<script>` (JSON-LD excepted),
/// `<style>` and `<svg>` elements and HTML comments. Often half a news page's bytes, which the
/// HTML parser would otherwise tokenize for nothing; a linear scan is much cheaper.
fn strip_inert(html: &str) -> std::borrow::Cow<'_, str> {
    let bytes = html.as_bytes();
    let starts_with_ci = |at: usize, pat: &[u8]| {
        bytes
            .get(at..at + pat.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(pat))
    };
    // Finds `pat` (ASCII, starting with '<' or '-') at or after `from`, ignoring case.
    let find_ci = |from: usize, pat: &[u8]| {
        let mut at = from;
        while let Some(p) = memchr::memchr(pat[0], bytes.get(at..)?) {
            if starts_with_ci(at + p, pat) {
                return Some(at + p);
            }
            at += p + 1;
        }
        None
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'<', &bytes[i..]) {
        let lt = i + offset;
        let (content_start, end_pat): (usize, &[u8]) = if starts_with_ci(lt, b"<!--") {
            (lt, b"-->")
        } else if starts_with_ci(lt, b"<script")
            || starts_with_ci(lt, b"<style")
            || starts_with_ci(lt, b"<svg")
        {
            let Some(gt) = bytes[lt..].iter().position(|&b| b == b'>').map(|p| lt + p) else {
                break;
            };
            let tag = &html[lt..gt];
            if starts_with_ci(lt, b"<script") && tag.to_ascii_lowercase().contains("ld+json") {
                i = gt + 1;
                continue;
            }
            let end: &[u8] = if starts_with_ci(lt, b"<script") {
                b"</script"
            } else if starts_with_ci(lt, b"<style") {
                b"</style"
            } else {
                b"</svg"
            };
            (gt + 1, end)
        } else {
            i = lt + 1;
            continue;
        };
        let Some(end) = find_ci(content_start.max(lt + 4), end_pat) else {
            break;
        };
        out.push_str(&html[copied..content_start]);
        if end_pat == b"-->" {
            copied = end + 3;
        } else {
            copied = end;
        }
        i = copied;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(html);
    }
    out.push_str(&html[copied..]);
    std::borrow::Cow::Owned(out)
}

fn sel(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

/// Element text on one line (titles, dates, names).
fn one_line(element: ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the page says about itself in `<meta>` and JSON-LD.
struct PageMeta {
    /// First `content` for each `name`, `property` or `itemprop`, keys lower-cased.
    meta: HashMap<String, String>,
    /// JSON-LD objects, article types first.
    ld: Vec<Value>,
}

impl PageMeta {
    fn collect(doc: &Html) -> PageMeta {
        let mut meta = HashMap::new();
        if let Some(s) = sel("meta[content]") {
            for element in doc.select(&s) {
                let el = element.value();
                let Some(content) = el.attr("content").map(str::trim).filter(|c| !c.is_empty())
                else {
                    continue;
                };
                for key in ["property", "name", "itemprop", "http-equiv"] {
                    if let Some(k) = el.attr(key) {
                        meta.entry(k.trim().to_ascii_lowercase())
                            .or_insert_with(|| content.to_string());
                    }
                }
            }
        }
        let mut ld = Vec::new();
        if let Some(s) = sel("script[type]") {
            for script in doc.select(&s) {
                let is_ld = script
                    .value()
                    .attr("type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"));
                if is_ld {
                    let text: String = script.text().collect();
                    if let Some(value) = parse_json_lenient(&text) {
                        flatten_ld(value, &mut ld);
                    }
                }
            }
        }
        ld.sort_by_key(|v| !is_article_type(v));
        PageMeta { meta, ld }
    }

    fn meta(&self, keys: &[&str]) -> Option<&str> {
        keys.iter()
            .find_map(|k| self.meta.get(*k).map(String::as_str))
    }

    /// First string value of `key` in the JSON-LD objects (article types first).
    fn ld_str(&self, key: &str) -> Option<String> {
        self.ld.iter().find_map(|v| match &v[key] {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
    }
}

/// Publishers often put raw newlines inside JSON-LD strings, which strict JSON forbids.
fn parse_json_lenient(text: &str) -> Option<Value> {
    let text = text
        .trim()
        .trim_start_matches("<!--")
        .trim_end_matches("-->")
        .trim();
    serde_json::from_str(text).ok().or_else(|| {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        serde_json::from_str(&cleaned).ok()
    })
}

fn flatten_ld(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|v| flatten_ld(v, out)),
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten_ld(graph, out);
            }
            out.push(Value::Object(map));
        }
        _ => {}
    }
}

fn is_article_type(v: &Value) -> bool {
    let article = |t: &str| t.ends_with("Article") || t.ends_with("BlogPosting");
    match &v["@type"] {
        Value::String(t) => article(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(article),
        _ => false,
    }
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn generic_title(doc: &Html, page: &PageMeta) -> String {
    let site = page
        .meta(&["og:site_name", "application-name"])
        .map(str::to_string)
        .or_else(|| {
            page.ld
                .iter()
                .find_map(|v| v["publisher"]["name"].as_str().map(str::to_string))
        });
    let h1 = sel("h1").and_then(|s| doc.select(&s).map(one_line).find(|t| !t.is_empty()));
    let from_meta = page
        .meta(&["og:title", "twitter:title"])
        .map(clean)
        .or_else(|| page.ld_str("headline").map(|h| clean(&h)))
        .map(|t| strip_known_site(&t, site.as_deref()));
    if let Some(title) = from_meta.filter(|t| !t.is_empty()) {
        return title;
    }
    let document_title =
        sel("title").and_then(|s| doc.select(&s).map(one_line).find(|t| !t.is_empty()));
    if let Some(title) = document_title {
        return strip_site_name(&title, site.as_deref(), h1.as_deref());
    }
    h1.unwrap_or_default()
}

const TITLE_SEPARATORS: &[&str] = &[" | ", " - ", " – ", " — ", " :: ", " « ", " » ", " · "];

/// Removes a known site name at either end of a title ("Headline - CNNArabic.com").
fn strip_known_site(title: &str, site: Option<&str>) -> String {
    let Some(site) = site.map(str::trim).filter(|s| !s.is_empty() && *s != title) else {
        return title.to_string();
    };
    for sep in TITLE_SEPARATORS {
        if let Some(rest) = title.strip_suffix(site).and_then(|t| t.strip_suffix(sep)) {
            return rest.trim().to_string();
        }
        if let Some(rest) = title.strip_prefix(site).and_then(|t| t.strip_prefix(sep)) {
            return rest.trim().to_string();
        }
    }
    title.to_string()
}

/// `<title>` usually carries the site name: prefer the `<h1>` when the title contains it,
/// else drop a known site name, else keep the longest separator-delimited part.
fn strip_site_name(title: &str, site: Option<&str>, h1: Option<&str>) -> String {
    if let Some(h1) = h1.filter(|h| h.chars().count() >= 10 && title.contains(*h)) {
        return h1.to_string();
    }
    let stripped = strip_known_site(title, site);
    if stripped != title {
        return stripped;
    }
    for sep in TITLE_SEPARATORS {
        if title.contains(sep) {
            let longest = title
                .split(sep)
                .max_by_key(|p| p.chars().count())
                .unwrap_or(title);
            if longest.split_whitespace().count() >= 3 {
                return longest.trim().to_string();
            }
        }
    }
    title.to_string()
}

/// Class/id words of page furniture, as in Readability's "unlikely candidates".
const UNLIKELY: &[&str] = &[
    "comment",
    "share",
    "social",
    "related",
    "sidebar",
    "footer",
    "menu",
    "navbar",
    "breadcrumb",
    "widget",
    "advert",
    "promo",
    "newsletter",
    "subscribe",
    "popup",
    "modal",
    "cookie",
    "banner",
    "most-read",
    "mostread",
    "trending",
    "taboola",
    "outbrain",
    "tags",
    "author-box",
    "caption",
    "credit",
    "gallery",
    "slideshow",
    "carousel",
    "byline",
    "timestamp",
];
/// Class/id words still dropped in the relaxed second pass: never the article itself.
const NEVER_ARTICLE: &[&str] = &[
    "comment",
    "share",
    "social",
    "related",
    "taboola",
    "outbrain",
    "newsletter",
    "cookie",
    "most-read",
    "mostread",
];
/// Class/id words that rescue an element that also looks unlikely ("share-buttons" is
/// dropped, "main-content-with-sidebar" is not), as Readability's "okMaybeItsACandidate".
const LIKELY: &[&str] = &["article", "body", "column", "content", "main"];

/// Whether a subtree is page furniture rather than article content.
fn is_furniture(element: ElementRef<'_>) -> bool {
    is_furniture_with(element, true)
}

/// `by_name`: also drop elements whose class or id names page furniture. A second pass runs
/// without it when the first finds little text, as Readability does, since some templates
/// put the article inside a "widget" or "sidebar-layout" container.
fn is_furniture_with(element: ElementRef<'_>, by_name: bool) -> bool {
    let el = element.value();
    let tag = el.name();
    if is_invisible(tag)
        // Not <form>: ASP.NET sites wrap the whole page in one.
        || matches!(
            tag,
            "nav" | "aside" | "footer" | "header" | "figure" | "figcaption" | "dialog"
        )
    {
        return true;
    }
    if el.attr("hidden").is_some() || el.attr("aria-hidden") == Some("true") {
        return true;
    }
    if let Some(style) = el.attr("style") {
        let style = style.to_ascii_lowercase().replace(' ', "");
        if style.contains("display:none") || style.contains("visibility:hidden") {
            return true;
        }
    }
    let role = el.attr("role").unwrap_or("");
    if matches!(
        role,
        "navigation" | "complementary" | "contentinfo" | "banner" | "menu"
    ) {
        return true;
    }
    let (class, id) = (el.attr("class").unwrap_or(""), el.id().unwrap_or(""));
    if class.is_empty() && id.is_empty() {
        return false;
    }
    let names = format!("{class} {id}").to_ascii_lowercase();
    if names
        .split_whitespace()
        .any(|c| matches!(c, "d-none" | "hidden" | "hide" | "sr-only"))
    {
        return true;
    }
    // "related-articles", "article-comments": an article word does not rescue a class that
    // names a widget around articles. WordPress's "tag-…"/"category-…" classes on the
    // article itself name its topics, not its role.
    let widget = names.split_whitespace().any(|token| {
        !token.starts_with("tag-")
            && !token.starts_with("category-")
            && NEVER_ARTICLE.iter().any(|w| token.contains(w))
    });
    if widget {
        return true;
    }
    let unlikely: &[&str] = if by_name { UNLIKELY } else { NEVER_ARTICLE };
    unlikely.iter().any(|w| names.contains(w)) && !LIKELY.iter().any(|w| names.contains(w))
}

/// A run of text owned by one block element, between two block boundaries.
struct Segment {
    /// Index of the owning block in [`Blocks::nodes`].
    owner: usize,
    text: String,
    chars: usize,
    link_chars: usize,
}

impl Segment {
    fn link_density(&self) -> f64 {
        self.link_chars as f64 / self.chars.max(1) as f64
    }

    /// Mostly anchor text: a list of related links, tags, a "read more".
    fn is_link_list(&self) -> bool {
        self.link_density() > 0.5
    }
}

struct BlockNode<'a> {
    element: ElementRef<'a>,
    parent: Option<usize>,
}

/// The visible, non-furniture text of a subtree, cut into segments owned by block elements.
struct Blocks<'a> {
    nodes: Vec<BlockNode<'a>>,
    segments: Vec<Segment>,
    current: Paragraphs,
    current_links: usize,
    /// Whether class/id names count as furniture (see [`is_furniture_with`]).
    by_name: bool,
}

impl<'a> Blocks<'a> {
    fn walk(root: ElementRef<'a>, by_name: bool) -> Blocks<'a> {
        let mut blocks = Blocks {
            nodes: vec![BlockNode {
                element: root,
                parent: None,
            }],
            segments: Vec::new(),
            current: Paragraphs::default(),
            current_links: 0,
            by_name,
        };
        blocks.visit(root, 0, false);
        blocks.flush(0);
        blocks
    }

    fn visit(&mut self, element: ElementRef<'a>, owner: usize, in_link: bool) {
        for child in element.children() {
            match child.value() {
                Node::Text(text) => {
                    if in_link {
                        self.current_links += text
                            .split_whitespace()
                            .map(|w| w.chars().count() + 1)
                            .sum::<usize>();
                    }
                    self.current.push_text(text);
                }
                Node::Element(el) => {
                    let Some(child) = ElementRef::wrap(child) else {
                        continue;
                    };
                    if is_furniture_with(child, self.by_name) {
                        continue;
                    }
                    let tag = el.name();
                    if tag == "br" || tag == "hr" {
                        self.flush(owner);
                    } else if is_block(tag) {
                        self.flush(owner);
                        let index = self.nodes.len();
                        self.nodes.push(BlockNode {
                            element: child,
                            parent: Some(owner),
                        });
                        self.visit(child, index, in_link);
                        self.flush(index);
                    } else {
                        self.visit(child, owner, in_link || tag == "a");
                    }
                }
                _ => {}
            }
        }
    }

    fn flush(&mut self, owner: usize) {
        let links = std::mem::take(&mut self.current_links);
        for text in std::mem::take(&mut self.current).finish() {
            let chars = text.chars().count();
            self.segments.push(Segment {
                owner,
                link_chars: links.min(chars),
                chars,
                text,
            });
        }
    }

    /// Ancestors of a block, nearest first, starting with itself.
    fn lineage(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(index), |&i| self.nodes[i].parent)
    }
}

/// Segments shorter than this do not vote for a container (bylines, captions, buttons).
const MIN_SCORING_CHARS: usize = 25;

fn join_segments<'s>(segments: impl Iterator<Item = &'s Segment>) -> String {
    segments
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The main text of the page (Readability-style), or JSON-LD `articleBody` when the layout
/// yields nothing.
fn main_text(doc: &Html, page: &PageMeta) -> String {
    let root = sel("body")
        .and_then(|s| doc.select(&s).next())
        .unwrap_or_else(|| doc.root_element());
    let ld_body = page.ld_str("articleBody").map(|b| clean(&b));
    let ld_chars = ld_body.as_ref().map_or(0, |b| b.chars().count());
    let mut body = scored_text(root, true);
    // Little text: the article may sit in a container named like furniture ("widget Blog").
    let enough = MIN_BODY_CHARS.max(ld_chars / 2);
    if body.chars().count() < enough {
        let relaxed = scored_text(root, false);
        if relaxed.chars().count() > body.chars().count() {
            body = relaxed;
        }
    }
    // The publisher's own articleBody, when the layout gave clearly less of it.
    match ld_body {
        Some(ld) if ld_chars > 2 * body.chars().count().max(1) => ld,
        _ => body,
    }
}

/// Containers scoring at least this share of the best one count as parts of the article.
const ALTERNATIVE_RATIO: f64 = 0.65;

/// Below this many characters a first pass is retried without class/id furniture rules.
const MIN_BODY_CHARS: usize = 500;

fn scored_text(root: ElementRef<'_>, by_name: bool) -> String {
    let blocks = Blocks::walk(root, by_name);
    let mut score = vec![0.0f64; blocks.nodes.len()];
    let mut total_chars = vec![0usize; blocks.nodes.len()];
    let mut link_chars = vec![0usize; blocks.nodes.len()];
    for segment in &blocks.segments {
        for ancestor in blocks.lineage(segment.owner) {
            total_chars[ancestor] += segment.chars;
            link_chars[ancestor] += segment.link_chars;
        }
        if segment.chars < MIN_SCORING_CHARS || segment.is_link_list() {
            continue;
        }
        let commas = segment.text.matches([',', '،']).count() as f64;
        let points = 1.0 + commas + (segment.chars as f64 / 100.0).min(3.0);
        // The owner itself counts fully only for text directly in a container (e.g. <div>
        // paragraphs separated by <br>); a <p>'s score belongs to its parent.
        let is_paragraph = blocks.nodes[segment.owner].element.value().name() == "p";
        let mut lineage = blocks.lineage(segment.owner);
        if is_paragraph {
            lineage.next();
        }
        for (level, ancestor) in lineage.take(3).enumerate() {
            score[ancestor] += points / (level as f64 + 1.0);
        }
    }
    let adjusted: Vec<f64> = (0..blocks.nodes.len())
        .map(|i| {
            let density = link_chars[i] as f64 / total_chars[i].max(1) as f64;
            let bonus = match blocks.nodes[i].element.value().attr("itemprop") {
                Some("articleBody") => 1.5,
                _ => 1.0,
            };
            score[i] * (1.0 - density) * bonus
        })
        .collect();
    let top = (0..adjusted.len())
        .filter(|&i| adjusted[i] > 0.0)
        .max_by(|&a, &b| adjusted[a].total_cmp(&adjusted[b]));
    let Some(mut top) = top else {
        return String::new();
    };
    // An article split into several containers (ads or pull quotes between them): when other
    // containers outside the top one score nearly as well, their common ancestor is the
    // article, as in Readability's alternative-candidates step.
    let best = adjusted[top];
    let alternatives: Vec<usize> = (0..adjusted.len())
        .filter(|&i| {
            adjusted[i] >= best * ALTERNATIVE_RATIO
                && i != top
                && !blocks.lineage(i).any(|a| a == top)
                && !blocks.lineage(top).any(|a| a == i)
        })
        .collect();
    if !alternatives.is_empty() {
        let top_line: Vec<usize> = blocks.lineage(top).collect();
        let common = alternatives.iter().fold(top_line, |line, &alt| {
            let alt_line: Vec<usize> = blocks.lineage(alt).collect();
            line.into_iter().filter(|a| alt_line.contains(a)).collect()
        });
        if let Some(&ancestor) = common.first() {
            top = ancestor;
        }
    }
    // Siblings that scored well belong to the same article (split containers, lead + body).
    let threshold = (adjusted[top] * 0.1).max(3.0);
    let included: Vec<usize> = match blocks.nodes[top].parent {
        Some(parent) => (0..blocks.nodes.len())
            .filter(|&i| {
                i == top || (blocks.nodes[i].parent == Some(parent) && adjusted[i] >= threshold)
            })
            .collect(),
        None => vec![top],
    };
    let mut seen = std::collections::HashSet::new();
    join_segments(blocks.segments.iter().filter(|s| {
        !s.is_link_list()
            && blocks.nodes[s.owner].element.value().name() != "h1"
            && !is_date_line(s)
            && !is_boilerplate_line(s)
            && blocks.lineage(s.owner).any(|a| included.contains(&a))
            // The same caption or pull quote repeated (slideshows, responsive copies).
            && seen.insert(s.text.as_str())
    }))
}

/// A short line that is only a date ("Updated 5:27 am CST, Wednesday, November 20, 2019"), or
/// a date and time in a language whose month names we do not read ("sexta-feira, 22 de
/// outubro de 2010 às 20:13").
fn is_date_line(segment: &Segment) -> bool {
    if segment.chars > 80 || segment.text.ends_with('.') {
        return false;
    }
    if parse_date(&segment.text).is_some() {
        return true;
    }
    let has_year = segment
        .text
        .split(|c: char| !c.is_ascii_digit())
        .any(|n| n.len() == 4 && n.parse::<u32>().is_ok_and(|y| (1990..=2100).contains(&y)));
    let has_time = segment
        .text
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit());
    has_year && has_time
}

/// Labels of page widgets that end up as lines of their own.
const BOILERPLATE_LINES: &[&str] = &[
    "advert",
    "advertisement",
    "ad",
    "sponsored",
    "tags",
    "share",
    "share this",
    "share this article",
    "comments",
    "comment",
    "related",
    "read more",
    "join the conversation...",
    "join the conversation",
    "this slideshow requires javascript.",
    "إعلان",
    "شارك",
    "اقرأ أيضا",
    "اقرأ أيضاً",
    "اقرأ ايضا",
    "مواضيع ذات صلة",
    "الوسوم",
];

fn is_boilerplate_line(segment: &Segment) -> bool {
    segment.chars <= 40 && {
        let line = segment.text.trim().trim_end_matches(':').to_lowercase();
        BOILERPLATE_LINES.contains(&line.as_str())
    }
}

/// A date from an element: machine-readable attributes first, then its text.
fn element_date(element: ElementRef<'_>, dates: &DateContext) -> Option<DateTime<Utc>> {
    ["datetime", "content", "data-date", "title"]
        .iter()
        .filter_map(|a| element.value().attr(a))
        .find_map(|d| parse_date_in(d, dates))
        .or_else(|| {
            let text = one_line(element);
            (text.chars().count() <= 120)
                .then(|| parse_date_in(&text, dates))
                .flatten()
        })
}

const PUBLISHED_META: &[&str] = &[
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "datepublished",
    "article.published",
    "publish-date",
    "publishdate",
    "publish_date",
    "pubdate",
    "date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
    "cxenseparse:recs:publishtime",
    "original-publish-date",
    "datecreated",
];

fn generic_published(
    doc: &Html,
    page: &PageMeta,
    url: &Url,
    dates: &DateContext,
) -> Option<DateTime<Utc>> {
    let parse = |d: &str| parse_date_in(d, dates);
    page.ld_str("datePublished")
        .and_then(|d| parse(&d))
        .or_else(|| PUBLISHED_META.iter().find_map(|k| page.meta(&[k]).and_then(parse)))
        .or_else(|| {
            ["time[pubdate]", "[itemprop='datePublished']", "time[datetime]"]
                .iter()
                .filter_map(|css| sel(css))
                .find_map(|s| doc.select(&s).find_map(|e| element_date(e, dates)))
        })
        .or_else(|| date_in_url(url))
        .or_else(|| {
            // Elements named like a date ("post-date", "publish_time") hold readable dates.
            sel("[class*='date'], [class*='time'], [class*='publish'], [class*='created'], [id*='date']")
                .and_then(|s| {
                    doc.select(&s)
                        .filter(|e| !is_furniture(*e))
                        .find_map(|e| element_date(e, dates))
                })
        })
}

/// `/2020/06/03/` or `2020-06-03` in the path, as many CMSs put it.
fn date_in_url(url: &Url) -> Option<DateTime<Utc>> {
    let path = url.path();
    let parts: Vec<&str> = path
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect();
    parts.windows(3).find_map(|w| {
        let (y, m, d) = (w[0], w[1], w[2]);
        if y.len() != 4 || m.len() > 2 || d.len() > 2 {
            return None;
        }
        let date =
            chrono::NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
        let sep = |s: &str| path.contains(&format!("{y}{s}{m}{s}{d}"));
        ((1990..=2100).contains(&date.year_ce().1) && (sep("/") || sep("-")))
            .then(|| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
            .flatten()
    })
}

fn generic_author(doc: &Html, page: &PageMeta) -> Option<String> {
    let from_ld = page.ld.iter().find_map(|v| ld_name(&v["author"]));
    from_ld
        .or_else(|| {
            page.meta(&[
                "author",
                "article:author",
                "dc.creator",
                "byl",
                "sailthru.author",
            ])
            .filter(|a| !a.starts_with("http"))
            .map(clean)
        })
        .or_else(|| {
            sel("[itemprop='author'], [rel='author']").and_then(|s| {
                doc.select(&s).find_map(|e| {
                    let name = e
                        .value()
                        .attr("content")
                        .map(clean)
                        .unwrap_or_else(|| one_line(e));
                    (!name.is_empty() && name.chars().count() <= 80).then_some(name)
                })
            })
        })
        .filter(|a| !a.is_empty())
}

fn ld_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(clean(s)),
        Value::Object(_) => v["name"].as_str().map(clean),
        Value::Array(items) => items.iter().find_map(ld_name),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// The declared language, unless the text is plainly Arabic script and the declaration says
/// otherwise (templates ship `lang="en-US"` on Arabic pages).
fn language(doc: &Html, page: &PageMeta, title: &str, body: &str) -> Option<String> {
    let declared = doc
        .root_element()
        .value()
        .attr("lang")
        .or_else(|| doc.root_element().value().attr("xml:lang"))
        .or_else(|| page.meta(&["content-language", "og:locale", "inlanguage"]))
        .and_then(primary_language);
    let (arabic, latin) = title
        .chars()
        .chain(body.chars())
        .fold((0usize, 0usize), |(a, l), c| {
            if ('\u{0600}'..='\u{06FF}').contains(&c) || ('\u{0750}'..='\u{077F}').contains(&c) {
                (a + 1, l)
            } else if c.is_ascii_alphabetic() {
                (a, l + 1)
            } else {
                (a, l)
            }
        });
    let mostly_arabic = arabic > 20 && arabic > latin * 2;
    // Languages written in Arabic script besides Arabic.
    let arabic_script =
        |lang: &str| matches!(lang, "ar" | "fa" | "ur" | "ps" | "ku" | "ckb" | "sd" | "ug");
    match declared {
        Some(lang) if mostly_arabic && !arabic_script(&lang) => Some("ar".into()),
        Some(lang) => Some(lang),
        None if mostly_arabic => Some("ar".into()),
        None => detect_language(title, body),
    }
}

/// The language of the text (whatlang), as an ISO 639-1 code, when the page declares none
/// and the detector is confident.
fn detect_language(title: &str, body: &str) -> Option<String> {
    let sample: String = title
        .chars()
        .chain(std::iter::once('\n'))
        .chain(body.chars())
        .take(4000)
        .collect();
    let info = whatlang::detect(&sample)?;
    if !info.is_reliable() {
        return None;
    }
    use whatlang::Lang as L;
    let code = match info.lang() {
        L::Eng => "en",
        L::Ara => "ar",
        L::Fra => "fr",
        L::Deu => "de",
        L::Spa => "es",
        L::Por => "pt",
        L::Ita => "it",
        L::Nld => "nl",
        L::Rus => "ru",
        L::Ukr => "uk",
        L::Tur => "tr",
        L::Heb => "he",
        L::Pes => "fa",
        L::Urd => "ur",
        L::Cmn => "zh",
        L::Jpn => "ja",
        L::Kor => "ko",
        L::Hin => "hi",
        L::Ell => "el",
        L::Pol => "pl",
        L::Swe => "sv",
        L::Dan => "da",
        L::Nob => "nb",
        L::Fin => "fi",
        L::Ces => "cs",
        L::Ron => "ro",
        L::Hun => "hu",
        L::Ind => "id",
        // Languages without a two-letter code keep whatlang's three-letter one.
        other => other.code(),
    };
    Some(code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARABIC_PAGE: &str = include_str!("testdata/alkhanadeq_article.html");
    const ENGLISH_PAGE: &str = include_str!("testdata/english_article.html");

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alkhanadeq_url() -> Url {
        Url::parse("https://alkhanadeq.org.lb/post/1201/روسيا-تحذر-إسرائيل").unwrap()
    }

    const ARABIC_BODY: [&str; 3] = [
        "حذّرت وزارة الخارجية الروسية، يوم السبت، الحكومة الإسرائيلية من مغبة توسيع العمليات العسكرية باتجاه جنوب لبنان، معتبرةً أن ذلك سيقود المنطقة إلى مواجهة شاملة.",
        "وقالت المتحدثة باسم الخارجية الروسية إن موسكو تتابع عن كثب التطورات على الحدود اللبنانية، وإنها أبلغت تل أبيب بموقفها عبر القنوات الدبلوماسية، مؤكدةً ضرورة احترام سيادة لبنان.",
        "ويأتي الموقف الروسي في ظل تصاعد التوتر في المنطقة، وتزايد الاتصالات بين الكرملين وعواصم إقليمية عدة، في محاولة لاحتواء التصعيد ومنع انزلاقه إلى حرب إقليمية واسعة.",
    ];

    #[test]
    fn arabic_article_generic() {
        let got = extract_article(ARABIC_PAGE, &alkhanadeq_url(), None);
        assert_eq!(got.title, "روسيا تحذّر إسرائيل من توسيع الحرب على لبنان");
        assert_eq!(got.body, ARABIC_BODY.join("\n\n"));
        assert_eq!(got.published, Some(utc("2023-10-28T00:00:00Z")));
        assert_eq!(got.language.as_deref(), Some("ar"));
    }

    #[test]
    fn arabic_article_with_source_rules() {
        let rules = ArticleRules::parse(
            Some("h1.post-title"),
            Some(".post-body"),
            Some(".post-date"),
        )
        .unwrap();
        let got = extract_article(ARABIC_PAGE, &alkhanadeq_url(), Some(&rules));
        assert_eq!(got.title, "روسيا تحذّر إسرائيل من توسيع الحرب على لبنان");
        assert_eq!(
            got.body,
            ARABIC_BODY.join("\n\n"),
            "share links are not body text"
        );
        assert_eq!(got.published, Some(utc("2023-10-28T00:00:00Z")));
    }

    #[test]
    fn rules_that_match_nothing_fall_back_to_generic() {
        let rules = ArticleRules::parse(Some(".nope"), Some(".nope"), Some(".nope")).unwrap();
        let got = extract_article(ARABIC_PAGE, &alkhanadeq_url(), Some(&rules));
        assert_eq!(got.title, "روسيا تحذّر إسرائيل من توسيع الحرب على لبنان");
        assert_eq!(got.body, ARABIC_BODY.join("\n\n"));
        assert!(got.published.is_some());
    }

    #[test]
    fn english_article_generic() {
        let url = Url::parse("https://news.example.org/world/kremlin-envoy").unwrap();
        let got = extract_article(ENGLISH_PAGE, &url, None);
        assert_eq!(got.title, "Kremlin hosts Israeli envoy as Gaza talks stall");
        let paragraphs: Vec<&str> = got.body.split("\n\n").collect();
        assert_eq!(paragraphs.len(), 4, "{}", got.body);
        assert!(paragraphs[0].starts_with("Russian officials met an Israeli envoy"));
        assert_eq!(paragraphs[1], "Diplomatic balancing act");
        assert!(paragraphs[3].ends_with("Israeli foreign ministry."));
        assert!(!got.body.contains("cookies") && !got.body.contains("sidebar"));
        assert_eq!(got.published, Some(utc("2023-10-28T08:30:00Z")));
        assert_eq!(got.author.as_deref(), Some("Jane Reporter"));
        assert_eq!(got.language.as_deref(), Some("en"));
    }

    #[test]
    fn title_site_name_stripping() {
        assert_eq!(
            strip_site_name("Headline here now - CNNArabic.com", None, None),
            "Headline here now"
        );
        assert_eq!(
            strip_site_name("Site | A much longer headline", None, None),
            "A much longer headline"
        );
        assert_eq!(
            strip_site_name("خبر عاجل عن لبنان | الخنادق", Some("الخنادق"), None),
            "خبر عاجل عن لبنان"
        );
        assert_eq!(strip_site_name("Short", None, None), "Short");
    }

    #[test]
    fn arabic_text_under_an_english_lang_attribute_is_arabic() {
        let html = format!(
            "<html lang=\"en-US\"><body><p>{}</p></body></html>",
            ARABIC_BODY[0]
        );
        let got = extract_article(&html, &alkhanadeq_url(), None);
        assert_eq!(got.language.as_deref(), Some("ar"));
    }

    #[test]
    fn url_dates() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            date_in_url(&u("https://x.org/2020/06/03/story")),
            Some(utc("2020-06-03T00:00:00Z"))
        );
        assert_eq!(
            date_in_url(&u("https://x.org/news/2020-06-03-1.3874341")),
            Some(utc("2020-06-03T00:00:00Z"))
        );
        assert_eq!(date_in_url(&u("https://x.org/post/1201/2020")), None);
    }

    /// The Arabic pages of the corpus: how many expected titles and dates the generic
    /// extractor reproduces (day precision for dates, whitespace-insensitive for titles).
    #[test]
    fn corpus_arabic_pages() {
        use std::io::Read;
        let dir = crate::extract::corpus_dir().join("html/arabic");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
            .collect();
        files.sort();
        let (mut titles, mut title_hits, mut dates, mut date_hits) = (0, 0, 0, 0);
        let (mut bodies, mut body_hits, mut langs, mut utc_day_hits) = (0, 0, 0, 0);
        for path in &files {
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let html_path = dir.join(expected["html_file"].as_str().unwrap());
            let html = if html_path.extension().is_some_and(|e| e == "gz") {
                let mut s = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&html_path).unwrap())
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                std::fs::read_to_string(&html_path).unwrap()
            };
            let url = Url::parse(expected["url"].as_str().unwrap()).unwrap();
            let got = extract_article(&html, &url, None);
            let name = path.file_name().unwrap().to_string_lossy();
            if got.language.as_deref() == Some("ar") {
                langs += 1;
            }
            if let Some(want) = expected["title"].as_str() {
                titles += 1;
                let ok = clean(want) == got.title;
                title_hits += usize::from(ok);
                println!(
                    "{name}: title {} {:?}",
                    if ok { "ok" } else { "MISS" },
                    got.title
                );
            }
            if let Some(want) = expected["published"].as_str() {
                dates += 1;
                // Upstream gives the publisher's local day; ours is an instant in UTC, so
                // it counts when it falls within that day in some zone (UTC-12 to UTC+14).
                let day = chrono::NaiveDate::parse_from_str(&want[..10], "%Y-%m-%d").unwrap();
                let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
                let ok = got.published.is_some_and(|p| {
                    p >= start - chrono::Duration::hours(14)
                        && p < start + chrono::Duration::hours(36)
                });
                let utc_day = got.published.is_some_and(|p| p.date_naive() == day);
                date_hits += usize::from(ok);
                utc_day_hits += usize::from(utc_day);
                println!(
                    "{name}: date {} {:?} want {want}",
                    if ok { "ok" } else { "MISS" },
                    got.published
                );
            }
            if let Some(want) = expected["body"].as_str() {
                bodies += 1;
                let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                let ok = norm(want) == norm(&got.body);
                body_hits += usize::from(ok);
                println!(
                    "{name}: body {} ({} chars, want {})",
                    if ok { "exact" } else { "differs" },
                    got.body.chars().count(),
                    want.chars().count()
                );
            }
            if let Some(snippets) = expected["body_contains"].as_array() {
                let found = snippets
                    .iter()
                    .filter(|s| got.body.contains(s.as_str().unwrap_or("\u{0}")))
                    .count();
                println!("{name}: body contains {found}/{} snippets", snippets.len());
            }
            if let Some(snippets) = expected["body_not_contains"].as_array() {
                let leaked = snippets
                    .iter()
                    .filter(|s| got.body.contains(s.as_str().unwrap_or("\u{0}")))
                    .count();
                println!("{name}: boilerplate leaked {leaked}/{}", snippets.len());
            }
        }
        println!(
            "arabic corpus: titles {title_hits}/{titles}, dates {date_hits}/{dates} (same UTC day {utc_day_hits}), bodies exact {body_hits}/{bodies}, language ar {langs}/{}",
            files.len()
        );
        assert_eq!(langs, files.len(), "every page is Arabic");
        assert!(
            title_hits * 3 >= titles * 2,
            "titles regressed: {title_hits}/{titles}"
        );
        assert!(
            date_hits * 3 >= dates * 2,
            "dates regressed: {date_hits}/{dates}"
        );
    }
}
