//! Feed items from RSS 0.9x/1.0/2.0, Atom and JSON Feed, through feed-rs.
//!
//! feed-rs reads bytes and honours the XML declaration's `encoding`. The fetcher has already
//! decoded the body (with the HTTP charset taking precedence, as browsers do), so every
//! declaration is rewritten to UTF-8 before parsing; otherwise a feed declared windows-1256
//! would be decoded a second time into mojibake.

use feed_rs::model::{Entry, Feed, Text};
use url::Url;

use super::text::html_to_text;

/// One item of a feed, with text already reduced to plain text.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// The feed's own item id (RSS guid, Atom id, JSON Feed id); `None` when the feed has none,
    /// so dedupe does not rely on an id made up from a title that may later be edited.
    pub guid: Option<String>,
    /// The item's link, absolute.
    pub url: Option<Url>,
    pub title: String,
    /// Plain text from the content, or the summary when there is no content.
    pub body: String,
    pub published: Option<chrono::DateTime<chrono::Utc>>,
    pub author: Option<String>,
    /// Primary language subtag of the item or, failing that, of the feed.
    pub language: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "{url}: not a feed (no RSS, Atom or JSON Feed root found); check that the source URL \
         points at the feed itself, or set kind = \"html\" for a web page"
    )]
    NotAFeed { url: String },
    #[error(
        "{url}: cannot parse the feed: {reason}; the site serves a broken feed, try again later or contact the publisher"
    )]
    Malformed { url: String, reason: String },
}

/// Parses an already-decoded feed document; relative links resolve against `base` (the URL the
/// feed was fetched from).
pub fn parse_feed(text: &str, base: &Url) -> Result<Vec<FeedItem>, ExtractError> {
    let text = declare_utf8(text.trim_start_matches('\u{feff}'));
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // An empty id marks "the feed gave none"; see FeedItem::guid.
        .id_generator(|_, _, _| String::new())
        .build();
    let mut feed = parser.parse(text.as_bytes()).map_err(|e| match e {
        feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ) => ExtractError::NotAFeed {
            url: base.to_string(),
        },
        other => ExtractError::Malformed {
            url: base.to_string(),
            reason: other.to_string(),
        },
    })?;
    drop(text);
    let feed_language = feed.language.as_deref().and_then(primary_language);
    // Each parsed entry is dropped once its item is made, so a huge feed is not held twice.
    let entries = std::mem::take(&mut feed.entries);
    Ok(entries
        .into_iter()
        .map(|entry| item(&entry, &feed, base, feed_language.as_deref()))
        .collect())
}

fn item(entry: &Entry, feed: &Feed, base: &Url, feed_language: Option<&str>) -> FeedItem {
    let guid = Some(entry.id.trim()).filter(|id| !id.is_empty());
    let url = entry
        .links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .chain(entry.links.iter())
        .find_map(|l| absolute_http(base, &l.href))
        // An RSS guid that is a permalink is the item's URL when <link> is missing; like a
        // link, without its fragment.
        .or_else(|| {
            let mut url = guid.and_then(|g| Url::parse(g).ok()).filter(is_http)?;
            url.set_fragment(None);
            Some(url)
        });
    let body = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(html_to_text)
        .filter(|b| !b.is_empty())
        .or_else(|| entry.summary.as_ref().map(plain))
        .unwrap_or_default();
    let author = entry
        .authors
        .iter()
        .chain(feed.authors.iter().filter(|_| entry.authors.is_empty()))
        .find_map(|p| p.name.as_deref().or(p.email.as_deref()))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    FeedItem {
        guid: guid.map(str::to_string),
        url,
        title: entry.title.as_ref().map(plain).unwrap_or_default(),
        body,
        published: entry.published.or(entry.updated),
        author,
        language: entry
            .language
            .as_deref()
            .and_then(primary_language)
            .or_else(|| feed_language.map(str::to_string)),
    }
}

/// Text constructs may be plain text or (escaped) HTML; only the latter is parsed as HTML, so
/// a plain-text title such as "a <b> c" keeps its angle brackets.
fn plain(text: &Text) -> String {
    if text.content_type.to_string().starts_with("text/plain") {
        text.content
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        html_to_text(&text.content)
    }
}

