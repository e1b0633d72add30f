//! `marsad check`: every mistake in every file, as `file:line:col: message`, exit code 2.

mod common;

use common::*;

#[tokio::test]
async fn check_reports_every_mistake_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("watchlists")).expect("mkdir");
    std::fs::write(
        d.join("marsad.toml"),
        r#"sources = "sources.toml"
watchlists = "watchlists"

[http]
timeout = "20s"
concurency = 4

[[digest]]
name = "daily"
to = ["a@example.org"]
schedule = "0 7 * *"
watchlists = ["russia-israel", "nope"]
"#,
    )
    .expect("write");
    std::fs::write(
        d.join("sources.toml"),
        r#"[[source]]
id = "a"
kind = "feed"
url = "not a url"

[[source]]
id = "a"
kind = "html"
url = "https://example.org/"
[source.listing]
links = "a[href*="
"#,
    )
    .expect("write");
    std::fs::write(
        d.join("watchlists/russia-israel.toml"),
        "[terms]\nrussia = [\"روسيا\"]\nisrael = [\"إسرائيل\"]\n[match]\nquery = \"russia AND isreal\"\n",
    )
    .expect("write");

    let out = run_marsad(&d.join("marsad.toml"), &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    let expect = [
        ("marsad.toml:6:1:", "concurency"),
        ("marsad.toml:11:12:", "five fields"),
        ("marsad.toml:12:32:", "nope"),
        ("sources.toml:4:7:", "not a url"),
        ("sources.toml:7:6:", "duplicate"),
        ("sources.toml:11:9:", "selector"),
        (
            "russia-israel.toml:5:21:",
            "unknown group \"isreal\" in query; groups are russia, israel",
        ),
    ];
    for (position, words) in expect {
        let line = err
            .lines()
            .find(|l| l.contains(position))
            .unwrap_or_else(|| panic!("no error at {position} in:\n{err}"));
        assert!(
            line.contains(words),
            "{position} should mention {words}: {line}"
        );
    }
    assert!(err.lines().count() >= expect.len(), "{err}");
}

#[tokio::test]
async fn check_accepts_the_shipped_configuration() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/marsad.toml");
    let out = run_marsad(&config, &["check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("6 sources, 2 watchlists, 1 digests"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn watchlist_test_explains_matches_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let texts = dir.path().join("texts.jsonl");
    std::fs::write(
        &texts,
        [
            r#"{"id": "a", "text": "وصل وفد إلى موسكو لبحث العلاقات مع إسرائيل."}"#,
            r#"{"id": "b", "text": "ارتفعت أسعار الكيروسين واشترى كثيرون عبوتين."}"#,
            r#"{"id": "c", "title": "Putin calls Netanyahu", "body": "The Kremlin said Russia's president called Israel's PM."}"#,
        ]
        .join("\n"),
    )
    .expect("write texts");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/marsad.toml");
    let out = run_marsad(
        &config,
        &[
            "watchlist",
            "test",
            "russia-israel",
            "--texts",
            texts.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["matched"], true);
    assert_eq!(lines[1]["matched"], false);
    assert_eq!(lines[2]["matched"], true);
    let hits: Vec<&str> = lines[0]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["text"].as_str())
        .collect();
    assert!(
        hits.contains(&"موسكو") && hits.contains(&"إسرائيل"),
        "{hits:?}"
    );
}
