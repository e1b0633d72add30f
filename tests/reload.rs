//! Hot reload: `marsad run` watches its configuration files. A broken watchlist edit (no SIGHUP)
//! is refused and reported by `marsad status` while the daemon keeps matching with the last good
//! version; the fixed file is picked up on its own.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use marsad::demo::Route;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// An RSS feed of (guid, title, text) items, written for this test.
fn feed(items: &[(&str, &str, &str)]) -> Route {
    let items: String = items
        .iter()
        .map(|(guid, title, text)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title>\
                 <link>https://desk.example/{guid}</link><description>{text}</description></item>"
            )
        })
        .collect();
    Route::new(
        "application/rss+xml; charset=utf-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
             <title>Desk</title><link>https://desk.example/</link>{items}</channel></rss>"
        ),
    )
}

const PORT_REOPENS: (&str, &str, &str) = (
    "a1",
    "Port reopens",
    "The port of Beirut reopened on Monday after repairs.",
);
const TALKS: (&str, &str, &str) = (
    "a2",
    "Border talks resume",
    "Negotiators from Lebanon met again in Naqoura.",
);

fn desk_source(base: &str) -> String {
    // Polled every minute: the second item must arrive while the broken edit is on disk.
    format!(
        "[[source]]\nid = \"desk\"\nname = \"Desk\"\nkind = \"feed\"\nurl = \"{base}/feed.xml\"\n\
         poll = \"* * * * *\"\nlanguage = \"en\"\n"
    )
}

async fn daemon_status(env: &Env) -> Value {
    let out = env.marsad(&["status", "--json"]).await;
    assert!(out.status.success(), "status fails: {}", stderr(&out));
    json_lines(&out)
        .into_iter()
        .find(|l| l["kind"] == "daemon")
        .unwrap_or_else(|| panic!("no daemon line in status: {}", stdout(&out)))
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Read from the database itself: the CLI refuses to run while a configuration file is broken.
async fn lebanon_matched(env: &Env, guid: &str) -> bool {
    let sql = format!(
        "SELECT COUNT(*) FROM matches m JOIN article_guids g ON g.article = m.article \
         WHERE m.watchlist = 'lebanon' AND g.guid = '{guid}'"
    );
    env.try_count(&sql).await.unwrap_or(0) > 0
}

#[tokio::test]
async fn broken_watchlist_edit_is_reported_and_the_last_good_version_keeps_matching() {
    let routes = HashMap::from([("/feed.xml".to_string(), feed(&[PORT_REOPENS]))]);
    let env = Env::new(routes, desk_source, OUTBOX_MAIL).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(&env.config)
        .arg("run")
        .env("MARSAD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start daemon");
    let pid = child.id().expect("daemon pid");

    wait_for(
        "the first article matching",
        Duration::from_secs(30),
        || lebanon_matched(&env, "a1"),
    )
    .await;
    let first = daemon_status(&env).await;
    let version = first["config_version"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(!version.is_empty());
    assert_eq!(first["last_reload_error"], Value::Null, "{first}");

    // Break the watchlist; no SIGHUP: the file watcher must notice.
    let lebanon = env.dir.path().join("watchlists/lebanon.toml");
    std::fs::write(
        &lebanon,
        "[terms]\nlebanon = [\"Lebanon\", \"Beirut\"]\n[match]\nquery = \"lebanon AND isreal\"\n",
    )
    .unwrap();
    wait_for(
        "status reporting the reload error",
        Duration::from_secs(20),
        || async {
            let s = daemon_status(&env).await;
            s["last_reload_error"]
                .as_str()
                .is_some_and(|e| e.contains("isreal"))
        },
    )
    .await;
    let broken = daemon_status(&env).await;
    assert_eq!(broken["config_version"], version.as_str(), "{broken}");
    assert!(
        broken["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("lebanon.toml:4:"),
        "the error names file and line: {broken}"
    );

    // News keeps arriving and is matched with the last good watchlist.
    env.server
        .set_route("/feed.xml", feed(&[TALKS, PORT_REOPENS]));
    wait_for(
        "the next article matching with the old watchlist",
        Duration::from_secs(90),
        || lebanon_matched(&env, "a2"),
    )
    .await;
    assert!(child.try_wait().unwrap().is_none(), "daemon died");

    // A valid edit is loaded on its own and clears the error.
    std::fs::write(
        &lebanon,
        "title = \"Lebanon\"\n[terms]\nlebanon = [\"Lebanon\", \"Beirut\", \"Naqoura\"]\n[match]\nquery = \"lebanon\"\n",
    )
    .unwrap();
    wait_for(
        "the fixed watchlist loading",
        Duration::from_secs(20),
        || async {
            let s = daemon_status(&env).await;
            s["config_version"] != version.as_str() && s["last_reload_error"].is_null()
        },
    )
    .await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("daemon stops")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(log.contains("reload failed"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
}
