//! Turning fetched documents into items: feeds (feed-rs), listing pages (which links are
//! articles), and article pages (title, body, date, author, language).
//!
//! Per-source CSS selectors from sources.toml come first; where a source has none, or they
//! find nothing, the generic extractor in [`article`] takes over, so a redesign of one site
//! degrades its extraction rather than breaking it.

pub mod article;
pub mod date;
pub mod depth;
pub mod feed;
pub mod listing;
pub mod sitemap;
pub mod text;

use scraper::Selector;

pub use article::{Generic, extract_article};
pub use date::{DateContext, parse_date, parse_date_in};
pub use feed::{ExtractError, FeedItem, parse_feed};
pub use listing::article_links;
pub use text::html_to_text;

/// What an article page yielded; field names are the `extract --json` contract.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Extracted {
    pub title: String,
    /// Main text, paragraphs joined with "\n\n".
    pub body: String,
    pub published: Option<chrono::DateTime<chrono::Utc>>,
    pub author: Option<String>,
    /// Primary language subtag, lower-case ("ar", "en").
    pub language: Option<String>,
}

/// What an extractor knows about a page besides its HTML.
#[derive(Debug, Clone)]
pub struct PageContext<'a> {
    /// The page's final URL (after redirects): dates in the path, resolving links.
    pub url: &'a url::Url,
    /// The source's `[source.article]` selectors, tried before the generic rules per field.
    pub rules: Option<&'a ArticleRules>,
    /// Zone for dates the page writes without one: the source's `timezone`, else
    /// `[schedule].timezone`; UTC when neither is set.
    pub timezone: Option<chrono_tz::Tz>,
    /// When the page was fetched: relative dates ("منذ 3 ساعات", "2 hours ago") count back
    /// from it, and a date without a year is the most recent such day not after it.
    pub fetched: chrono::DateTime<chrono::Utc>,
}

impl<'a> PageContext<'a> {
    /// A page fetched now, with no selectors and no configured zone.
    pub fn new(url: &'a url::Url) -> PageContext<'a> {
        PageContext {
            url,
            rules: None,
            timezone: None,
            fetched: chrono::Utc::now(),
        }
    }

    pub fn with_rules(mut self, rules: Option<&'a ArticleRules>) -> PageContext<'a> {
        self.rules = rules;
        self
    }

    pub fn with_timezone(mut self, timezone: Option<chrono_tz::Tz>) -> PageContext<'a> {
        self.timezone = timezone;
        self
    }

    pub fn with_fetched(mut self, fetched: chrono::DateTime<chrono::Utc>) -> PageContext<'a> {
        self.fetched = fetched;
        self
    }

    pub(crate) fn dates(&self) -> DateContext {
        DateContext {
            timezone: self.timezone,
            now: self.fetched,
        }
    }
}

/// Turns one article page into title, body, date, author and language. The pipeline and
/// `marsad extract` call whichever [`extractor`] returns, so the generic implementation can
/// be swapped (another scorer, a wrapped crate) without touching them.
pub trait Extractor: Send + Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    fn extract(&self, html: &str, page: &PageContext<'_>) -> Extracted;
}

/// The extractor marsad uses: [`Generic`], chosen by measurement on the extraction
/// benchmark (`cargo bench --bench extract` prints it beside the `trafilatura` and
/// `dom_smoothie` crates).
pub fn extractor() -> &'static dyn Extractor {
    &Generic
}

/// Compiled per-source selectors (from sources.toml `[source.article]`).
#[derive(Debug, Clone, Default)]
pub struct ArticleRules {
    pub title: Option<Selector>,
    pub body: Option<Selector>,
    pub published: Option<Selector>,
}

impl ArticleRules {
    /// Compiles the selectors a source gives; the error names the selector that failed
    /// (`body: …`) so the settings loader can point at the right key.
    pub fn parse(
        title: Option<&str>,
        body: Option<&str>,
        published: Option<&str>,
    ) -> Result<ArticleRules, String> {
        let compile = |name: &str, css: Option<&str>| {
            css.map(|css| parse_selector(css).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        Ok(ArticleRules {
            title: compile("title", title)?,
            body: compile("body", body)?,
            published: compile("published", published)?,
        })
    }
}

/// Compiles one CSS selector. The message quotes the selector and says what is wrong, for use
/// after "file:line:col: bad CSS selector: ".
pub fn parse_selector(css: &str) -> Result<Selector, String> {
    use scraper::error::SelectorErrorKind as K;
    if css.trim().is_empty() {
        return Err("empty selector; write one such as \"h1\" or \".article-body p\"".into());
    }
    Selector::parse(css).map_err(|e| {
        let what = match e {
            K::UnexpectedToken => "unexpected character or token".to_string(),
            K::EndOfLine => "ends too early (unclosed bracket, quote or parenthesis?)".to_string(),
            K::InvalidAtRule | K::InvalidAtRuleBody => "@-rules are not selectors".to_string(),
            K::QualRuleInvalid => "invalid qualified name".to_string(),
            K::TooManyNestedBlocks => "too deeply nested".to_string(),
            K::ExpectedColonOnPseudoElement | K::ExpectedIdentityOnPseudoElement => {
                "incomplete pseudo-element".to_string()
            }
            K::UnexpectedSelectorParseError(kind) => format!("{kind:?}"),
        };
        format!("{css:?}: {what}")
    })
}

/// Finds `shared/corpus` beside an ancestor of the crate: `../shared/corpus` from the main
/// crate, `../../shared/corpus` from a scratch crate.
#[cfg(test)]
pub(crate) fn corpus_dir() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/corpus"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus directory beside any ancestor of {}; the corpus tests need it",
                manifest.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_errors_name_the_selector_and_the_key() {
        let err = parse_selector("div[").unwrap_err();
        assert!(err.starts_with("\"div[\""), "{err}");
        let err = ArticleRules::parse(Some("h1"), Some("..body"), None).unwrap_err();
        assert!(err.starts_with("body: \"..body\""), "{err}");
        assert!(parse_selector(" ").is_err());
    }

    #[test]
    fn valid_rules_compile() {
        let rules = ArticleRules::parse(
            Some("h1"),
            Some(".article-body"),
            Some("time[datetime], .date"),
        )
        .unwrap();
        assert!(rules.title.is_some() && rules.body.is_some() && rules.published.is_some());
        let none = ArticleRules::parse(None, None, None).unwrap();
        assert!(none.title.is_none() && none.body.is_none() && none.published.is_none());
    }
}
