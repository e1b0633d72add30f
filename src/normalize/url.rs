//! Canonical URLs: the exact-duplicate key for articles.
//!
//! The same article reaches us as many URLs: with campaign parameters from a newsletter, as the
//! AMP page from a social share, with raw Arabic in the path from one feed and percent-encoded
//! from another. `canonicalize` maps all of these to one string so dedupe can compare them.
//!
//! The result is a dedupe key, not a URL to fetch: an AMP-less or tracker-less variant is not
//! guaranteed to exist on every site, so the pipeline fetches the URL it was given and records
//! every URL it saw the article at.
//!
//! What is kept on purpose: the path's case (many servers are case-sensitive), the scheme
//! (http and https may be different sites), `www.`, trailing slashes, and the order of the
//! remaining query parameters (some sites route on it).

use url::Url;

/// Query parameters that only say where the click came from. `utm_*` is matched as a prefix.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "ttclid", "igshid", "mc_cid", "mc_eid", "ref_src", "_ga", "_gl",
];

/// The canonical form of `url` for duplicate detection (see the module docs for the rules).
pub fn canonicalize(url: &Url) -> Url {
    let mut out = url.clone();
    out.set_fragment(None);

    if let Some(host) = out.host_str() {
        let mut host = host.trim_end_matches('.');
        // Repeated (`amp.amp.example.org`) so that a canonical URL is its own canonical form;
        // a rest starting with `amp.` has a dot, so only the last step scans the name.
        while let Some(rest) = host
            .strip_prefix("amp.")
            .filter(|rest| rest.starts_with("amp.") || rest.contains('.'))
        {
            host = rest;
        }
        let canonical_host = host.to_owned();
        // A host of dots only (possible outside http) keeps them: an empty host would not
        // parse again.
        if canonical_host != out.host_str().unwrap_or_default() && !canonical_host.is_empty() {
            // Only fails for hosts that cannot be set, which a parsed http(s) host never is;
            // keeping the original host is the safe fallback.
            let _ = out.set_host(Some(&canonical_host));
        }
    }
    // `url` already drops a port equal to the scheme's default; a port equal to another
    // scheme's default (https on :80) is meaningful and kept.

    let path = canonical_path(out.path());
    out.set_path(&path);

    let query = out.query().map(canonical_query).unwrap_or_default();
    out.set_query(if query.is_empty() { None } else { Some(&query) });
    out
}

/// Parses `s` and returns its canonical form as a string.
pub fn canonical_str(s: &str) -> Result<String, url::ParseError> {
    Ok(canonicalize(&Url::parse(s.trim())?).into())
}

/// Percent-encoding made canonical, and AMP path variants (`…/amp`, `…/amp/`, `/amp/…`,
/// `….amp`) reduced to the regular article path.
///
/// Variants are reduced until none is left (`/x/amp/amp` is `/x`, as `/x/amp` is), so that a
/// canonical URL is its own canonical form: keys already stored compare equal to keys made
/// again from them. Each step only shortens a slice, so even a hostile
/// `/amp/amp/…/amp` of megabytes costs linear time.
fn canonical_path(path: &str) -> String {
    let path = canonical_escapes(path);
    // The path being reduced is `rest`, followed by one '/' when `slash`.
    let (mut rest, mut slash) = (path.as_str(), false);
    loop {
        if slash {
            if let Some(r) = rest.strip_suffix("/amp").filter(|r| !r.is_empty()) {
                rest = r;
                continue;
            }
        } else if let Some(r) = rest.strip_suffix("/amp/").filter(|r| !r.is_empty()) {
            (rest, slash) = (r, true);
            continue;
        } else if let Some(r) = rest.strip_suffix("/amp") {
            if r.is_empty() {
                return "/".to_owned();
            }
            rest = r;
            continue;
        } else if let Some(r) = rest.strip_suffix(".amp")
            // `/news/world-123.amp` (BBC and others); a bare `/.amp` is not an AMP variant.
            && !r.ends_with('/')
        {
            rest = r;
            continue;
        }
        // `/amp/news/…` (Al Jazeera and others); `/amp/` alone is a page called amp.
        if rest.starts_with("/amp/") && (rest.len() > "/amp/".len() || slash) {
            rest = &rest["/amp".len()..];
            continue;
        }
        break;
    }
    let mut out = rest.to_owned();
    if slash {
        out.push('/');
    }
    out
}

