//! Watchlist tools over stored articles: `matches --json` explanations, `watchlist test --since`
//! (what an edit would change), `watchlist backfill`, and the scoping keys' validation.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

fn ids(lines: &[Value]) -> BTreeSet<i64> {
    lines
        .iter()
        .map(|l| l["article"].as_i64().expect("article id"))
        .collect()
}

async fn lebanon_matches(env: &Env) -> Vec<Value> {
    let out = env
        .marsad(&[
            "matches",
            "--watchlist",
            "lebanon",
            "--since",
            "1d",
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&out)
}

#[tokio::test]
async fn matches_json_explains_the_first_hit_with_a_snippet() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.marsad(&["matches", "--since", "1d", "--json"]).await;
    let lines = json_lines(&out);
    assert!(!lines.is_empty(), "the demo has matches");
    for m in &lines {
        let first = &m["hits"][0];
        let snippet = &m["snippet"];
        assert_eq!(snippet["field"], first["field"], "{m}");
        assert_eq!(snippet["hit"], first["text"], "{m}");
        let field_text = m[first["field"].as_str().unwrap()].as_str().unwrap_or("");
        // The excerpt is text of that field around the hit.
        let before = snippet["before"].as_str().unwrap().trim_start_matches('…');
        let after = snippet["after"].as_str().unwrap().trim_end_matches('…');
        if first["field"] == "title" {
            assert!(
                field_text.contains(&format!(
                    "{before}{}{after}",
                    snippet["hit"].as_str().unwrap()
                )),
                "{m}"
            );
        }
    }
    // The excerpt shows the hit in context, not just the word.
    assert!(
        lines
            .iter()
            .any(|m| m["snippet"]["before"] != "" || m["snippet"]["after"] != ""),
        "no snippet with context: {lines:?}"
    );
}

#[tokio::test]
async fn edited_watchlist_is_compared_with_stored_matches_then_backfilled_once() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = ids(&lebanon_matches(&env).await);
    assert!(!stored.is_empty(), "the demo stores Lebanon matches");

    // The user edits the watchlist file; nothing is reloaded or stored yet.
    std::fs::write(
        env.dir.path().join("watchlists/lebanon.toml"),
        "title = \"Lebanon\"\n[terms]\nlebanon = [\"Prussia\", \"الكيروسين\"]\n[match]\nquery = \"lebanon\"\n",
    )
    .unwrap();
    let out = env
        .marsad(&["watchlist", "test", "lebanon", "--since", "30d", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let changes = json_lines(&out);
    let new: Vec<Value> = changes
        .iter()
        .filter(|c| c["change"] == "new")
        .cloned()
        .collect();
    let gone: Vec<Value> = changes
        .iter()
        .filter(|c| c["change"] == "gone")
        .cloned()
        .collect();
    assert_eq!(new.len() + gone.len(), changes.len(), "{changes:?}");
    assert!(!new.is_empty(), "the new terms find articles: {changes:?}");
    assert!(!gone.is_empty(), "old matches stop matching: {changes:?}");
    for c in &new {
        assert!(!stored.contains(&c["article"].as_i64().unwrap()), "{c}");
        let hits = c["hits"].as_array().unwrap();
        assert!(!hits.is_empty(), "{c}");
        for h in hits {
            assert!(
                ["Prussia", "الكيروسين"].contains(&h["term"].as_str().unwrap()),
                "{c}"
            );
        }
    }
    // What stops matching was stored, and its old explanation is shown.
    for c in &gone {
        assert!(stored.contains(&c["article"].as_i64().unwrap()), "{c}");
        assert!(!c["hits"].as_array().unwrap().is_empty(), "{c}");
    }
    // The stored matches are untouched by a test.
    assert_eq!(ids(&lebanon_matches(&env).await), stored);

    let text = env
        .marsad(&["watchlist", "test", "lebanon", "--since", "30d"])
        .await;
    let text = stdout(&text);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("+ ")).count(),
        new.len(),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("- ")).count(),
        gone.len(),
        "{text}"
    );
    let still = stored.len() - gone.len();
    assert!(
        text.contains(&format!(
            "{} would newly match, {} would stop matching, {still} still match",
            new.len(),
            gone.len()
        )),
        "{text}"
    );

    // Backfill stores the new matches, once.
    let out = env
        .marsad(&["watchlist", "backfill", "lebanon", "--since", "7d"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{} new matches stored", new.len())),
        "{}",
        stdout(&out)
    );
    let after = ids(&lebanon_matches(&env).await);
    let expected: BTreeSet<i64> = stored.union(&ids(&new)).copied().collect();
    assert_eq!(after, expected);
    let again = env
        .marsad(&["watchlist", "backfill", "lebanon", "--since", "7d"])
        .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 new matches stored"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM matches WHERE watchlist = 'lebanon'")
            .await as usize,
        expected.len()
    );
    // After the backfill nothing is new any more; a backfill never removes matches.
    let out = env
        .marsad(&["watchlist", "test", "lebanon", "--since", "30d", "--json"])
        .await;
    let changes = json_lines(&out);
    assert!(changes.iter().all(|c| c["change"] == "gone"), "{changes:?}");
    assert_eq!(changes.len(), gone.len());
}

