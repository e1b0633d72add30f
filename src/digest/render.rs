//! Rendering a digest into an HTML part and a plain-text part with minijinja templates.
//!
//! The built-in templates are compiled into the binary (`include_str!`) so a fresh install
//! renders without any files on disk; a user template directory may override either one.
//! Article titles, snippets and URLs come from pages we do not control, so the HTML template
//! is always auto-escaped and only `http(s)` URLs are ever offered to it as links (`href`);
//! everything else reaches the reader as inert text.

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// Everything a digest shows, already selected, grouped and formatted for its reader.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DigestView {
    /// The digest's configured name (`[[digest]].name`).
    pub name: String,
    pub subject: String,
    /// Language of the page chrome (`"ar"` or `"en"`): sets `<html lang dir>` and the labels.
    pub language: String,
    /// Human text for the covered period, e.g. "2026-11-24 07:00 – 2026-11-25 07:00 (Asia/Beirut)".
    pub period: String,
    pub total: usize,
    pub watchlists: Vec<WatchlistSection>,
    /// An immediate alert (short message) rather than a scheduled digest.
    pub alert: bool,
    /// Every watchlist of the digest with its number of items, zeros included, for the header.
    pub counts: Vec<WatchlistCount>,
    /// Sources whose fetches failed during the period, for the footer.
    pub health: Vec<SourceHealth>,
    /// Watchlists whose volume is far above their usual level, for the footer.
    pub surges: Vec<VolumeNote>,
}

/// One watchlist's item count, shown in the header.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WatchlistCount {
    pub name: String,
    pub title: String,
    pub count: usize,
}

/// A source that failed during the period: how often, when last, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceHealth {
    /// Display name of the source.
    pub source: String,
    pub failures: usize,
    /// Time of the latest failure, already formatted in the digest's timezone.
    pub last_failure: String,
    /// The latest error message.
    pub error: String,
}

/// A watchlist with far more items than usual (more than three times its recent average).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VolumeNote {
    pub title: String,
    pub count: usize,
    /// Average for a period of this length over the preceding periods, rounded to one decimal.
    pub usual: String,
}

/// One watchlist's matches within a digest.
#[derive(Debug, Clone, Serialize)]
pub struct WatchlistSection {
    pub name: String,
    pub title: String,
    pub items: Vec<DigestItem>,
}

/// One story in a digest: the article shown, why it matched, and where else it appeared.
#[derive(Debug, Clone, Serialize)]
pub struct DigestItem {
    pub title: String,
    pub url: String,
    /// Display name of the source.
    pub source: String,
    /// Already formatted in the digest's timezone.
    pub published: Option<String>,
    pub language: Option<String>,
    /// Distinct matched surface texts, as they appear in the article.
    pub terms: Vec<String>,
    pub snippet: Option<Snippet>,
    /// `(source name, url)` of other places the same story was seen.
    pub also: Vec<(String, String)>,
}

/// A short excerpt around one hit, split so templates can highlight the hit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snippet {
    pub before: String,
    pub hit: String,
    pub after: String,
}

/// Why a digest could not be rendered; each names the template file so it can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The template does not parse, or failed while rendering (e.g. an unknown variable).
    #[error("{template}{}: {message}", line_suffix(*.line))]
    Template {
        /// The override's path, or "built-in digest.html.j2".
        template: String,
        line: Option<usize>,
        message: String,
    },
    /// An override template exists but could not be read.
    #[error("cannot read template {}: {source}; check its permissions", path.display())]
    ReadTemplate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

const HTML_TEMPLATE: &str = "digest.html.j2";
const TEXT_TEMPLATE: &str = "digest.txt.j2";
const BUILTIN_HTML: &str = include_str!("templates/digest.html.j2");
const BUILTIN_TEXT: &str = include_str!("templates/digest.txt.j2");

/// Render the HTML part with the built-in template.
pub fn render_html(view: &DigestView) -> Result<String, DigestError> {
    render_html_with(view, None)
}

/// Render the plain-text part with the built-in template.
pub fn render_text(view: &DigestView) -> Result<String, DigestError> {
    render_text_with(view, None)
}

