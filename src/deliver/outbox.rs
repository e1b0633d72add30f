//! The outbox transport: one `.eml` file per message, written atomically.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::DeliverError;

/// Distinguishes temp files of concurrent writes within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `<dir>/<sanitized message_id>.eml`, creating `dir`.
///
/// The file name comes only from the Message-ID, so a retry of the same digest period replaces
/// the earlier file instead of adding a second one; temp file + rename means a reader (or a
/// crash) never sees half a message.
pub(super) async fn write(
    dir: &Path,
    message_id: &str,
    bytes: Vec<u8>,
) -> Result<PathBuf, DeliverError> {
    let dir = dir.to_path_buf();
    let stem = file_stem(message_id);
    let work_dir = dir.clone();
    tokio::task::spawn_blocking(move || write_blocking(&work_dir, &stem, &bytes))
        .await
        .map_err(|join| DeliverError::Io {
            path: dir,
            source: io::Error::other(join),
        })?
}

fn write_blocking(dir: &Path, stem: &str, bytes: &[u8]) -> Result<PathBuf, DeliverError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeliverError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(format!("{stem}.eml"));
    let temp = dir.join(format!(
        ".{stem}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        // Durable before it becomes visible: the caller marks the digest sent after this.
        file.sync_all()?;
        fs::rename(&temp, &path)
    })();
    if let Err(source) = written {
        // Best effort: a leftover temp file is harmless (dot-prefixed, never read back).
        let _ = fs::remove_file(&temp);
        return Err(DeliverError::Io { path, source });
    }
    sync_dir(dir).map_err(io_err(dir))?;
    Ok(path)
}

/// Persists the rename itself (the directory entry) on Unix.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A file name from a Message-ID: keeps the characters that are safe everywhere and never
/// lets the name climb out of the directory or hide itself.
fn file_stem(message_id: &str) -> String {
    let mut stem: String = message_id
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@+=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(0..1, "_");
    }
    if stem.is_empty() {
        stem.push_str("message");
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn file_names_stay_inside_the_outbox() {
        assert_eq!(
            file_stem("daily.20261125T0700Z@marsad"),
            "daily.20261125T0700Z@marsad"
        );
        for hostile in ["../../etc/passwd@x", "a/b\\c@d", "..@..", ""] {
            let stem = file_stem(hostile);
            assert!(!stem.contains('/') && !stem.contains('\\'), "{stem}");
            assert!(!stem.starts_with('.') && !stem.is_empty(), "{stem}");
        }
    }
}