fn absolute_http(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok().filter(is_http)?;
    url.set_fragment(None);
    Some(url)
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// "ar" from "ar-LB", "AR_lb" or "ar"; `None` for an empty or non-alphabetic tag.
pub(crate) fn primary_language(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    (!primary.is_empty() && primary.len() <= 8 && primary.chars().all(|c| c.is_ascii_alphabetic()))
        .then_some(primary)
}

/// Makes the UTF-8 text read as UTF-8 whatever it declares: every XML declaration's
/// `encoding="…"` becomes UTF-8, and NUL (never legal in XML) becomes U+FFFD.
///
/// Not only the leading declaration: feed-rs switches quick-xml's decoder at *any*
/// `<?xml … encoding=…?>`, so one later in the document decoded the rest as mojibake, or
/// (once quick-xml's start-up buffer was consumed) panicked. Leading NULs such as
/// `\0<\0?` would make quick-xml guess UTF-16.
fn declare_utf8(text: &str) -> std::borrow::Cow<'_, str> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("<?xml").map(|i| from + i) {
        let target_end = at + "<?xml".len();
        // `<?xml-stylesheet …?>` and other processing instructions are not declarations.
        let is_declaration = text[target_end..]
            .chars()
            .next()
            .is_some_and(|c| c == '?' || c.is_ascii_whitespace());
        let Some(close) = text[target_end..].find("?>").map(|i| target_end + i) else {
            break;
        };
        if is_declaration {
            encoding_values(text, target_end, close, &mut spans);
            from = close;
        } else {
            from = target_end;
        }
    }
    if spans.is_empty() && !text.contains('\0') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        out.push_str(&text[copied..start]);
        out.push_str("UTF-8");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out.replace('\0', "\u{fffd}").into()
}

