//! Long interactive commands show a progress bar on a terminal and plain lines otherwise.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use marsad::demo::Route;

/// The demo site plus a slow feed, so a fetch lasts long enough for the bar to be drawn.
async fn slow_env() -> Env {
    let mut routes: HashMap<String, Route> = marsad::demo::site_routes();
    routes.insert(
        "/slow.xml".to_string(),
        Route::new(
            "application/rss+xml",
            "<rss version=\"2.0\"><channel><title>slow</title></channel></rss>",
        )
        .with_delay(Duration::from_millis(1500)),
    );
    let sources = |base: &str| {
        format!(
            "{}\n[[source]]\nid = \"slow\"\nname = \"Slow\"\nkind = \"feed\"\nurl = \"{base}/slow.xml\"\n",
            demo_sources(base)
        )
    };
    Env::new(routes, sources, OUTBOX_MAIL).await
}

#[tokio::test]
async fn fetch_on_a_terminal_draws_a_progress_bar() {
    let env = slow_env().await;
    // `script` runs the command on a pseudo-terminal and copies what it draws to stdout.
    let command = format!(
        "{} --config {} fetch",
        env!("CARGO_BIN_EXE_marsad"),
        env.config.display()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("MARSAD_LOG", "warn")
        .output()
        .await
        .expect("util-linux `script` is needed to give the command a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("fetching ["),
        "no progress bar drawn:\n{screen}"
    );
    assert!(screen.contains("4 sources, 0 failed"), "{screen}");
}

#[tokio::test]
async fn fetch_without_a_terminal_prints_plain_lines() {
    let env = slow_env().await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("fetching ["), "a bar reached a pipe:\n{all}");
    assert!(
        !all.contains('\u{1b}'),
        "terminal escapes reached a pipe:\n{all}"
    );
    assert!(
        stdout(&out).contains("4 sources, 0 failed"),
        "{}",
        stdout(&out)
    );
}
