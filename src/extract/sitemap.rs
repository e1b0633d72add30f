//! XML sitemaps: `<sitemapindex>` (a list of sitemaps) and `<urlset>` (a list of pages),
//! including Google news sitemaps (`<news:news>` with `news:publication_date` and `news:title`),
//! plain or gzip-compressed (`.xml.gz`, served as `application/gzip` or `application/x-gzip`,
//! or recognised by the gzip magic bytes).
//!
//! Elements are matched by local name, so any namespace prefix works; unknown elements (images,
//! videos, alternates) are ignored.

use std::io::Read;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use quick_xml::events::Event;
use url::Url;

/// One `<url>` of a urlset.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub url: Url,
    pub lastmod: Option<DateTime<Utc>>,
    /// `news:publication_date`.
    pub published: Option<DateTime<Utc>>,
    /// `news:title`.
    pub title: Option<String>,
}

impl Entry {
    /// The date that says how recent the entry is: publication, else last modification.
    pub fn date(&self) -> Option<DateTime<Utc>> {
        self.published.or(self.lastmod)
    }
}

/// One `<sitemap>` of a sitemap index.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub url: Url,
    pub lastmod: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sitemap {
    Index(Vec<Child>),
    Urls(Vec<Entry>),
}

#[derive(Debug, thiserror::Error)]
pub enum SitemapError {
    #[error("not a sitemap: the document is neither <urlset> nor <sitemapindex>")]
    NotASitemap,
    #[error("invalid XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("cannot decompress the gzip sitemap: {0}")]
    Gzip(String),
    #[error("the decompressed sitemap is larger than {0} bytes; raise [http].max_body")]
    TooLarge(u64),
}

/// Undoes gzip when the body is compressed (by magic bytes; the content type and `.gz` ending
/// only confirm it), refusing to inflate beyond `limit` bytes.
pub fn decompress(bytes: &[u8], limit: u64) -> Result<Vec<u8>, SitemapError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SitemapError::Gzip(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(SitemapError::TooLarge(limit));
    }
    Ok(out)
}

