//! Types shared by several stages of the pipeline.
use serde::{Deserialize, Serialize};

/// Which part of an article a watchlist looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    Body,
    Url,
    Source,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Body => "body",
            Field::Url => "url",
            Field::Source => "source",
        }
    }
}

/// One article as the pipeline hands it to the store: extracted, normalized, not yet deduplicated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArticle {
    /// Id of the source it was reached through.
    pub source: String,
    /// Canonical URL (see `normalize::url`), the primary dedupe key.
    pub url: String,
    /// The URL exactly as the source linked it.
    pub raw_url: String,
    /// Feed GUID, unique only within its source.
    pub guid: Option<String>,
    pub title: String,
    pub body: String,
    pub published: Option<chrono::DateTime<chrono::Utc>>,
    pub language: Option<String>,
    pub author: Option<String>,
    /// Hash of the normalized title and body: the same text reached at another URL is one article.
    pub content_hash: String,
    /// Its story signature (`dedupe::signature`), when it was worked out with the content hash
    /// (a feed's usual few items, not a hostile feed's 100,000); the store computes it otherwise.
    pub signature: Option<Box<crate::dedupe::Signature>>,
}

/// One watchlist match ready to be stored with its article.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMatch {
    pub watchlist: String,
    pub hits: Vec<crate::matcher::Hit>,
}