/// Render the HTML part, using `<template_dir>/digest.html.j2` when that file exists.
pub fn render_html_with(
    view: &DigestView,
    template_dir: Option<&Path>,
) -> Result<String, DigestError> {
    render(HTML_TEMPLATE, BUILTIN_HTML, view, template_dir)
}

/// Render the plain-text part, using `<template_dir>/digest.txt.j2` when that file exists.
pub fn render_text_with(
    view: &DigestView,
    template_dir: Option<&Path>,
) -> Result<String, DigestError> {
    render(TEXT_TEMPLATE, BUILTIN_TEXT, view, template_dir)
}

fn render(
    name: &'static str,
    builtin: &'static str,
    view: &DigestView,
    template_dir: Option<&Path>,
) -> Result<String, DigestError> {
    let (source, shown_as) = load_template(name, builtin, template_dir)?;
    let hint = match source {
        Cow::Owned(_) => "fix the template, or remove it to use the built-in one",
        Cow::Borrowed(_) => "this is a bug in marsad; please report it",
    };
    let to_error = |err: minijinja::Error| DigestError::Template {
        template: shown_as.clone(),
        line: err.line(),
        message: match err.detail() {
            Some(detail) => format!("{}: {detail}; {hint}", err.kind()),
            None => format!("{}; {hint}", err.kind()),
        },
    };
    let mut env = environment().map_err(to_error)?;
    env.add_template_owned(name, source).map_err(to_error)?;
    let template = env.get_template(name).map_err(to_error)?;
    template
        .render(Value::from(Serde(Context::new(view))))
        .map_err(to_error)
}

/// Returns the template source and the name errors should use for it.
fn load_template(
    name: &'static str,
    builtin: &'static str,
    template_dir: Option<&Path>,
) -> Result<(Cow<'static, str>, String), DigestError> {
    if let Some(dir) = template_dir {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(source) => return Ok((Cow::Owned(source), path.display().to_string())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(DigestError::ReadTemplate { path, source }),
        }
    }
    Ok((Cow::Borrowed(builtin), format!("built-in {name}")))
}

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // Decided by our own template names rather than minijinja's default table, so an override
    // can never switch escaping off by being named differently.
    env.set_auto_escape_callback(|name| {
        if name == HTML_TEMPLATE {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // A typo in a user template (`item.titel`) should fail loudly with a line number instead
    // of silently rendering empty text into every digest.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_filter("isolate", isolate);
    Ok(env)
}

/// Wraps right-to-left text in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE for the plain-text
/// part, so an Arabic source name embedded in an English line (or the reverse) does not
/// reorder its neighbours. Text without RTL letters is returned unchanged to keep plain ASCII
/// free of invisible characters.
fn isolate(value: String) -> String {
    if value.chars().any(is_rtl_letter) {
        format!("\u{2068}{value}\u{2069}")
    } else {
        value
    }
}

/// Primary language subtags written right to left.
const RTL_LANGUAGES: &[&str] = &[
    "ar", "fa", "ur", "he", "iw", "ps", "ckb", "sd", "ug", "yi", "dv",
];

/// `"rtl"` for right-to-left languages (ar, fa, ur, he, ps, ckb, …) or, when the language is
/// unknown, when most letters of `text` are Arabic or Hebrew script; otherwise `"ltr"`.
///
/// Feeds often omit or mislabel the language, so the script of the text itself is the
/// fallback: an Arabic headline must not be laid out left to right just because its feed
/// forgot `xml:lang`.
pub fn direction(language: Option<&str>, text: &str) -> &'static str {
    let rtl = match language.map(str::trim).filter(|l| !l.is_empty()) {
        Some(lang) => {
            let primary = lang.split(['-', '_']).next().unwrap_or(lang);
            RTL_LANGUAGES
                .iter()
                .any(|rtl| rtl.eq_ignore_ascii_case(primary))
        }
        None => Script::dominant(text).is_some(),
    };
    if rtl { "rtl" } else { "ltr" }
}

/// The right-to-left scripts we recognise in text of unknown language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Arabic,
    Hebrew,
}

