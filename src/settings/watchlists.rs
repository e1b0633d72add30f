//! The watchlists directory: one TOML file per watchlist, named by its file stem.

use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::NamedPath;
use super::error::{ConfigError, SourceText, literal_offset};
use super::raw::{self, RawMatch, Value};
use crate::matcher::WatchlistSpec;
use crate::model::Field;

/// The keys a watchlist file may have.
const WATCHLIST_KEYS: &[&str] = &[
    "title",
    "fields",
    "sources",
    "languages",
    "min_hits",
    "terms",
    "match",
];

/// Where a watchlist looks when its file does not say: where news text is.
const DEFAULT_FIELDS: &[Field] = &[Field::Title, Field::Body];

pub(crate) struct Watchlists {
    pub specs: Vec<WatchlistSpec>,
    /// Every watchlist file's name, valid or not, so a digest naming a broken watchlist is not
    /// also reported as naming an unknown one.
    pub names: Vec<String>,
    /// The files read, in order, for sorting errors.
    pub files: Vec<PathBuf>,
}

/// Reads every `*.toml` in the watchlists directory named in `marsad.toml` (`main`), sorted by
/// file name so the order (and the order of errors) does not depend on the file system.
///
/// `known_sources` are the source ids a watchlist's `sources` may name; `None` when the sources
/// file could not be read cleanly (its own errors say why; the names are not checked then).
pub(crate) fn load(
    main: &SourceText<'_>,
    named: &NamedPath,
    known_sources: Option<&[String]>,
    errors: &mut Vec<ConfigError>,
) -> Watchlists {
    let mut out = Watchlists {
        specs: Vec::new(),
        names: Vec::new(),
        files: Vec::new(),
    };
    let entries = match std::fs::read_dir(&named.path) {
        Ok(entries) => entries,
        Err(e) => {
            if named.report_missing {
                let message = format!(
                    "cannot read watchlists directory \"{}\": {e}",
                    named.path.display()
                );
                errors.push(named.error(main, "watchlists", message));
            }
            return out;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    files.sort();

    for path in files {
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let src = SourceText {
                    path: &path,
                    text: &text,
                };
                out.specs
                    .extend(read_watchlist(&src, &name, known_sources, errors));
            }
            Err(e) => errors.push(SourceText::whole_file(
                &path,
                format!("cannot read watchlist file: {e}"),
            )),
        }
        out.names.push(name);
        out.files.push(path);
    }
    out
}

/// Validates one watchlist file; `None` (with errors pushed) when anything is wrong with it.
fn read_watchlist(
    src: &SourceText<'_>,
    name: &str,
    known_sources: Option<&[String]>,
    errors: &mut Vec<ConfigError>,
) -> Option<WatchlistSpec> {
    let (doc, syntax_error) = raw::parse_document(src);
    if let Some(e) = syntax_error {
        errors.push(e);
        return None;
    }
    let errors_before = errors.len();
    let mut title = None;
    let mut fields = None;
    let mut groups = Some(Vec::new());
    let mut query = None;
    let mut has_match = false;
    let mut sources = Vec::new();
    let mut languages = Vec::new();
    let mut min_hits = 0;
    for (key, value) in raw::entries(&doc) {
        match key.get_ref().as_ref() {
            "title" => title = raw::decode::<String>(src, value, errors),
            "fields" => fields = raw::decode::<Spanned<Vec<Field>>>(src, value, errors),
            "terms" => groups = read_terms(src, value, errors),
            "sources" => sources = read_sources(src, value, known_sources, errors),
            "languages" => languages = read_languages(src, value, errors),
            "min_hits" => min_hits = read_min_hits(src, value, errors),
            "match" => {
                has_match = true;
                query = raw::decode::<RawMatch>(src, value, errors).map(|m| m.query);
            }
            _ => errors.push(raw::unknown_key(src, key, WATCHLIST_KEYS)),
        }
    }
    if let Some(fields) = &fields
        && fields.get_ref().is_empty()
    {
        errors.push(src.error(
            fields.span().start,
            "fields is empty; list where to look: some of \"title\", \"body\", \"url\", \"source\"",
        ));
    }
    if !has_match {
        errors.push(src.error(
            0,
            "missing [match] table; add [match] query = \"GROUP AND OTHER-GROUP\" using the groups in [terms]",
        ));
    }
    // A query is only checked against groups that were read cleanly; otherwise it would be
    // blamed for a mistake in [terms].
    if let (Some(groups), Some(query)) = (&groups, &query) {
        let names: Vec<String> = groups.iter().map(|(name, _)| name.clone()).collect();
        if let Err(e) = crate::matcher::query::parse(query.get_ref(), &names) {
            let span = query.span();
            let raw_literal = &src.text[span.clone()];
            errors.push(src.error(
                span.start + literal_offset(raw_literal, e.offset),
                e.message,
            ));
        }
    }
    if errors.len() > errors_before {
        return None;
    }
    let spec = WatchlistSpec {
        name: name.to_owned(),
        title: title.unwrap_or_else(|| name.to_owned()),
        fields: fields.map_or_else(|| DEFAULT_FIELDS.to_vec(), Spanned::into_inner),
        groups: groups?,
        query: query?.into_inner(),
        sources,
        languages,
        min_hits,
    };
    // The matcher has rules of its own (e.g. a term needs a letter or digit); report them here
    // too, so `marsad check` catches everything the daemon would refuse.
    if let Err(e) = crate::matcher::Matcher::compile(std::slice::from_ref(&spec)) {
        let message = match e {
            crate::matcher::MatcherError::Query { source, .. } => source.message,
            crate::matcher::MatcherError::Invalid { message, .. } => message,
        };
        errors.push(src.error(0, message));
        return None;
    }
    Some(spec)
}

