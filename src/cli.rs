//! Command-line definitions (clap derive) — the contract in ARCHITECTURE.md §CLI.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "marsad",
    version,
    about = "Media monitoring: feeds and news pages, Arabic-aware watchlists, email digests"
)]
pub struct Cli {
    /// Path of marsad.toml.
    #[arg(
        long,
        global = true,
        env = "MARSAD_CONFIG",
        default_value = "config/marsad.toml"
    )]
    pub config: PathBuf,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DigestFormat {
    Html,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, sources and watchlists; exit 2 with file:line:col errors.
    Check,
    /// Refresh every source (or the named ones) once, then exit.
    Fetch {
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
    },
    /// Run the daemon: scheduled refreshes and digests until SIGTERM; SIGHUP reloads.
    Run,
    /// Preview or send digests.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// List stored articles.
    Articles {
        #[arg(long, default_value = "24h", value_parser = parse_since)]
        since: humantime::Duration,
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
    },
    /// List stories: near-duplicate articles from any source grouped together.
    Stories {
        #[arg(long, default_value = "24h", value_parser = parse_since)]
        since: humantime::Duration,
        /// Show one story with the similarity that joined each article.
        #[arg(long, value_name = "ID")]
        explain: Option<i64>,
        /// JSON Lines output (one story per line).
        #[arg(long)]
        json: bool,
    },
    /// List watchlist matches.
    Matches {
        #[arg(long)]
        watchlist: Option<String>,
        #[arg(long, default_value = "24h", value_parser = parse_since)]
        since: humantime::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Offline watchlist tools.
    Watchlist {
        #[command(subcommand)]
        command: WatchlistCommand,
    },
    /// Source tools.
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Extract one article page (a URL or a local HTML file).
    Extract {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Source health, last and next runs, digests.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over stored articles (Arabic-aware: clitics, hamza, ta marbuta, diacritics).
    Search {
        /// Words that must all occur (in title or body).
        query: String,
        /// Only articles fetched within this long (default: all stored).
        #[arg(long, value_parser = parse_since)]
        since: Option<humantime::Duration>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Delete articles older than `[retention]` allows (the daemon does this daily).
    Prune {
        #[arg(long)]
        json: bool,
    },
    /// Serve the bundled demo sources on loopback, run one full cycle and write a digest.
    Demo {
        /// Where the demo's configuration, database and outbox go.
        #[arg(long, default_value = "marsad-demo")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Print a digest of what is pending (nothing is recorded or sent).
    Preview {
        name: Option<String>,
        #[arg(long, value_parser = parse_since)]
        since: Option<humantime::Duration>,
        #[arg(long, value_enum, default_value_t = DigestFormat::Text)]
        format: DigestFormat,
    },
    /// Record and send the digest now (exactly once per period), and retry pending ones.
    Send {
        name: Option<String>,
        /// Send a one-off copy of the current period to this address instead (for trying a
        /// template); nothing is recorded, so the period's digest is still sent as usual.
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WatchlistCommand {
    /// Run a watchlist over texts (--texts) or over stored articles (--since): which match, and
    /// why; with --since, what would newly match and what would stop matching.
    Test {
        /// Watchlist name (from the configuration) or a path to a watchlist TOML file.
        watchlist: String,
        /// JSON Lines with {"id", "text"} or {"id", "title", "body"}.
        #[arg(long, required_unless_present = "since", conflicts_with = "since")]
        texts: Option<PathBuf>,
        /// Compare the watchlist file as it is now with the matches stored for articles
        /// fetched in this period (e.g. 30d).
        #[arg(long, value_parser = parse_since)]
        since: Option<humantime::Duration>,
        /// JSON Lines output (with --since; --texts always prints JSON Lines).
        #[arg(long)]
        json: bool,
    },
    /// Match the stored articles of a period against a watchlist and store the new matches.
    Backfill {
        /// Watchlist name from the configuration.
        watchlist: String,
        #[arg(long, default_value = "7d", value_parser = parse_since)]
        since: humantime::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Fetch one source and show what would be stored; stores nothing.
    Test {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Append the feeds of an OPML file to sources.toml (URLs already configured are skipped).
    Import { file: PathBuf },
    /// Print the configured sources as OPML.
    Export,
}

fn parse_since(s: &str) -> Result<humantime::Duration, String> {
    s.parse::<humantime::Duration>()
        .map_err(|e| format!("{e}; expected a duration like 24h, 30m or 7d"))
}