impl Script {
    fn of(c: char) -> Option<Script> {
        match c {
            '\u{0600}'..='\u{06FF}'
            | '\u{0750}'..='\u{077F}'
            | '\u{0870}'..='\u{08FF}'
            | '\u{FB50}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}' => Some(Script::Arabic),
            '\u{0590}'..='\u{05FF}' | '\u{FB1D}'..='\u{FB4F}' => Some(Script::Hebrew),
            _ => None,
        }
    }

    /// The RTL script that more than half of the letters of `text` are written in, if any.
    fn dominant(text: &str) -> Option<Script> {
        let (mut letters, mut arabic, mut hebrew) = (0usize, 0usize, 0usize);
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            letters += 1;
            match Script::of(c) {
                Some(Script::Arabic) => arabic += 1,
                Some(Script::Hebrew) => hebrew += 1,
                None => {}
            }
        }
        if 2 * (arabic + hebrew) <= letters {
            None
        } else if arabic >= hebrew {
            Some(Script::Arabic)
        } else {
            Some(Script::Hebrew)
        }
    }

    fn language(self) -> &'static str {
        match self {
            Script::Arabic => "ar",
            Script::Hebrew => "he",
        }
    }
}

fn is_rtl_letter(c: char) -> bool {
    c.is_alphabetic() && Script::of(c).is_some()
}

/// An excerpt of `text` around the hit at char offsets `start..end`, with up to
/// `context_chars` characters on each side.
///
/// Offsets are chars, not bytes, because that is what the matcher reports and what stays
/// meaningful for Arabic. Context is cut at whitespace so no word is shown half, whitespace
/// runs (newlines in bodies) become single spaces, and "…" marks where text was left out.
/// Out-of-range offsets are clamped rather than rejected: a stale offset should cost a worse
/// snippet, not a failed digest.
pub fn snippet(text: &str, start: usize, end: usize, context_chars: usize) -> Snippet {
    let chars: Vec<char> = text.chars().collect();
    let end = end.min(chars.len());
    let start = start.min(end);

    let mut from = start.saturating_sub(context_chars);
    let cut_before = from > 0;
    if cut_before && !chars[from - 1].is_whitespace() {
        // `from` is inside a word: start after the first whitespace in the window instead.
        if let Some(pos) = chars[from..start].iter().position(|c| c.is_whitespace()) {
            from += pos + 1;
        }
    }

    let mut to = end.saturating_add(context_chars).min(chars.len());
    let cut_after = to < chars.len();
    if cut_after && !chars[to].is_whitespace() {
        // `to` would split a word: end at the last whitespace in the window instead.
        if let Some(pos) = chars[end..to].iter().rposition(|c| c.is_whitespace()) {
            to = end + pos;
        }
    }

    let mut before = collapse_whitespace(&chars[from..start])
        .trim_start()
        .to_string();
    if cut_before {
        before.insert(0, '…');
    }
    let mut after = collapse_whitespace(&chars[end..to]).trim_end().to_string();
    if cut_after {
        after.push('…');
    }
    Snippet {
        before,
        hit: collapse_whitespace(&chars[start..end]),
        after,
    }
}

