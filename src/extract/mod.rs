//! Turning fetched documents into items: feeds (feed-rs), listing pages (which links are
//! articles), and article pages (title, body, date, author, language).
//!
//! Per-source CSS selectors from sources.toml come first; where a source has none, or they
//! find nothing, the generic extractor in [`article`] takes over, so a redesign of one site
//! degrades its extraction rather than breaking it.

pub mod article;
pub mod date;
pub mod feed;
pub mod listing;
pub mod sitemap;
pub mod text;

use scraper::Selector;

pub use article::extract_article;
pub use date::parse_date;
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
