//! Configuration loading: marsad.toml, sources.toml and a watchlist. What is asserted, and the input format: ../checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("marsad-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("watchlists")).expect("scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| checks::config(data, scratch()));
