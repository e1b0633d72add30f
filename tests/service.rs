//! Running as a service: status, retention, search, metrics, logs, OPML — on the suite's backend.

mod common;

use common::*;

fn demo_with_broken(base: &str) -> String {
    format!(
        "{}\n[[source]]\nid = \"broken\"\nkind = \"feed\"\nurl = \"{base}/missing.xml\"\n",
        demo_sources(base)
    )
}

#[tokio::test]
async fn status_json_reports_source_health_and_digests() {
    let env = Env::new(marsad::demo::site_routes(), demo_with_broken, OUTBOX_MAIL).await;
    for _ in 0..2 {
        let out = env.marsad(&["fetch"]).await;
        assert_eq!(out.status.code(), Some(1), "the broken source fails the fetch");
    }
    let sent = env.marsad(&["digest", "send", "daily"]).await;
    assert!(sent.status.success(), "{}", stderr(&sent));

    let out = env.marsad(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let now = chrono::Utc::now();
    let sources: Vec<_> = lines.iter().filter(|l| l["kind"] == "source").collect();
    assert_eq!(sources.len(), 4);
    let mut day_total = 0;
    for s in &sources {
        let next = s["next_run"].as_str().expect("next_run");
        let next = chrono::DateTime::parse_from_rfc3339(next).expect("next_run is RFC 3339");
        assert!(next > now, "{} next run in the future: {next}", s["id"]);
        day_total += s["articles_last_day"].as_i64().expect("articles_last_day");
        if s["id"] == "broken" {
            assert_eq!(s["consecutive_failures"], 2);
            assert!(s["last_success"].is_null());
            let error = s["last_error"].as_str().expect("last_error");
            assert!(error.contains("/missing.xml") && error.contains("404"), "{error}");
        } else {
            assert_eq!(s["consecutive_failures"], 0, "{s}");
            assert!(s["last_success"].is_string(), "{s}");
            assert!(s["last_error"].is_null(), "{s}");
        }
    }
    assert_eq!(day_total, 8, "the demo's 8 articles, fetched today");

    let digest = lines
        .iter()
        .find(|l| l["kind"] == "digest" && l["name"] == "daily")
        .expect("digest line");
    assert_eq!(digest["last"]["state"], "sent");
    assert!(digest["last"]["items"].as_i64().expect("items") > 0);
    assert!(digest["next"].is_string());

    let text = env.marsad(&["status"]).await;
    let text = stdout(&text);
    assert!(text.contains("FAILING (2×)"), "{text}");
}