fn collapse_whitespace(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut in_space = false;
    for &c in chars {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// The link target for `url`, only when it is http(s): anything else (`javascript:`, `data:`,
/// relative junk) is shown as text and never becomes a link.
fn http_href(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// Words of the page chrome, in the digest's language.
#[derive(Debug, Serialize)]
struct Labels {
    total: &'static str,
    terms: &'static str,
    also: &'static str,
    empty: &'static str,
    footer: &'static str,
    alert: &'static str,
    health: &'static str,
    failed_times: &'static str,
    surge: &'static str,
    usually: &'static str,
    /// List separator: Arabic uses its own comma.
    comma: &'static str,
}

const LABELS_EN: Labels = Labels {
    total: "Articles",
    terms: "Matched",
    also: "Also reported by",
    empty: "Nothing matched in this period.",
    footer: "Sent by marsad",
    alert: "Alert",
    health: "Sources that failed in this period",
    failed_times: "failures",
    surge: "Unusually many items",
    usually: "usually",
    comma: ", ",
};

const LABELS_AR: Labels = Labels {
    total: "عدد المقالات",
    terms: "الكلمات المطابقة",
    also: "ورد أيضاً في",
    empty: "لم يطابق شيء في هذه الفترة.",
    footer: "أُرسلت من marsad",
    alert: "تنبيه",
    health: "مصادر تعذّر جلبها في هذه الفترة",
    failed_times: "مرات الفشل",
    surge: "عدد غير معتاد من المقالات",
    usually: "المعتاد",
    comma: "، ",
};

/// What the templates see: the view plus what they must not compute themselves
/// (directions, safe link targets, labels).
#[derive(Debug, Serialize)]
struct Context<'a> {
    name: &'a str,
    subject: &'a str,
    language: &'a str,
    dir: &'static str,
    period: &'a str,
    total: usize,
    labels: &'static Labels,
    watchlists: Vec<SectionContext<'a>>,
    alert: bool,
    counts: &'a [WatchlistCount],
    health: &'a [SourceHealth],
    surges: &'a [VolumeNote],
}

#[derive(Debug, Serialize)]
struct SectionContext<'a> {
    name: &'a str,
    title: &'a str,
    count: usize,
    items: Vec<ItemContext<'a>>,
}

#[derive(Debug, Serialize)]
struct ItemContext<'a> {
    title: Cow<'a, str>,
    url: Cow<'a, str>,
    /// `Some` only for http(s) URLs.
    href: Option<String>,
    source: Cow<'a, str>,
    published: Option<&'a str>,
    /// The `lang` attribute: the item's language, else guessed from its script, else "" (unknown).
    lang: &'a str,
    dir: &'static str,
    terms: &'a [String],
    snippet: Option<Snippet>,
    also: Vec<AlsoContext<'a>>,
}

#[derive(Debug, Serialize)]
struct AlsoContext<'a> {
    source: Cow<'a, str>,
    url: Cow<'a, str>,
    href: Option<String>,
}