#[tokio::test]
async fn watchlist_test_since_reports_a_broken_edit_with_its_position() {
    let env = Env::demo(OUTBOX_MAIL).await;
    std::fs::write(
        env.dir.path().join("watchlists/lebanon.toml"),
        "[terms]\nlebanon = [\"لبنان\"]\n[match]\nquery = \"lebanon AND isreal\"\n",
    )
    .unwrap();
    let out = env
        .marsad(&["watchlist", "test", "lebanon", "--since", "30d"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lebanon.toml:4:22: unknown group \"isreal\""),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn scoping_keys_are_validated_with_file_line_col() {
    let env = Env::demo(OUTBOX_MAIL).await;
    std::fs::write(
        env.dir.path().join("watchlists/scoped.toml"),
        "sources = [\"wire-ar\", \"wire-fr\"]\nlanguages = [\"ar\", \"arabic\"]\nmin_hits = 0\n\
         [terms]\ng = [\"لبنان\"]\n[match]\nquery = \"g\"\n",
    )
    .unwrap();
    let out = env.marsad(&["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for expected in [
        "scoped.toml:1:23: unknown source \"wire-fr\" in sources; sources are khanadeq-demo, wire-ar, wire-en",
        "scoped.toml:2:20: \"arabic\" is not a language code",
        "scoped.toml:3:12: min_hits is 0; expected a whole number of at least 1",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }

    // Valid scoping: only Arabic articles of wire-ar with two distinct terms.
    std::fs::write(
        env.dir.path().join("watchlists/scoped.toml"),
        "sources = [\"wire-ar\"]\nlanguages = [\"ar\"]\nfields = [\"title\", \"body\", \"source\"]\n\
         [terms]\ng = [\"لبنان\", \"بيروت\", \"Beirut\", \"الأنباء\"]\n[match]\nquery = \"g\"\n",
    )
    .unwrap();
    let out = env.marsad(&["check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env
        .marsad(&[
            "matches",
            "--watchlist",
            "scoped",
            "--since",
            "1d",
            "--json",
        ])
        .await;
    let scoped = json_lines(&out);
    assert!(!scoped.is_empty(), "wire-ar has Lebanon news");
    let arts = json_lines(&env.marsad(&["articles", "--since", "1d", "--json"]).await);
    for m in &scoped {
        let a = arts
            .iter()
            .find(|a| a["id"] == m["article"])
            .expect("article");
        assert_eq!(a["source"], "wire-ar", "{m}");
    }
    // The source's display name (وكالة الأنباء التجريبية) is searched as the source field.
    assert!(
        scoped.iter().all(|m| m["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["field"] == "source" && h["text"] == "الأنباء")),
        "{scoped:?}"
    );
}
