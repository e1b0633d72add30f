//! `marsad run`: refreshes on its own, survives a broken reload, stops cleanly on SIGTERM.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncReadExt;

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[tokio::test]
async fn daemon_refreshes_keeps_last_good_config_on_bad_reload_and_exits_on_sigterm() {
    let env = Env::demo(OUTBOX_MAIL).await;
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

    // Every source is due at start: wait until all 8 articles are stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if env.try_count("SELECT COUNT(*) FROM articles").await.ok() == Some(8) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not store the demo articles within 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each refresh, once stored, gives its source back (the lease ends in the same write) and
    // says when it is due next: nothing stays held by the daemon between periods.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = env
            .count("SELECT COUNT(*) FROM sources WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL OR next_run IS NULL")
            .await;
        if held == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{held} source(s) still leased or without a next run 10s after the refreshes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Break a watchlist and reload: the daemon must keep running on the last good configuration.
    std::fs::write(
        env.dir.path().join("watchlists/lebanon.toml"),
        "[terms]\nlebanon = [\"لبنان\"]\n[match]\nquery = \"lebanon AND isreal\"\n",
    )
    .expect("break watchlist");
    signal(pid, "-HUP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().expect("poll daemon").is_none(),
        "daemon died on a bad reload"
    );

    signal(pid, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("daemon stops within 20s of SIGTERM")
        .expect("wait daemon");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .await
        .expect("read log");
    assert!(
        log.contains("keeping the last good configuration"),
        "log: {log}"
    );
    assert!(
        log.contains("isreal"),
        "the reload error names the problem: {log}"
    );
}

/// A daemon's later refreshes of a source are conditional: each sends the ETag the one before
/// stored (the daemon reads a source's state when it leases it), an unchanged feed is answered
/// 304 and stores nothing again, and a changed one is fetched in full.
#[tokio::test]
async fn daemon_refreshes_send_the_validators_the_last_refresh_stored() {
    use std::collections::HashMap;

    use marsad::demo::Route;

    let feed = |items: &[&str]| {
        let items: String = items
            .iter()
            .map(|i| {
                format!(
                    "<item><title>Beirut note {i}</title><link>http://example.test/{i}</link>\
                     <guid>note-{i}</guid><description>Text of note {i} about the port.</description></item>"
                )
            })
            .collect();
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>notes</title>\
             <link>http://example.test/</link>{items}</channel></rss>"
        )
    };
    let first = Route::new("application/rss+xml", feed(&["a", "b"]));
    let first_etag = first.etag.clone().expect("the route has an ETag");
    let routes = HashMap::from([("/feed.xml".to_string(), first)]);
    let env = Env::new(
        routes,
        |base| format!("[[source]]\nid = \"notes\"\nkind = \"feed\"\nurl = \"{base}/feed.xml\"\n"),
        OUTBOX_MAIL,
    )
    .await;
    let config = std::fs::read_to_string(&env.config).expect("read marsad.toml");
    let config = config.replace("[schedule]\n", "[schedule]\npoll = \"@every 1s\"\n");
    std::fs::write(&env.config, config).expect("write marsad.toml");

    let mut child = start_daemon(&env.config);
    let wait_for_hits = async |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while env.hits("/feed.xml").len() < n {
            assert!(
                Instant::now() < deadline,
                "the daemon fetched the feed {} times in 30 s, expected {n}",
                env.hits("/feed.xml").len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_for_hits(3).await;

    // The feed changes: the next refresh sends the old ETag, gets the new feed in full, and the
    // one after sends the new ETag.
    let second = Route::new("application/rss+xml", feed(&["a", "b", "c"]));
    let second_etag = second.etag.clone().expect("the route has an ETag");
    assert_ne!(first_etag, second_etag);
    env.server.set_route("/feed.xml", second);
    // A request in flight at the switch may still get the old feed: three more make sure the
    // new one is fetched and then asked for again.
    wait_for_hits(env.hits("/feed.xml").len() + 3).await;
    signal(child.id().expect("daemon pid"), "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("daemon stops within 20s of SIGTERM")
        .expect("wait daemon");
    assert_eq!(status.code(), Some(0));

    let hits = env.hits("/feed.xml");
    assert_eq!(
        hits[0].if_none_match, None,
        "the first fetch has nothing to send"
    );
    assert_eq!(hits[0].status, 200);
    let changed = 1 + hits[1..]
        .iter()
        .position(|h| h.status == 200)
        .expect("the changed feed was fetched in full");
    assert!(changed >= 3, "unchanged feed fetched in full: {hits:?}");
    assert!(
        changed + 1 < hits.len(),
        "no refresh after the change: {hits:?}"
    );
    for (i, hit) in hits.iter().enumerate().skip(1) {
        // The ETag of the feed the refresh before got.
        let (expected, status) = if i < changed {
            (&first_etag, 304)
        } else if i == changed {
            (&first_etag, 200)
        } else {
            (&second_etag, 304)
        };
        assert_eq!(
            (hit.if_none_match.as_ref(), hit.status),
            (Some(expected), status),
            "request {i} of {}",
            hits.len()
        );
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 3);
    assert!(
        env.count("SELECT COUNT(*) FROM fetches WHERE outcome = 'not_modified'")
            .await
            >= 2,
        "unchanged feeds are logged as not modified"
    );
}
