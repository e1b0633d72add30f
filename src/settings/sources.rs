//! The sources file: one `[[source]]` table per site or feed.

use std::collections::HashMap;

use toml::Spanned;

use super::error::{ConfigError, SourceText};
use super::raw::{self, RawSource};
use super::{NamedPath, SourceConfig, SourceKind, values};

/// Reads and validates the sources file named in `marsad.toml` (`main`).
pub(crate) fn load(
    main: &SourceText<'_>,
    named: &NamedPath,
    errors: &mut Vec<ConfigError>,
) -> Vec<SourceConfig> {
    let text = match std::fs::read_to_string(&named.path) {
        Ok(text) => text,
        Err(e) => {
            if named.report_missing {
                let message = format!("cannot read sources file \"{}\": {e}", named.path.display());
                errors.push(named.error(main, "sources", message));
            }
            return Vec::new();
        }
    };
    let src = SourceText {
        path: &named.path,
        text: &text,
    };
    let (doc, syntax_error) = raw::parse_document(&src);
    if let Some(e) = syntax_error {
        errors.push(e);
        return Vec::new();
    }
    let mut sources = Vec::new();
    // id → byte offset of its first definition, to point the user at both.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (key, value) in raw::entries(&doc) {
        if key.get_ref() != "source" {
            errors.push(raw::unknown_key(&src, key, &["source"]));
            continue;
        }
        for item in raw::array_of_tables(&src, "source", value, errors) {
            if let Some(source) = raw::decode::<RawSource>(&src, item, errors)
                .and_then(|source| validate(&src, source, &mut seen, errors))
            {
                sources.push(source);
            }
        }
    }
    sources
}

/// Checks one source; `None` (with errors pushed) when anything is wrong with it.
fn validate(
    src: &SourceText<'_>,
    source: RawSource,
    seen: &mut HashMap<String, usize>,
    errors: &mut Vec<ConfigError>,
) -> Option<SourceConfig> {
    let errors_before = errors.len();
    let id = source.id.get_ref();
    let id_at = source.id.span().start;
    if !values::is_valid_id(id) {
        errors.push(src.error(
            id_at,
            format!(
                "source id \"{id}\" may only contain lower-case letters a-z, digits 0-9 and \"-\", e.g. \"bbc-arabic\""
            ),
        ));
    } else if let Some(first) = seen.get(id) {
        errors.push(src.error(
            id_at,
            format!(
                "duplicate source id \"{id}\"; first defined on line {}",
                src.line_of(*first)
            ),
        ));
    } else {
        seen.insert(id.clone(), id_at);
    }

    let url = match url::Url::parse(source.url.get_ref()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        Ok(_) => {
            errors.push(src.error(
                source.url.span().start,
                format!(
                    "source URL \"{}\" must start with http:// or https://",
                    source.url.get_ref()
                ),
            ));
            None
        }
        Err(e) => {
            errors.push(src.error(
                source.url.span().start,
                format!(
                    "invalid source URL \"{}\": {e}; expected a full URL like \"https://example.org/news/\"",
                    source.url.get_ref()
                ),
            ));
            None
        }
    };

    let poll = source
        .poll
        .as_ref()
        .and_then(|p| super::parse_schedule(src, p, errors));

    let timezone = source.timezone.as_ref().and_then(|tz| {
        super::values::timezone(tz.get_ref())
            .map_err(|message| errors.push(src.error(tz.span().start, message)))
            .ok()
    });

    let links = source.listing.and_then(|l| l.links);
    let max_age = source.max_age.as_ref().and_then(|age| {
        values::duration(age.get_ref())
            .map_err(|message| errors.push(src.error(age.span().start, message)))
            .ok()
    });
    let (title, body, published) = source
        .article
        .map(|a| (a.title, a.body, a.published))
        .unwrap_or_default();
    for selector in [&links, &title, &body, &published].into_iter().flatten() {
        check_selector(src, selector, errors);
    }
    if let Some(age) = &source.max_age
        && *source.kind.get_ref() != SourceKind::Sitemap
    {
        errors.push(src.error(
            age.span().start,
            "max_age applies to sitemap sources only; remove it or set kind = \"sitemap\"",
        ));
    }

    if errors.len() > errors_before {
        return None;
    }
    Some(SourceConfig {
        name: source.name.unwrap_or_else(|| id.clone()),
        id: source.id.into_inner(),
        kind: source.kind.into_inner(),
        url: url?,
        language: source.language,
        timezone,
        poll,
        links: links.map(Spanned::into_inner),
        article_title: title.map(Spanned::into_inner),
        article_body: body.map(Spanned::into_inner),
        article_published: published.map(Spanned::into_inner),
        full_text: source.full_text,
        max_age,
    })
}

fn check_selector(src: &SourceText<'_>, css: &Spanned<String>, errors: &mut Vec<ConfigError>) {
    if let Err(message) = crate::extract::parse_selector(css.get_ref()) {
        errors.push(src.error(
            css.span().start,
            format!("invalid CSS selector \"{}\": {message}", css.get_ref()),
        ));
    }
}