/// Parses a sitemap document; relative `<loc>`s resolve against `base`, invalid ones are
/// skipped.
pub fn parse(xml: &[u8], base: &Url) -> Result<Sitemap, SitemapError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut root: Option<String> = None;
    let mut path: Vec<String> = Vec::new();
    let mut children = Vec::new();
    let mut entries = Vec::new();
    let mut current: Option<Fields> = None;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| SitemapError::Xml {
                position: reader.buffer_position(),
                message: e.to_string(),
            })?;
        match event {
            Event::Start(e) => {
                let name = local(e.local_name().as_ref());
                if root.is_none() {
                    if name != "urlset" && name != "sitemapindex" {
                        return Err(SitemapError::NotASitemap);
                    }
                    root = Some(name.clone());
                } else if path.len() == 1 && (name == "url" || name == "sitemap") {
                    current = Some((None, None, None, None));
                }
                path.push(name);
            }
            Event::End(_) => {
                if let Some(name) = path.pop()
                    && path.len() == 1
                    && let Some((loc, lastmod, published, title)) = current.take()
                {
                    let Some(url) = loc.and_then(|l| base.join(l.trim()).ok()) else {
                        continue;
                    };
                    let lastmod = lastmod.as_deref().and_then(parse_w3c_date);
                    if name == "sitemap" {
                        children.push(Child { url, lastmod });
                    } else {
                        entries.push(Entry {
                            url,
                            lastmod,
                            published: published.as_deref().and_then(parse_w3c_date),
                            title: title
                                .map(|t| t.trim().to_string())
                                .filter(|t| !t.is_empty()),
                        });
                    }
                }
            }
            Event::Text(t) => {
                store_text(&path, &mut current, t.to_string());
            }
            Event::CData(t) => {
                store_text(&path, &mut current, t.to_string());
            }
            Event::GeneralRef(r) => {
                // quick-xml reports entity references (`&amp;`) apart from the text around them.
                let text = match &*r {
                    "amp" => "&".to_string(),
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    other => r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                        .unwrap_or_else(|| format!("&{other};")),
                };
                store_text(&path, &mut current, text);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root.as_deref() {
        Some("sitemapindex") => Ok(Sitemap::Index(children)),
        Some(_) => Ok(Sitemap::Urls(entries)),
        None => Err(SitemapError::NotASitemap),
    }
}

type Fields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Appends text to the field the element path names (`loc`, `lastmod`, and inside `news`:
/// `publication_date`, `title`).
fn store_text(path: &[String], current: &mut Option<Fields>, text: String) {
    let Some((loc, lastmod, published, title)) = current.as_mut() else {
        return;
    };
    let target = match path {
        [_, _, leaf] if leaf == "loc" => loc,
        [_, _, leaf] if leaf == "lastmod" => lastmod,
        [_, _, news, leaf] if news == "news" && leaf == "publication_date" => published,
        [_, _, news, leaf] if news == "news" && leaf == "title" => title,
        _ => return,
    };
    target.get_or_insert_with(String::new).push_str(&text);
}

fn local(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// W3C Datetime as sitemaps use it: `2024-05-28`, `2024-05-28T10:15Z`,
/// `2024-05-28T10:15:30+03:00`, with or without fractions; a time without a zone is UTC.
pub fn parse_w3c_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(d) = DateTime::parse_from_str(text, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    let naive = text.trim_end_matches('Z');
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example/sitemaps/news.xml").unwrap()
    }

    #[test]
    fn news_sitemap_entries_carry_publication_date_and_title() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>https://news.example/2026/11/24/port-lanes?a=1&amp;b=2</loc>
    <lastmod>2026-11-24T09:00:00Z</lastmod>
    <image:image><image:loc>https://news.example/i.jpg</image:loc><image:title>photo</image:title></image:image>
    <news:news>
      <news:publication><news:name>News</news:name><news:language>ar</news:language></news:publication>
      <news:publication_date>2026-11-24T11:30:00+02:00</news:publication_date>
      <news:title><![CDATA[الحكومة تقر خطة الطوارئ & more]]></news:title>
    </news:news>
  </url>
  <url><loc>/relative/page</loc><lastmod>2026-11-20</lastmod></url>
  <url><lastmod>2026-11-20</lastmod></url>
</urlset>"#;
        let Sitemap::Urls(entries) = parse(xml.as_bytes(), &base()).unwrap() else {
            panic!("expected a urlset");
        };
        assert_eq!(entries.len(), 2, "the entry without <loc> is skipped");
        assert_eq!(
            entries[0].url.as_str(),
            "https://news.example/2026/11/24/port-lanes?a=1&b=2"
        );
        assert_eq!(
            entries[0].published.unwrap().to_rfc3339(),
            "2026-11-24T09:30:00+00:00"
        );
        assert_eq!(
            entries[0].title.as_deref(),
            Some("الحكومة تقر خطة الطوارئ & more")
        );
        assert_eq!(
            entries[1].url.as_str(),
            "https://news.example/relative/page"
        );
        assert_eq!(
            entries[1].date().unwrap().to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert_eq!(entries[1].title, None);
    }

    #[test]
    fn sitemap_index_lists_children_with_lastmod() {
        let xml = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://news.example/s/2026-11.xml.gz</loc><lastmod>2026-11-24T10:00+03:00</lastmod></sitemap>
  <sitemap><loc>https://news.example/s/2019-01.xml</loc></sitemap>
</sitemapindex>"#;
        let Sitemap::Index(children) = parse(xml.as_bytes(), &base()).unwrap() else {
            panic!("expected an index");
        };
        assert_eq!(children.len(), 2);
        assert_eq!(
            children[0].lastmod.unwrap().to_rfc3339(),
            "2026-11-24T07:00:00+00:00"
        );
        assert_eq!(children[1].lastmod, None);
    }

    #[test]
    fn html_is_not_a_sitemap_and_broken_xml_is_reported() {
        let err = parse(b"<html><body>x</body></html>", &base()).unwrap_err();
        assert!(matches!(err, SitemapError::NotASitemap), "{err}");
        let err = parse(b"<urlset><url><loc>x</url></urlset>", &base()).unwrap_err();
        assert!(matches!(err, SitemapError::Xml { .. }), "{err}");
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        use std::io::Write;
        let xml = b"<urlset><url><loc>https://a.example/x</loc></url></urlset>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml).unwrap();
        let compressed = gz.finish().unwrap();
        assert_eq!(decompress(&compressed, 1000).unwrap(), xml);
        assert_eq!(
            decompress(xml, 1000).unwrap(),
            xml,
            "plain XML passes through"
        );
        assert!(matches!(
            decompress(&compressed, 10),
            Err(SitemapError::TooLarge(10))
        ));
    }
}
