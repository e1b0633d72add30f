//! deploy/marsad.service: `systemd-analyze verify` accepts it and `systemd-analyze security` rates
//! it low exposure. Fails (never skips) without systemd-analyze; .ci/run installs it.

use std::path::Path;
use std::process::Command;

/// The unit with ExecStart pointing at the binary under test (verify checks it is executable).
fn unit_in(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/marsad.service"
    ))
    .expect("read deploy/marsad.service");
    assert!(
        text.contains("ExecStart=/usr/local/bin/marsad "),
        "ExecStart moved?"
    );
    let text = text.replace("/usr/local/bin/marsad", env!("CARGO_BIN_EXE_marsad"));
    let path = dir.join("marsad.service");
    std::fs::write(&path, text).expect("write unit");
    path
}

fn analyze(args: &[&str], unit: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze is needed (apt-get install systemd; .ci/run does)")
}

#[test]
fn unit_file_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_in(dir.path());
    let out = analyze(&["verify"], &unit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    assert!(
        !err.contains("marsad.service:"),
        "warnings about the unit: {err}"
    );
}

#[test]
fn unit_file_has_low_exposure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_in(dir.path());
    let out = analyze(&["security", "--offline=true", "--no-pager"], &unit);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(
        score <= 2.0,
        "exposure {score} is above 2.0 (\"OK\"): {line}"
    );
}
