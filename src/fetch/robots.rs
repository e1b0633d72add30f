//! robots.txt rules per origin, parsed with the `texting_robots` crate and cached.
//!
//! RFC 9309 decides what a missing or broken file means: a 4xx answer (no file) allows
//! everything; a 5xx answer or a network failure means the site is unreachable and nothing may be
//! fetched, so that failure is *not* cached and the next request asks again. Parsed rules are
//! kept for [`TTL`] (the RFC's "SHOULD NOT use a cached version for more than 24 hours").

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::FetchError;

/// How long parsed rules are trusted before robots.txt is fetched again.
pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `Crawl-delay` honoured; a site asking for more still gets one request per minute.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);

/// One origin's rules.
#[derive(Clone, Debug)]
pub struct Rules {
    robot: Option<Arc<texting_robots::Robot>>,
}

impl Rules {
    pub fn allow_all() -> Rules {
        Rules { robot: None }
    }

    /// Rules of `txt` for our user agent. The agent's product token (`marsad` in
    /// `marsad/0.1 (+https://…)`) is what `User-agent:` lines name; an unparsable file allows
    /// everything, as the RFC asks parsers to be lenient.
    pub fn parse(user_agent: &str, txt: &[u8]) -> Rules {
        let token = product_token(user_agent);
        match texting_robots::Robot::new(token, txt) {
            Ok(robot) => Rules {
                robot: Some(Arc::new(robot)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "unparsable robots.txt; treating it as allowing everything");
                Rules::allow_all()
            }
        }
    }

    pub fn allowed(&self, url: &Url) -> bool {
        self.robot.as_ref().is_none_or(|r| r.allowed(url.as_str()))
    }

    /// `Crawl-delay`, capped at a minute.
    pub fn crawl_delay(&self) -> Option<Duration> {
        let secs = self.robot.as_ref()?.delay?;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f32(secs).min(MAX_CRAWL_DELAY))
    }
}

/// `marsad` from `marsad/0.1 (+https://example.org)`.
pub fn product_token(user_agent: &str) -> &str {
    user_agent
        .split(['/', ' '])
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("*")
}

/// `scheme://host:port`, the unit robots.txt applies to.
pub fn origin(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

pub fn robots_url(url: &Url) -> Option<Url> {
    url.join("/robots.txt").ok()
}

/// One origin's cached rules and when they were fetched.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Rules)>>>;

/// Origin → rules, one lock per origin so concurrent first requests to a host wait for one
/// robots.txt fetch instead of each making their own.
#[derive(Default)]
pub struct Cache {
    origins: Mutex<HashMap<String, Slot>>,
}

impl Cache {
    /// The cached rules for `origin`, loading them with `load` when absent or stale. A load
    /// error is returned and not cached.
    pub async fn rules<F, Fut>(&self, origin: &str, load: F) -> Result<Rules, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rules, FetchError>>,
    {
        let slot = {
            let mut origins = self
                .origins
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if origins.len() >= 4096 {
                origins.retain(|_, s| Arc::strong_count(s) > 1);
            }
            origins.entry(origin.to_string()).or_default().clone()
        };
        let mut entry = slot.lock().await;
        if let Some((at, rules)) = entry.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(rules.clone());
        }
        let rules = load().await?;
        *entry = Some((Instant::now(), rules.clone()));
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_token_is_the_name_before_the_version() {
        assert_eq!(product_token("marsad/0.1 (+https://x.org)"), "marsad");
        assert_eq!(product_token("marsad-test/1"), "marsad-test");
        assert_eq!(product_token(""), "*");
    }

    #[test]
    fn rules_for_our_agent_win_over_the_wildcard_group() {
        let txt = b"User-agent: *\nDisallow: /\n\nUser-agent: marsad\nDisallow: /private/\nCrawl-delay: 2\n";
        let rules = Rules::parse("marsad/0.1", txt);
        let url = |p: &str| Url::parse(&format!("https://example.org{p}")).unwrap();
        assert!(rules.allowed(&url("/post/1/x")));
        assert!(!rules.allowed(&url("/private/1")));
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(2)));
        let other = Rules::parse("otherbot/1", txt);
        assert!(!other.allowed(&url("/post/1/x")));
    }
}
