//! Digests: turning matched articles into an email a person reads.
//!
//! Selecting and grouping articles for a period reads from the store and lives beside this
//! module; what is here is the last, pure step: [`render`] takes a ready [`DigestView`] and
//! produces the HTML and plain-text parts that `crate::deliver` wraps into a message.

pub mod render;
pub mod run;

pub use render::{
    DigestError, DigestItem, DigestView, Snippet, SourceHealth, VolumeNote, WatchlistCount,
    WatchlistSection, direction, render_html, render_html_with, render_text, render_text_with,
    snippet,
};
