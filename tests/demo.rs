//! The README's first command: `marsad demo` runs one full cycle offline and writes a digest.

mod common;

use common::*;
use mail_parser::MessageParser;

#[tokio::test]
async fn demo_runs_a_full_cycle_and_prints_the_digest_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo_dir = dir.path().join("demo");
    let run = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
            .args(["demo", "--dir"])
            .arg(&demo_dir)
            .env("MARSAD_LOG", "warn")
            .output()
            .await
            .expect("run marsad demo")
    };
    for attempt in 0..2 {
        // A second run starts afresh and gives the same result.
        let out = run().await;
        assert!(
            out.status.success(),
            "attempt {attempt}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(
            text.contains("3 sources, 0 failed, 8 new articles"),
            "{text}"
        );
        let path = text
            .lines()
            .find_map(|l| l.strip_prefix("digest: "))
            .expect("the digest path is printed");
        let raw = std::fs::read(path).expect("digest file exists");
        let msg = MessageParser::default().parse(&raw).expect("parsable .eml");
        let html = msg.body_html(0).expect("html part");
        assert!(html.contains("موسكو تستقبل وفداً إسرائيلياً"));
        assert!(html.contains("Beirut port reconstruction tender announced"));
        assert!(msg.body_text(0).is_some());
    }
    // A folder that was not made by the demo is never wiped.
    let other = dir.path().join("precious");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "keep me").expect("write");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .args(["demo", "--dir"])
        .arg(&other)
        .output()
        .await
        .expect("run marsad demo");
    assert_eq!(out.status.code(), Some(2));
    assert!(other.join("notes.txt").exists());
}
