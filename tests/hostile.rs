//! Hostile servers (issue 9, first cases): one `fetch` against a healthy site and a set of bad
//! sources. The healthy articles must be stored, each bad source's error recorded with its URL,
//! the process must end normally within the configured timeouts, and its memory stay bounded.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use marsad::demo::Route;
use tokio::io::AsyncWriteExt;

/// Peak resident memory allowed for one `fetch` over all the cases below (the cap on a body is
/// 15 MiB; a bomb that were decompressed whole would need 64 MiB more).
const RSS_LIMIT_MIB: i64 = 150;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A raw TCP server that answers every connection by dribbling `bytes`, one byte a second, and
/// never finishing: slowloris bodies and headers that never end.
async fn dribbler(bytes: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind dribbler");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Answer only once the request has arrived, as a real server would.
                let mut request = [0u8; 1024];
                if tokio::io::AsyncReadExt::read(&mut stream, &mut request)
                    .await
                    .is_err()
                {
                    return;
                }
                for b in bytes.iter().cycle() {
                    if stream.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

fn feed(base: &str, id: &str, path: &str) -> String {
    format!("[[source]]\nid = \"{id}\"\nkind = \"feed\"\nurl = \"{base}{path}\"\n")
}

#[tokio::test]
async fn bad_sources_fail_cleanly_while_the_healthy_one_is_stored() {
    let mut routes = marsad::demo::site_routes();
    // 64 MiB of zeros compress to about 64 KiB; the cap is 15 MiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    routes.insert(
        "/bomb.xml".into(),
        Route::new("application/rss+xml", bomb).with_header("content-encoding", "gzip"),
    );
    routes.insert(
        "/big.xml".into(),
        Route::new("application/rss+xml", vec![b'a'; 16 << 20]),
    );
    routes.insert(
        "/loop".into(),
        Route::new("text/plain", "")
            .with_status(302)
            .with_header("location", "/loop"),
    );
    routes.insert(
        "/to-file".into(),
        Route::new("text/plain", "")
            .with_status(302)
            .with_header("location", "file:///etc/passwd"),
    );
    let laughs = {
        let mut doc =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY l0 \"ha\">\n");
        for i in 1..10 {
            let prev = format!("&l{};", i - 1);
            doc.push_str(&format!("<!ENTITY l{i} \"{}\">\n", prev.repeat(10)));
        }
        doc.push_str("<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n");
        doc.push_str("<rss version=\"2.0\"><channel><title>&l9;</title><item><title>&l9;&xxe;</title><link>http://x.invalid/1</link></item></channel></rss>");
        doc
    };
    routes.insert(
        "/laughs.xml".into(),
        Route::new("application/rss+xml", laughs),
    );
    // 100,000 levels: html5ever's tree builder would be quadratic here without the depth guard.
    let deep = format!(
        "<html><body>{}<a href=\"/post/1/deep\">deep</a><p>{}</p>{}</body></html>",
        "<div>".repeat(100_000),
        "فقرة عميقة جداً في صفحة معادية. ".repeat(10),
        "</div>".repeat(100_000)
    );
    routes.insert("/deep/".into(), Route::new("text/html", deep.clone()));
    routes.insert("/post/1/deep".into(), Route::new("text/html", deep));
    let deep_xml = format!(
        "<rss version=\"2.0\"><channel>{}</channel></rss>",
        "<x>".repeat(100_000)
    );
    routes.insert(
        "/deep.xml".into(),
        Route::new("application/rss+xml", deep_xml),
    );
    let mut invalid = b"<html><head><meta charset=\"utf-8\"><title>bad \xff\xfe bytes</title></head><body><h1>bad \xc3\x28 bytes</h1><p>".to_vec();
    invalid.extend_from_slice(
        "نص عربي بعد بايتات فاسدة، وهذه فقرة طويلة بما يكفي لتكون متن المقال. "
            .repeat(5)
            .as_bytes(),
    );
    invalid.extend_from_slice(b"</p></body></html>");
    routes.insert(
        "/invalid/".into(),
        Route::new("text/html", "<a href=\"/invalid/post/1/x\">x</a>"),
    );
    routes.insert(
        "/invalid/post/1/x".into(),
        Route::new("text/html; charset=utf-8", invalid),
    );
    let scripts = format!(
        "<html><body>{}<a href=\"/post/2/scripts\">s</a></body></html>",
        "<script>while(true){}</script>".repeat(20_000)
    );
    routes.insert(
        "/scripts/".into(),
        Route::new("application/octet-stream", scripts),
    );
    let slow_body = dribbler(b"HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\ncontent-length: 1000000\r\n\r\n<rss>").await;
    let endless_headers =
        dribbler(b"HTTP/1.1 200 OK\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n").await;

    let sources = move |base: &str| {
        let mut s = demo_sources(base);
        for (id, path) in [
            ("bomb", "/bomb.xml"),
            ("big", "/big.xml"),
            ("loop", "/loop"),
            ("to-file", "/to-file"),
            ("laughs", "/laughs.xml"),
            ("deep-xml", "/deep.xml"),
        ] {
            s.push_str(&feed(base, id, path));
        }
        for (id, path) in [
            ("deep-html", "/deep/"),
            ("invalid", "/invalid/"),
            ("scripts", "/scripts/"),
        ] {
            s.push_str(&format!(
                "[[source]]\nid = \"{id}\"\nkind = \"html\"\nurl = \"{base}{path}\"\n[source.listing]\nlinks = \"a\"\n"
            ));
        }
        s.push_str(&feed(&slow_body, "slowloris", "/feed"));
        s.push_str(&feed(&endless_headers, "endless-headers", "/feed"));
        s
    };
    let env = Env::new(routes, sources, OUTBOX_MAIL).await;

    let started = Instant::now();
    let out = env.marsad(&["fetch"]).await;
    let took = started.elapsed();
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own; RUSAGE_CHILDREN covers the finished fetch.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let peak_mib = usage.ru_maxrss / 1024;

    assert_eq!(
        out.status.code(),
        Some(1),
        "ended normally, with failures:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // 3 s timeout per request; the slow servers must not hold the run much longer than that.
    assert!(took < Duration::from_secs(60), "fetch took {took:?}");
    assert!(peak_mib < RSS_LIMIT_MIB, "peak RSS {peak_mib} MiB");

    let status = json_lines(&env.marsad(&["status", "--json"]).await);
    let source = |id: &str| {
        status
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} in status"))
            .clone()
    };
    // The healthy site is stored in full: its 8 articles (the demo's duplicate counted once).
    for id in ["khanadeq-demo", "wire-ar", "wire-en"] {
        assert_eq!(source(id)["consecutive_failures"], 0, "{id}");
    }
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM articles WHERE source IN ('khanadeq-demo', 'wire-ar', 'wire-en')"
        )
        .await,
        8
    );
    for (id, words) in [
        ("bomb", "/bomb.xml"),
        ("big", "/big.xml"),
        ("loop", "/loop"),
        ("to-file", "unsupported URL scheme \"file\""),
        // The first request to these hosts is robots.txt: it is what times out.
        ("slowloris", "no response within 3s"),
        ("endless-headers", "no response within 3s"),
    ] {
        let s = source(id);
        assert_eq!(s["consecutive_failures"], 1, "{id} should fail: {s}");
        let error = s["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains(words),
            "{id}: error should say {words:?}: {error}"
        );
    }
    // Entities are never expanded into a stored title, and nothing of /etc/passwd leaks.
    let all = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    for a in &all {
        let title = a["title"].as_str().unwrap_or_default();
        assert!(
            title.len() < 10_000,
            "expanded title: {} bytes",
            title.len()
        );
        assert!(!title.contains("root:"), "external entity resolved");
    }
    // The deep page was parsed (flattened) and its article stored.
    assert!(
        all.iter().any(|a| a["body"]
            .as_str()
            .unwrap_or_default()
            .contains("فقرة عميقة جداً")),
        "deeply nested page stored"
    );
    // Invalid UTF-8 is replaced, not fatal: the Arabic text around it survives.
    assert!(
        all.iter().any(|a| a["body"]
            .as_str()
            .unwrap_or_default()
            .contains("نص عربي بعد بايتات فاسدة")),
        "page with invalid UTF-8 stored"
    );
}
