//! marsad — a media-monitoring daemon.
//!
//! One source refresh flows through the modules in this order (see `pipeline::refresh`):
//!
//! ```text
//! schedule ─► fetch ─► extract ─► normalize ─► store (dedupe) ─► matcher ─► digest ─► deliver
//! ```
//!
//! - [`settings`]: the TOML files users edit; every mistake reported as `file:line:col: message`.
//! - [`schedule`]: five-field cron expressions (croner) in a timezone.
//! - [`fetch`]: the one HTTP client — limits, conditional GET, charset decoding.
//! - [`extract`]: feed items (feed-rs), listing-page links and article pages (scraper).
//! - [`normalize`]: the Arabic-aware text normalizer (shared by matching and dedupe) and URL canonicalization.
//! - [`dedupe`]: near-duplicate detection (MinHash + LSH over word shingles) that groups articles into stories.
//! - [`store`]: the only module that writes SQL; SQLite or PostgreSQL behind one enum.
//! - [`matcher`]: all watchlists compiled into one matcher; hits with offsets explain every match.
//! - [`digest`]: selecting a period's matches and rendering HTML + text.
//! - [`deliver`]: outbox directory or SMTP; exactly-once bookkeeping lives in `digest::run` + `store`.
//! - [`pipeline`]: one refresh, end to end; [`daemon`]: the timers around it.
//!
//! - [`metrics`]: Prometheus counters and their endpoint (`[metrics] listen`).
//!
//! Digests read only from the store, so a crash between fetching and sending loses nothing.

pub mod cli;
pub mod daemon;
pub mod dedupe;
pub mod deliver;
pub mod demo;
pub mod digest;
pub mod extract;
pub mod fetch;
pub mod matcher;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod opml;
pub mod pipeline;
pub mod schedule;
pub mod settings;
pub mod store;