/// Loads one watchlist file on its own (for `marsad watchlist test FILE`).
pub fn load_file(path: &std::path::Path) -> Result<WatchlistSpec, super::ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        super::ConfigErrors(vec![SourceText::whole_file(
            path,
            format!("cannot read watchlist file: {e}"),
        )])
    })?;
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let src = SourceText { path, text: &text };
    let mut errors = Vec::new();
    match read_watchlist(&src, &name, None, &mut errors) {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(super::ConfigErrors(errors)),
    }
}

/// A non-empty list of non-empty strings, each with where it stands; `what` names the key.
fn read_list(
    src: &SourceText<'_>,
    value: &Value<'_>,
    what: &str,
    example: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<Spanned<String>>> {
    let list = raw::decode::<Spanned<Vec<Spanned<String>>>>(src, value, errors)?;
    if list.get_ref().is_empty() {
        errors.push(src.error(
            list.span().start,
            format!(
                "{what} is empty; remove the key to look everywhere, or list some, e.g. {example}"
            ),
        ));
        return None;
    }
    Some(list.into_inner())
}

/// `sources = ["id", ...]`: only articles from these sources (ids from the sources file).
fn read_sources(
    src: &SourceText<'_>,
    value: &Value<'_>,
    known: Option<&[String]>,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let Some(list) = read_list(src, value, "sources", "[\"bbc-arabic\"]", errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for id in list {
        if let Some(known) = known
            && !known.contains(id.get_ref())
        {
            errors.push(src.error(
                id.span().start,
                format!(
                    "unknown source \"{}\" in sources; sources are {}",
                    id.get_ref(),
                    known.join(", ")
                ),
            ));
            continue;
        }
        out.push(id.into_inner());
    }
    out
}

/// `languages = ["ar", "en"]`: only articles in these languages (primary subtags).
fn read_languages(
    src: &SourceText<'_>,
    value: &Value<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let Some(list) = read_list(src, value, "languages", "[\"ar\", \"en\"]", errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for tag in list {
        let code = tag.get_ref();
        let valid = (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphabetic());
        if !valid {
            errors.push(src.error(
                tag.span().start,
                format!(
                    "\"{code}\" is not a language code; expected a two- or three-letter code such as \"ar\" or \"en\""
                ),
            ));
            continue;
        }
        out.push(code.to_ascii_lowercase());
    }
    out
}

/// `min_hits = n`: at least n distinct terms must be found.
fn read_min_hits(src: &SourceText<'_>, value: &Value<'_>, errors: &mut Vec<ConfigError>) -> usize {
    let Some(n) = raw::decode::<i64>(src, value, errors) else {
        return 0;
    };
    match usize::try_from(n) {
        Ok(n) if n >= 1 => n,
        _ => {
            errors.push(src.error(
                value.span().start,
                format!("min_hits is {n}; expected a whole number of at least 1 (distinct terms an article must contain)"),
            ));
            0
        }
    }
}

/// `[terms]`: named groups of words and phrases, in file order (the order users see in
/// messages that list the groups).
fn read_terms(
    src: &SourceText<'_>,
    value: &Value<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<(String, Vec<String>)>> {
    let DeValue::Table(table) = value.get_ref() else {
        errors.push(src.error(
            value.span().start,
            "expected a [terms] table of named term groups, e.g. russia = [\"روسيا\", \"Russia\"]",
        ));
        return None;
    };
    read_groups(src, table, errors)
}

fn read_groups(
    src: &SourceText<'_>,
    table: &DeTable<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<(String, Vec<String>)>> {
    let errors_before = errors.len();
    let mut groups = Vec::new();
    for (key, value) in raw::entries(table) {
        let group: &str = key.get_ref();
        let Some(terms) = raw::decode::<Spanned<Vec<Spanned<String>>>>(src, value, errors) else {
            continue;
        };
        if terms.get_ref().is_empty() {
            errors.push(src.error(
                terms.span().start,
                format!("term group \"{group}\" is empty; list at least one word or phrase"),
            ));
            continue;
        }
        for term in terms.get_ref() {
            if term.get_ref().trim().is_empty() {
                errors.push(src.error(
                    term.span().start,
                    format!("empty term in group \"{group}\"; remove it or write a word"),
                ));
            }
        }
        let terms = terms
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect();
        groups.push((group.to_owned(), terms));
    }
    (errors.len() == errors_before).then_some(groups)
}