/// The query without trackers, AMP switches and empty pairs; escapes made canonical.
fn canonical_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(canonical_escapes)
        .filter(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            !is_dropped_param(key, value)
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_dropped_param(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("utm_")
        || TRACKING_PARAMS.contains(&key.as_str())
        || key == "amp"
        || (key == "outputtype" && value.eq_ignore_ascii_case("amp"))
}

/// Upper-case hex in every escape and decode escapes of unreserved characters (RFC 3986 §6.2.2),
/// so `%d8%a3`, `%D8%A3` and a raw `أ` (which `url` encodes as `%D8%A3`) all read the same, and
/// `%7E` reads `~`. Escapes of reserved characters (`%2F`) stay: decoding them changes meaning.
/// A `%` that starts no escape is escaped itself (`%25`), as it means a literal percent sign.
fn canonical_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2)))
        {
            let byte = hi * 16 + lo;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(hi)]));
                out.push(char::from(HEX_UPPER[usize::from(lo)]));
            }
            i += 3;
            continue;
        }
        // A stray `%` (not starting an escape) means itself: written `%25`, so that decoding a
        // later escape cannot turn it into a new one (`%a%41` → `%aA` → `%AA` on the next
        // pass; the key must be a fixed point).
        if bytes[i] == b'%' {
            out.push_str("%25");
            i += 1;
            continue;
        }
        // Everything else is copied through unchanged; `s` is valid UTF-8 and we only ever
        // split at ASCII bytes, so copying char by char keeps it valid.
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonical_str(s).unwrap()
    }

    #[test]
    fn lowercases_scheme_and_host_keeps_path_case() {
        assert_eq!(
            canon("HTTPS://News.Example.ORG/World/Story-A"),
            "https://news.example.org/World/Story-A"
        );
    }

    #[test]
    fn drops_fragment() {
        assert_eq!(
            canon("https://example.org/a/b#comments"),
            "https://example.org/a/b"
        );
    }

    #[test]
    fn drops_tracking_parameters_and_keeps_the_rest_in_order() {
        assert_eq!(
            canon(
                "https://example.org/a?id=7&utm_source=tw&UTM_Medium=social&fbclid=X&page=2&gclid=Y"
            ),
            "https://example.org/a?id=7&page=2"
        );
        for tracker in [
            "mc_cid=1",
            "mc_eid=2",
            "igshid=3",
            "ref_src=twsrc",
            "utm_campaign=x",
        ] {
            assert_eq!(
                canon(&format!("https://example.org/a?{tracker}")),
                "https://example.org/a",
                "{tracker}"
            );
        }
    }

    #[test]
    fn removes_empty_query() {
        assert_eq!(canon("https://example.org/a?"), "https://example.org/a");
        assert_eq!(canon("https://example.org/a?&&"), "https://example.org/a");
        assert_eq!(
            canon("https://example.org/a?utm_source=x&&b=1&"),
            "https://example.org/a?b=1"
        );
    }

    #[test]
    fn drops_default_ports_only() {
        assert_eq!(canon("http://example.org:80/a"), "http://example.org/a");
        assert_eq!(canon("https://example.org:443/a"), "https://example.org/a");
        assert_eq!(
            canon("https://example.org:8443/a"),
            "https://example.org:8443/a"
        );
        assert_eq!(
            canon("https://example.org:80/a"),
            "https://example.org:80/a"
        );
    }

    #[test]
    fn amp_variants_collapse_to_the_article() {
        let plain = "https://example.org/2024/05/story/";
        assert_eq!(canon("https://example.org/2024/05/story/amp/"), plain);
        assert_eq!(canon("https://example.org/2024/05/story/?amp=1"), plain);
        assert_eq!(canon("https://example.org/2024/05/story/?amp"), plain);
        assert_eq!(
            canon("https://example.org/2024/05/story/?outputType=amp"),
            plain
        );
        assert_eq!(canon("https://amp.example.org/2024/05/story/"), plain);
        assert_eq!(
            canon("https://example.org/news/story-1/amp"),
            "https://example.org/news/story-1"
        );
        assert_eq!(
            canon("https://www.bbc.com/arabic/articles/c1x2.amp"),
            "https://www.bbc.com/arabic/articles/c1x2"
        );
        assert_eq!(
            canon("https://www.aljazeera.net/amp/news/2024/5/1/x"),
            "https://www.aljazeera.net/news/2024/5/1/x"
        );
    }

    #[test]
    fn amp_lookalikes_are_kept() {
        // A host that is just "amp.org", a parameter that is not an AMP switch, a word ending in amp.
        assert_eq!(canon("https://amp.org/a"), "https://amp.org/a");
        assert_eq!(
            canon("https://example.org/a?outputType=print"),
            "https://example.org/a?outputType=print"
        );
        assert_eq!(
            canon("https://example.org/camp/ramp"),
            "https://example.org/camp/ramp"
        );
        assert_eq!(
            canon("https://example.org/amp/"),
            "https://example.org/amp/"
        );
    }

    #[test]
    fn percent_encoding_is_canonical() {
        assert_eq!(
            canon("https://example.org/%7euser/a%2db%2Fc?q=%e2%82%ac"),
            "https://example.org/~user/a-b%2Fc?q=%E2%82%AC"
        );
    }

    #[test]
    fn arabic_path_raw_and_encoded_are_equal() {
        let raw = canon("https://alkhanadeq.org.lb/post/1234/روسيا-وإسرائيل");
        let upper = canon(
            "https://alkhanadeq.org.lb/post/1234/%D8%B1%D9%88%D8%B3%D9%8A%D8%A7-%D9%88%D8%A5%D8%B3%D8%B1%D8%A7%D8%A6%D9%8A%D9%84",
        );
        let lower = canon(
            "https://alkhanadeq.org.lb/post/1234/%d8%b1%d9%88%d8%b3%d9%8a%d8%a7-%d9%88%d8%a5%d8%b3%d8%b1%d8%a7%d8%a6%d9%8a%d9%84",
        );
        assert_eq!(raw, upper);
        assert_eq!(raw, lower);
        assert!(raw.ends_with("/post/1234/%D8%B1%D9%88%D8%B3%D9%8A%D8%A7-%D9%88%D8%A5%D8%B3%D8%B1%D8%A7%D8%A6%D9%8A%D9%84"));
        // Arabic in the query too.
        assert_eq!(
            canon("https://example.org/search?q=لبنان"),
            canon("https://example.org/search?q=%d9%84%d8%a8%d9%86%d8%a7%d9%86")
        );
    }

    #[test]
    fn arabic_host_becomes_punycode() {
        assert_eq!(
            canon("https://مثال.إختبار/"),
            canon("https://xn--mgbh0fb.xn--kgbechtv/")
        );
    }

    #[test]
    fn is_idempotent() {
        for s in [
            "https://amp.example.org/2024/story/amp/?utm_source=x&a=%7e#top",
            "https://alkhanadeq.org.lb/post/1/روسيا?amp=1",
            "http://example.org:80/a?b&c=d",
        ] {
            let once = canon(s);
            assert_eq!(canon(&once), once, "{s}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_url() {
        assert!(canonical_str("not a url").is_err());
        assert_eq!(canon("  https://example.org/a  "), "https://example.org/a");
    }
}
