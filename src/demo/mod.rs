//! The bundled demo: a small Arabic/English news site (an HTML listing shaped like Al-Khanadeq's,
//! an RSS feed and an Atom feed) compiled into the binary, so `marsad demo` works offline from any
//! directory, and its configuration.

pub mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use server::{Route, StaticServer};

const HTML: &str = "text/html; charset=utf-8";

/// (decoded path, content type, file in seeds/demo/site).
const SITE: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../seeds/demo/site/index.html")),
    (
        "/post/4101/موسكو-تستقبل-وفدا-اسرائيليا",
        HTML,
        include_str!("../../seeds/demo/site/post-4101.html"),
    ),
    (
        "/post/4102/جلسة-حكومية-لبحث-خطة-الكهرباء",
        HTML,
        include_str!("../../seeds/demo/site/post-4102.html"),
    ),
    (
        "/post/4103/أسعار-الكيروسين-ترتفع",
        HTML,
        include_str!("../../seeds/demo/site/post-4103.html"),
    ),
    (
        "/news/8801.html",
        HTML,
        include_str!("../../seeds/demo/site/news-8801.html"),
    ),
    (
        "/news/8802.html",
        HTML,
        include_str!("../../seeds/demo/site/news-8802.html"),
    ),
    (
        "/rss.xml",
        "application/rss+xml; charset=utf-8",
        include_str!("../../seeds/demo/site/rss.xml"),
    ),
    (
        "/atom.xml",
        "application/atom+xml; charset=utf-8",
        include_str!("../../seeds/demo/site/atom.xml"),
    ),
    (
        "/en/kremlin-call.html",
        HTML,
        include_str!("../../seeds/demo/site/en-kremlin-call.html"),
    ),
    (
        "/en/prussia-exhibition.html",
        HTML,
        include_str!("../../seeds/demo/site/en-prussia-exhibition.html"),
    ),
    (
        "/en/beirut-port.html",
        HTML,
        include_str!("../../seeds/demo/site/en-beirut-port.html"),
    ),
];

const CONFIG: &[(&str, &str)] = &[
    (
        "marsad.toml",
        include_str!("../../seeds/demo/config/marsad.toml"),
    ),
    (
        "sources.toml",
        include_str!("../../seeds/demo/config/sources.toml"),
    ),
    (
        "watchlists/russia-israel.toml",
        include_str!("../../seeds/demo/config/watchlists/russia-israel.toml"),
    ),
    (
        "watchlists/lebanon.toml",
        include_str!("../../seeds/demo/config/watchlists/lebanon.toml"),
    ),
];

/// The demo site's routes, ready for `StaticServer::start`.
pub fn site_routes() -> HashMap<String, Route> {
    SITE.iter()
        .map(|(path, ctype, body)| {
            (
                path.to_string(),
                Route::new(ctype, body.as_bytes().to_vec()),
            )
        })
        .collect()
}

/// Writes the demo configuration into `dir` with the sources pointing at `base_url`; returns the
/// path of its marsad.toml.
pub fn write_config(dir: &Path, base_url: &str) -> std::io::Result<PathBuf> {
    for (name, text) in CONFIG {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text.replace("{base}", base_url))?;
    }
    Ok(dir.join("marsad.toml"))
}
