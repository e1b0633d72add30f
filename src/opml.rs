//! OPML import and export of sources: the format every feed reader trades subscriptions in.
//!
//! Import reads every `<outline>` with an `xmlUrl` (at any depth: folders are flattened) and
//! produces `[[source]]` entries to append to sources.toml, skipping URLs already configured and
//! deriving ids from titles. Export writes feeds as `type="rss"` outlines with `xmlUrl`, and HTML
//! listings as `type="link"` outlines with `htmlUrl`.

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::Event;

#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("{file}: not valid OPML at byte {position}: {message}")]
    Xml {
        file: String,
        position: u64,
        message: String,
    },
}

/// A subscription found in an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    pub title: Option<String>,
    pub xml_url: String,
}

/// Every outline with an `xmlUrl`, in document order.
pub fn parse(file: &str, text: &str) -> Result<Vec<Outline>, OpmlError> {
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| OpmlError::Xml {
            file: file.to_string(),
            position: reader.buffer_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().into_inner() == "outline" => {
                let (mut title, mut text_attr, mut xml_url) = (None, None, None);
                for attr in e.attributes().flatten() {
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default();
                    if value.is_empty() {
                        continue;
                    }
                    match attr.key.local_name().into_inner() {
                        "title" => title = Some(value),
                        "text" => text_attr = Some(value),
                        "xmlUrl" | "xmlurl" => xml_url = Some(value),
                        _ => {}
                    }
                }
                if let Some(xml_url) = xml_url {
                    out.push(Outline {
                        title: title.or(text_attr),
                        xml_url,
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// A source id from a title (`"BBC Arabic"` → `bbc-arabic`), else from the URL's host and path,
/// made unique against `taken` (which it joins).
pub fn derive_id(title: Option<&str>, url: &str, taken: &mut HashSet<String>) -> String {
    let slug = |s: &str| {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        out.trim_end_matches('-')
            .chars()
            .take(40)
            .collect::<String>()
    };
    let from_url = || {
        url::Url::parse(url)
            .ok()
            .map(|u| {
                let host = u.host_str().unwrap_or("").trim_start_matches("www.");
                slug(&format!("{host} {}", u.path()))
            })
            .unwrap_or_default()
    };
    let mut base = title.map(slug).unwrap_or_default();
    // Titles without Latin letters (Arabic ones) give too little; the host says more.
    if base.len() < 3 {
        base = from_url();
    }
    if base.is_empty() {
        base = "feed".to_string();
    }
    let base = base.trim_end_matches('-').to_string();
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `[[source]]` block for one imported feed.
pub fn source_entry(id: &str, outline: &Outline) -> String {
    let mut out = format!("\n[[source]]\nid = {}\n", toml_str(id));
    if let Some(title) = &outline.title {
        out.push_str(&format!("name = {}\n", toml_str(title)));
    }
    out.push_str(&format!(
        "kind = \"feed\"\nurl = {}\n",
        toml_str(&outline.xml_url)
    ));
    out
}

fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// OPML 2.0 for `(name, kind, url)` triples.
pub fn render(title: &str, sources: &[(String, &str, String)]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    out.push_str(&format!(
        "  <head><title>{}</title></head>\n  <body>\n",
        xml_escape(title)
    ));
    for (name, kind, url) in sources {
        let (name, url) = (xml_escape(name), xml_escape(url));
        if *kind == "feed" {
            out.push_str(&format!(
                "    <outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"/>\n"
            ));
        } else {
            out.push_str(&format!(
                "    <outline type=\"link\" text=\"{name}\" title=\"{name}\" htmlUrl=\"{url}\"/>\n"
            ));
        }
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_outlines_and_ids() {
        let text = r#"<opml version="1.0"><body><outline text="News">
            <outline text="BBC Arabic" type="rss" xmlUrl="https://feeds.bbci.co.uk/arabic/rss.xml"/>
            <outline title="الجزيرة" xmlUrl="https://www.aljazeera.net/rss"/>
            <outline text="no feed" htmlUrl="https://example.org/"/>
        </outline></body></opml>"#;
        let outlines = parse("x.opml", text).unwrap();
        assert_eq!(outlines.len(), 2);
        let mut taken = HashSet::from(["bbc-arabic".to_string()]);
        assert_eq!(
            derive_id(
                outlines[0].title.as_deref(),
                &outlines[0].xml_url,
                &mut taken
            ),
            "bbc-arabic-2"
        );
        assert_eq!(
            derive_id(
                outlines[1].title.as_deref(),
                &outlines[1].xml_url,
                &mut taken
            ),
            "aljazeera-net-rss"
        );
        assert!(parse("bad.opml", "<opml><body><outline></body>").is_err());
    }
}