/// Byte ranges of every `encoding = "VALUE"` value in `text[from..to]` (a declaration's
/// content), quotes excluded.
fn encoding_values(text: &str, from: usize, to: usize, spans: &mut Vec<(usize, usize)>) {
    let content = &text[from..to];
    let mut pos = 0;
    while let Some(i) = content[pos..].find("encoding") {
        let after_name = pos + i + "encoding".len();
        pos = after_name;
        let rest = content[after_name..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let value = rest.trim_start();
        let Some(quote) = value.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            continue;
        };
        let value_start = content.len() - value.len() + 1;
        if let Some(len) = content[value_start..].find(quote) {
            spans.push((from + value_start, from + value_start + len));
            pos = value_start + len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example.org/feeds/main.xml").unwrap()
    }

    fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    const RSS2: &str = r#"<?xml version="1.0" encoding="windows-1256"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>أخبار</title><link>https://news.example.org/</link><language>ar-LB</language>
    <item>
      <title>بوتين يتصل بنتنياهو &amp; يبحث الوضع في سوريا</title>
      <link>/ar/2023/10/28/putin-netanyahu</link>
      <guid isPermaLink="false">item-1</guid>
      <pubDate>Sat, 28 Oct 2023 14:05:00 +0300</pubDate>
      <dc:creator>مراسل بيروت</dc:creator>
      <description><![CDATA[<p>أجرى الرئيس الروسي <b>فلاديمير بوتين</b> اتصالاً.</p><p>وبحث الجانبان التطورات.</p>]]></description>
    </item>
    <item>
      <title>Russia and Israel discuss Syria</title>
      <guid>https://news.example.org/en/2023/10/28/russia-israel</guid>
      <description>Tags &lt;b&gt;are&lt;/b&gt; markup, &amp;lt;this&amp;gt; is text</description>
    </item>
  </channel>
</rss>"#;

    #[test]
    fn rss2_items_with_arabic_and_a_misleading_encoding_declaration() {
        let items = parse_feed(RSS2, &base()).unwrap();
        assert_eq!(items.len(), 2);
        let ar = &items[0];
        assert_eq!(ar.title, "بوتين يتصل بنتنياهو & يبحث الوضع في سوريا");
        assert_eq!(
            ar.url.as_ref().unwrap().as_str(),
            "https://news.example.org/ar/2023/10/28/putin-netanyahu"
        );
        assert_eq!(ar.guid.as_deref(), Some("item-1"));
        assert_eq!(
            ar.body,
            "أجرى الرئيس الروسي فلاديمير بوتين اتصالاً.\n\nوبحث الجانبان التطورات."
        );
        assert_eq!(ar.published, Some(utc("2023-10-28T11:05:00Z")));
        assert_eq!(ar.author.as_deref(), Some("مراسل بيروت"));
        assert_eq!(ar.language.as_deref(), Some("ar"));

        let en = &items[1];
        assert_eq!(
            en.url.as_ref().unwrap().as_str(),
            "https://news.example.org/en/2023/10/28/russia-israel",
            "a permalink guid stands in for a missing <link>"
        );
        assert_eq!(en.body, "Tags are markup, <this> is text");
        assert_eq!(en.published, None);
    }

    #[test]
    fn atom_entries_with_relative_links_and_html_content() {
        let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>Example</title><id>urn:x</id><updated>2023-10-28T12:00:00Z</updated>
  <author><name>Desk</name></author>
  <entry xml:lang="ar">
    <title type="html">موسكو &lt;b&gt;وتل أبيب&lt;/b&gt;</title>
    <link rel="alternate" href="entries/42#top"/>
    <link rel="enclosure" href="https://cdn.example.org/a.mp3"/>
    <id>tag:example.org,2023:42</id>
    <published>2023-10-28T09:00:00+03:00</published>
    <updated>2023-10-29T09:00:00Z</updated>
    <summary>ملخص</summary>
    <content type="html">&lt;p&gt;النص الكامل&lt;/p&gt;&lt;p&gt;فقرة ثانية&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Kremlin statement</title>
    <link href="https://example.org/k"/>
    <id>tag:example.org,2023:43</id>
    <updated>2023-10-29T10:00:00Z</updated>
    <summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Short <em>summary</em></p></div></summary>
  </entry>
</feed>"#;
        let items = parse_feed(atom, &base()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].title, "موسكو وتل أبيب");
        assert_eq!(
            items[0].url.as_ref().unwrap().as_str(),
            "https://news.example.org/feeds/entries/42"
        );
        assert_eq!(items[0].body, "النص الكامل\n\nفقرة ثانية");
        assert_eq!(items[0].published, Some(utc("2023-10-28T06:00:00Z")));
        assert_eq!(items[0].author.as_deref(), Some("Desk"));
        assert_eq!(items[1].title, "Kremlin statement");
        assert_eq!(items[1].body, "Short summary");
        assert_eq!(items[1].published, Some(utc("2023-10-29T10:00:00Z")));
        assert_eq!(items[1].guid.as_deref(), Some("tag:example.org,2023:43"));
    }

    #[test]
    fn rss1_rdf_items() {
        let rdf = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://example.org/rss"><title>RDF</title><link>https://example.org/</link>
    <description>d</description>
    <items><rdf:Seq><rdf:li resource="https://example.org/1"/><rdf:li resource="https://example.org/2"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://example.org/1"><title>الكرملين يعلق</title><link>https://example.org/1</link>
    <description>تصريح جديد</description><dc:date>2023-10-28T10:00:00Z</dc:date></item>
  <item rdf:about="https://example.org/2"><title>Israel responds</title><link>https://example.org/2</link></item>
</rdf:RDF>"#;
        let items = parse_feed(rdf, &base()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].title, "الكرملين يعلق");
        assert_eq!(items[0].body, "تصريح جديد");
        assert_eq!(
            items[0].url.as_ref().unwrap().as_str(),
            "https://example.org/1"
        );
        assert_eq!(items[1].title, "Israel responds");
    }

    #[test]
    fn json_feed_items() {
        let json = r#"{
          "version": "https://jsonfeed.org/version/1.1",
          "title": "JSON", "language": "ar",
          "items": [
            {"id": "1", "url": "https://example.org/ar/1", "title": "روسيا وإسرائيل",
             "content_html": "<p>نص <a href='x'>الخبر</a></p>", "date_published": "2023-10-28T14:05:00+03:00",
             "authors": [{"name": "محرر"}]},
            {"id": "2", "url": "/en/2", "title": "English item", "content_text": "Body text",
             "authors": [{"name": "Desk"}]}
          ]}"#;
        let items = parse_feed(json, &base()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].title, "روسيا وإسرائيل");
        assert_eq!(items[0].body, "نص الخبر");
        assert_eq!(items[0].author.as_deref(), Some("محرر"));
        assert_eq!(items[0].published, Some(utc("2023-10-28T11:05:00Z")));
        assert_eq!(items[0].language.as_deref(), Some("ar"));
        assert_eq!(
            items[1].url.as_ref().unwrap().as_str(),
            "https://news.example.org/en/2"
        );
        assert_eq!(items[1].body, "Body text");
        assert_eq!(
            items[1].language.as_deref(),
            Some("ar"),
            "the feed's language"
        );
    }

    #[test]
    fn html_page_is_not_a_feed() {
        let err = parse_feed("<html><body>hi</body></html>", &base()).unwrap_err();
        assert!(matches!(err, ExtractError::NotAFeed { .. }), "{err}");
        assert!(err.to_string().contains("news.example.org"), "{err}");
        let err = parse_feed("plain text", &base()).unwrap_err();
        assert!(matches!(err, ExtractError::NotAFeed { .. }));
    }

    #[test]
    fn declaration_rewrite() {
        assert_eq!(
            declare_utf8("<?xml version='1.0' encoding='ISO-8859-6' standalone='yes'?><rss/>"),
            "<?xml version='1.0' encoding='UTF-8' standalone='yes'?><rss/>"
        );
        assert_eq!(
            declare_utf8("\n <?xml version=\"1.0\" encoding = \"cp1256\"?><a/>"),
            "\n <?xml version=\"1.0\" encoding = \"UTF-8\"?><a/>"
        );
        assert_eq!(
            declare_utf8("<?xml version=\"1.0\"?><a/>"),
            "<?xml version=\"1.0\"?><a/>"
        );
        assert_eq!(declare_utf8("{\"a\":1}"), "{\"a\":1}");
    }

    #[test]
    fn primary_language_subtags() {
        assert_eq!(primary_language("ar-LB").as_deref(), Some("ar"));
        assert_eq!(primary_language("EN_us").as_deref(), Some("en"));
        assert_eq!(primary_language(" ").as_deref(), None);
    }

    /// Every feed-rs fixture: parse_feed must not panic, and must return items wherever feed-rs
    /// itself (its recorded `.serde.json` output) has entries.
    #[test]
    fn feed_rs_fixture_suite() {
        let dir = crate::extract::corpus_dir().join("feeds/suites/feed-rs");
        let mut checked = 0;
        let mut with_items = 0;
        for sub in ["atom", "jsonfeed", "rss0", "rss1", "rss2", "xml"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".serde.json") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                let (text, _) = crate::fetch::charset::decode(&bytes, None);
                let base = Url::parse("https://fixture.example/feed").unwrap();
                let result = parse_feed(&text, &base);
                checked += 1;
                let stem = name.rsplit_once('.').unwrap().0;
                let expected = path.with_file_name(format!("{stem}.serde.json"));
                let Ok(expected) = std::fs::read_to_string(&expected) else {
                    continue;
                };
                let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
                let want = expected["entries"].as_array().map_or(0, Vec::len);
                let items = result.unwrap_or_else(|e| panic!("{sub}/{name}: {e}"));
                assert_eq!(items.len(), want, "{sub}/{name}");
                let titled = expected["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| e["title"]["content"].is_string())
                    .count();
                let our_titled = items.iter().filter(|i| !i.title.is_empty()).count();
                assert!(
                    our_titled >= titled.saturating_sub(1),
                    "{sub}/{name}: titles"
                );
                if want > 0 {
                    with_items += 1;
                }
            }
        }
        println!("feed-rs fixtures: {checked} parsed without panic, {with_items} with items");
        assert!(checked >= 60, "only {checked} fixtures found");
    }

    #[test]
    fn iso_8859_1_fixture_decodes_through_charset_then_parses() {
        let path =
            crate::extract::corpus_dir().join("feeds/suites/feed-rs/rss1/rss_1.0_iso8859.xml");
        let bytes = std::fs::read(path).unwrap();
        let (text, encoding) = crate::fetch::charset::decode(&bytes, Some("application/xml"));
        assert_eq!(encoding.name(), "windows-1252");
        let items = parse_feed(&text, &base()).unwrap();
        assert!(!items.is_empty());
        assert!(!items.iter().any(|i| i.title.contains('\u{FFFD}')));
    }
}