/// Explicit bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Page text with its explicit bidi controls removed. An unterminated RIGHT-TO-LEFT OVERRIDE
/// (U+202E) in a title would reverse whatever follows it on the line (`exe.txt` shown for
/// `txt.exe`, a link text contradicting its target); the digest sets direction itself with
/// `dir`, `<bdi>` and the `isolate` filter, so the page's own controls are dropped rather than
/// balanced. Marks (U+200E/U+200F) stay: they reorder nothing beyond themselves.
fn without_bidi_controls(text: &str) -> Cow<'_, str> {
    if text.contains(is_bidi_control) {
        Cow::Owned(text.chars().filter(|c| !is_bidi_control(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

impl<'a> Context<'a> {
    fn new(view: &'a DigestView) -> Context<'a> {
        let labels = if view.language.eq_ignore_ascii_case("ar") {
            &LABELS_AR
        } else {
            &LABELS_EN
        };
        Context {
            name: &view.name,
            subject: &view.subject,
            language: &view.language,
            dir: direction(Some(&view.language), ""),
            period: &view.period,
            total: view.total,
            labels,
            alert: view.alert,
            counts: &view.counts,
            health: &view.health,
            surges: &view.surges,
            watchlists: view
                .watchlists
                .iter()
                .map(|section| SectionContext {
                    name: &section.name,
                    title: &section.title,
                    count: section.items.len(),
                    items: section.items.iter().map(ItemContext::new).collect(),
                })
                .collect(),
        }
    }
}

impl<'a> ItemContext<'a> {
    fn new(item: &'a DigestItem) -> ItemContext<'a> {
        let language = item.language.as_deref().filter(|l| !l.trim().is_empty());
        // Without a declared language, judge by the text the reader actually sees.
        let sample = match &item.snippet {
            Some(s) => format!("{} {} {}{}", item.title, s.before, s.hit, s.after),
            None => item.title.clone(),
        };
        let lang = match language {
            Some(lang) => lang,
            None => Script::dominant(&sample).map_or("", Script::language),
        };
        ItemContext {
            title: without_bidi_controls(&item.title),
            url: without_bidi_controls(&item.url),
            href: http_href(&item.url),
            source: without_bidi_controls(&item.source),
            published: item.published.as_deref(),
            lang,
            dir: direction(language, &sample),
            terms: &item.terms,
            snippet: item.snippet.as_ref().map(|s| Snippet {
                before: without_bidi_controls(&s.before).into_owned(),
                hit: without_bidi_controls(&s.hit).into_owned(),
                after: without_bidi_controls(&s.after).into_owned(),
            }),
            also: item
                .also
                .iter()
                .map(|(source, url)| AlsoContext {
                    source: without_bidi_controls(source),
                    url: without_bidi_controls(url),
                    href: http_href(url),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::{Html, Selector};

    const ARABIC_BODY: &str = "قال المتحدث باسم الكرملين إن موسكو تتابع التطورات عن كثب، \
        وأضاف أن روسيا لن تقبل أي تصعيد في المنطقة وأنها على اتصال دائم مع جميع الأطراف المعنية.";

    fn char_range(text: &str, needle: &str) -> (usize, usize) {
        let byte = text.find(needle).expect("needle in text");
        let start = text[..byte].chars().count();
        (start, start + needle.chars().count())
    }

    fn arabic_item() -> DigestItem {
        let (start, end) = char_range(ARABIC_BODY, "روسيا");
        DigestItem {
            title: "روسيا تحذر إسرائيل من التصعيد".into(),
            url: "https://alkhanadeq.org.lb/post/123".into(),
            source: "الخنادق".into(),
            published: Some("2026-11-25 08:15".into()),
            language: Some("ar".into()),
            terms: vec!["روسيا".into(), "إسرائيل".into()],
            snippet: Some(snippet(ARABIC_BODY, start, end, 40)),
            also: vec![("BBC عربي".into(), "https://www.bbc.com/arabic/1".into())],
        }
    }

    fn english_item() -> DigestItem {
        DigestItem {
            title: "Putin and Netanyahu speak by phone".into(),
            url: "https://example.org/news/putin-netanyahu".into(),
            source: "Example Wire".into(),
            published: None,
            language: Some("en".into()),
            terms: vec!["Putin".into(), "Netanyahu".into()],
            snippet: Some(Snippet {
                before: "On Tuesday ".into(),
                hit: "Putin".into(),
                after: " called…".into(),
            }),
            also: vec![],
        }
    }

    fn hostile_item() -> DigestItem {
        DigestItem {
            title: "<script>alert(1)</script> \"onerror=alert(2) x=\"".into(),
            url: "javascript:alert(3)".into(),
            source: "<b>Evil</b>".into(),
            published: None,
            language: None,
            terms: vec!["<img src=x onerror=alert(4)>".into()],
            snippet: None,
            also: vec![("Mirror".into(), "javascript:alert(5)".into())],
        }
    }

    fn view(language: &str, items: Vec<DigestItem>) -> DigestView {
        DigestView {
            name: "daily".into(),
            subject: "موجز يومي: روسيا وإسرائيل".into(),
            language: language.into(),
            period: "2026-11-24 07:00 – 2026-11-25 07:00 (Asia/Beirut)".into(),
            total: items.len(),
            watchlists: vec![WatchlistSection {
                name: "russia-israel".into(),
                title: "Russia–Israel relations".into(),
                items,
            }],
            ..DigestView::default()
        }
    }

    fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
        let selector = Selector::parse(css).expect("valid selector");
        doc.select(&selector).collect()
    }

    /// The element carrying the item's own `lang`/`dir`, found by its title text.
    fn item_element<'a>(doc: &'a Html, title: &str) -> scraper::ElementRef<'a> {
        select(doc, "[lang][dir]")
            .into_iter()
            .filter(|el| el.value().name() != "html")
            .filter(|el| el.text().collect::<String>().contains(title))
            .min_by_key(|el| el.text().collect::<String>().len())
            .unwrap_or_else(|| panic!("no element with lang/dir around {title:?}"))
    }

    #[test]
    fn html_sets_page_and_item_direction_and_marks_the_hit() {
        let ar = arabic_item();
        let en = english_item();
        let html = render_html(&view("ar", vec![ar.clone(), en.clone()])).unwrap();
        let doc = Html::parse_document(&html);

        let root = select(&doc, "html")[0];
        assert_eq!(root.attr("lang"), Some("ar"));
        assert_eq!(root.attr("dir"), Some("rtl"));
        assert!(
            select(&doc, "meta[name=color-scheme]")
                .iter()
                .any(|m| m.attr("content").unwrap_or("").contains("dark")),
            "dark mode needs a color-scheme meta"
        );

        let ar_el = item_element(&doc, &ar.title);
        assert_eq!(ar_el.attr("dir"), Some("rtl"));
        assert_eq!(ar_el.attr("lang"), Some("ar"));
        let en_el = item_element(&doc, &en.title);
        assert_eq!(en_el.attr("dir"), Some("ltr"));
        assert_eq!(en_el.attr("lang"), Some("en"));

        let marks: Vec<String> = select(&doc, "mark")
            .iter()
            .map(|m| m.text().collect())
            .collect();
        assert!(marks.contains(&"روسيا".to_string()), "marks: {marks:?}");
        assert!(marks.contains(&"Putin".to_string()), "marks: {marks:?}");

        let text: String = doc.root_element().text().collect();
        for term in ar.terms.iter().chain(&en.terms) {
            assert!(text.contains(term.as_str()), "term {term} listed");
        }
        assert!(text.contains("الخنادق") && text.contains("2026-11-25 08:15"));
        assert!(
            text.contains(&view("ar", vec![]).period),
            "period in header"
        );

        let links: Vec<&str> = select(&doc, "a[href]")
            .iter()
            .filter_map(|a| a.attr("href"))
            .collect();
        assert!(links.contains(&ar.url.as_str()));
        assert!(links.contains(&en.url.as_str()));
        assert!(links.contains(&"https://www.bbc.com/arabic/1"), "also link");
    }

    #[test]
    fn headings_show_each_watchlists_count_and_the_header_the_total() {
        let mut v = view("en", vec![arabic_item(), english_item()]);
        v.watchlists.push(WatchlistSection {
            name: "energy".into(),
            title: "Energy".into(),
            items: vec![english_item()],
        });
        v.total = 3;
        let doc = Html::parse_document(&render_html(&v).unwrap());
        let headings: Vec<String> = select(&doc, "h2")
            .iter()
            .map(|h| h.text().collect::<String>())
            .collect();
        assert_eq!(headings.len(), 2, "{headings:?}");
        assert!(headings[0].contains("Russia–Israel relations") && headings[0].ends_with("(2)"));
        assert!(headings[1].contains("Energy") && headings[1].ends_with("(1)"));
        let header: String = select(&doc, "header")[0].text().collect();
        assert!(
            header.contains(&v.period) && header.contains('3'),
            "{header}"
        );
        let root = select(&doc, "html")[0];
        assert_eq!(
            (root.attr("lang"), root.attr("dir")),
            (Some("en"), Some("ltr"))
        );
    }

    #[test]
    fn html_escapes_page_text_and_never_links_non_http_urls() {
        let bad = hostile_item();
        let html = render_html(&view("en", vec![bad.clone()])).unwrap();
        let doc = Html::parse_document(&html);

        assert!(select(&doc, "script").is_empty(), "script must not survive");
        assert!(select(&doc, "img").is_empty(), "img must not survive");
        assert!(
            select(&doc, "b").is_empty(),
            "source markup must not survive"
        );
        for el in select(&doc, "*") {
            for (name, _) in el.value().attrs() {
                assert!(!name.starts_with("on"), "event handler attribute {name}");
            }
        }
        assert!(
            select(&doc, "a[href]")
                .iter()
                .all(|a| !a.attr("href").unwrap_or("").contains("javascript")),
            "javascript: URL became a link"
        );
        // The reader still sees the text, escaped, not lost.
        let text: String = doc.root_element().text().collect();
        assert!(text.contains(&bad.title));
        assert!(text.contains(&bad.url));
        assert!(text.contains("<b>Evil</b>"));
        // Unknown language, Latin text: left to right.
        assert_eq!(item_element(&doc, &bad.title).attr("dir"), Some("ltr"));
    }

    #[test]
    fn text_part_has_titles_and_urls_on_their_own_lines() {
        let items = vec![arabic_item(), english_item(), hostile_item()];
        let text = render_text(&view("en", items.clone())).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for item in &items {
            assert!(text.contains(&item.title), "title {}", item.title);
            assert!(lines.contains(&item.url.as_str()), "url line {}", item.url);
        }
        assert!(lines.contains(&"https://www.bbc.com/arabic/1"));
        assert!(text.contains("[روسيا]"), "hit is marked in text");
        assert!(
            text.contains("\u{2068}الخنادق\u{2069}"),
            "RTL source isolated"
        );
        assert!(!text.contains("&lt;"), "text part is not HTML-escaped");
    }

    #[test]
    fn empty_digest_says_so() {
        let mut v = view("ar", vec![]);
        v.watchlists.clear();
        let html = render_html(&v).unwrap();
        assert!(html.contains(LABELS_AR.empty));
        assert!(render_text(&v).unwrap().contains(LABELS_AR.empty));
    }

    #[test]
    fn snippet_around_an_arabic_hit_uses_char_offsets_and_whole_words() {
        let (start, end) = char_range(ARABIC_BODY, "روسيا");
        let s = snippet(ARABIC_BODY, start, end, 25);
        assert_eq!(s.hit, "روسيا");

        let before = s.before.strip_prefix('…').expect("text was cut before");
        let after = s.after.strip_suffix('…').expect("text was cut after");
        assert!(before.chars().count() <= 25 && after.chars().count() <= 25);
        // The excerpt is a verbatim piece of the original around the hit...
        let joined = format!("{before}{}{after}", s.hit);
        let at = ARABIC_BODY
            .find(&joined)
            .expect("snippet is contiguous text");
        // ...that starts and ends on word boundaries.
        assert!(ARABIC_BODY[..at].ends_with(char::is_whitespace));
        assert!(ARABIC_BODY[at + joined.len()..].starts_with(char::is_whitespace));
        assert!(!before.starts_with(' ') && !after.ends_with(' '));
    }

    #[test]
    fn snippet_keeps_short_text_whole_and_clamps_offsets() {
        let text = "روسيا\nو  إسرائيل";
        let s = snippet(text, 0, 5, 100);
        assert_eq!(
            (s.before.as_str(), s.hit.as_str(), s.after.as_str()),
            ("", "روسيا", " و إسرائيل")
        );
        let s = snippet(text, 50, 99, 3);
        assert_eq!(s.hit, "");
        assert!(s.before.starts_with('…'));
    }

    #[test]
    fn direction_uses_language_then_script() {
        assert_eq!(direction(Some("ar"), "Hello"), "rtl");
        assert_eq!(direction(Some("fa-IR"), ""), "rtl");
        assert_eq!(direction(Some("CKB"), ""), "rtl");
        assert_eq!(direction(Some("en"), "روسيا"), "ltr");
        assert_eq!(direction(None, "روسيا تحذر إسرائيل (AFP)"), "rtl");
        assert_eq!(direction(None, "שלום עולם"), "rtl");
        assert_eq!(direction(None, "Moscow says روسيا"), "ltr");
        assert_eq!(direction(Some(""), "2026 — 123"), "ltr");
    }

    #[test]
    fn user_template_dir_overrides_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("digest.txt.j2"),
            "{{ subject }} / {{ total }}\n",
        )
        .unwrap();
        let v = view("en", vec![english_item()]);
        assert_eq!(
            render_text_with(&v, Some(dir.path())).unwrap(),
            format!("{} / 1\n", v.subject)
        );
        // No HTML override there: the built-in one is used.
        assert!(
            render_html_with(&v, Some(dir.path()))
                .unwrap()
                .contains("<mark ")
        );

        let broken = dir.path().join("digest.html.j2");
        std::fs::write(&broken, "<p>ok</p>\n<p>{{ item.titel }}</p>\n").unwrap();
        let err = render_html_with(&v, Some(dir.path())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}:2:", broken.display())),
            "{msg}"
        );

        std::fs::write(&broken, "{% for x in watchlists %}\n").unwrap();
        let msg = render_html_with(&v, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&broken.display().to_string()), "{msg}");
    }

    #[test]
    fn user_html_template_is_still_escaped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("digest.html.j2"),
            "{% for w in watchlists %}{% for i in w.items %}<h3>{{ i.title }}</h3>{% endfor %}{% endfor %}",
        )
        .unwrap();
        let html = render_html_with(&view("en", vec![hostile_item()]), Some(dir.path())).unwrap();
        assert!(!html.contains("<script>"), "{html}");
    }
}
