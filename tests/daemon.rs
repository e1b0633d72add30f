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
