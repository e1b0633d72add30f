//! The digest's HTML laid out by a real browser engine: Debian's `chromium`, headless.
//!
//! A digest with Arabic and English items (fixture text written for this test) goes through the
//! real render code; a small script appended to the page writes computed layout facts into the
//! DOM, and `--dump-dom` hands them back. Checked at a phone's width (375 px), in light and dark
//! mode: Arabic items are laid out right to left, English ones left to right, nothing is wider
//! than the screen, highlighted hits are visible, and text stays readable in dark mode.
//!
//! `MARSAD_UPDATE_SAMPLE=1 cargo test --test render_chromium` also rewrites docs/digest-sample.png.

use std::path::{Path, PathBuf};
use std::process::Command;

use marsad::digest::{
    DigestItem, DigestView, SourceHealth, VolumeNote, WatchlistCount, WatchlistSection,
    render_html, snippet,
};

const AR_BODY: &str = "أعلن الكرملين اليوم أن الرئيس فلاديمير بوتين أجرى اتصالاً هاتفياً مع رئيس الوزراء \
    الإسرائيلي بنيامين نتنياهو، بحث خلاله الطرفان الوضع في سوريا والتنسيق العسكري بين موسكو وتل أبيب.";
const AR_TITLE: &str = "بوتين ونتنياهو يبحثان هاتفياً التنسيق في سوريا";
const AR_TITLE_2: &str = "وفد روسي يزور تل أبيب لبحث ملف الأسرى";
const EN_TITLE: &str = "Kremlin: Putin and Netanyahu discussed Syria in a phone call";
// Quotes a long unbroken URL, as article text often does: it must wrap, not widen a phone screen.
const EN_BODY: &str = "The Kremlin said on Tuesday that President Vladimir Putin spoke by phone with \
    https://kremlin.example/events/president/news/2026-11-25-telephone-conversation-with-prime-minister-of-israel \
    Israeli Prime Minister Benjamin Netanyahu about Syria and military coordination.";

fn hit(text: &str, needle: &str) -> (usize, usize) {
    let byte = text.find(needle).expect("needle in fixture");
    let start = text[..byte].chars().count();
    (start, start + needle.chars().count())
}

fn sample_view() -> DigestView {
    let (s, e) = hit(AR_BODY, "بوتين");
    let arabic = DigestItem {
        title: AR_TITLE.into(),
        url: "https://alkhanadeq.example/post/4821/putin-netanyahu-call".into(),
        source: "الخنادق".into(),
        published: Some("2026-11-25 09:40".into()),
        language: Some("ar".into()),
        terms: vec!["بوتين".into(), "نتنياهو".into(), "موسكو".into()],
        snippet: Some(snippet(AR_BODY, s, e, 70)),
        also: vec![(
            "BBC News عربي".into(),
            "https://www.bbc.example/arabic/articles/c0ffee".into(),
        )],
    };
    let (s2, e2) = hit(AR_BODY, "موسكو");
    let arabic_2 = DigestItem {
        title: AR_TITLE_2.into(),
        url: "https://wire.example/ar/2026/11/25/delegation".into(),
        source: "وكالة الأنباء".into(),
        published: Some("2026-11-25 07:55".into()),
        language: None,
        terms: vec!["موسكو".into(), "تل أبيب".into()],
        snippet: Some(snippet(AR_BODY, s2, e2, 50)),
        also: vec![],
    };
    let (s3, e3) = hit(EN_BODY, "Putin");
    let english = DigestItem {
        title: EN_TITLE.into(),
        url: "https://news.example.org/world/middle-east/2026/11/25/kremlin-putin-netanyahu".into(),
        source: "The Moscow Times".into(),
        published: Some("2026-11-25 10:05".into()),
        language: Some("en".into()),
        terms: vec!["Putin".into(), "Netanyahu".into(), "Kremlin".into()],
        snippet: Some(snippet(EN_BODY, s3, e3, 160)),
        also: vec![],
    };
    DigestView {
        name: "daily".into(),
        subject: "موجز مرصد اليومي: روسيا وإسرائيل".into(),
        language: "ar".into(),
        period: "2026-11-24 07:00 – 2026-11-25 07:00 (Asia/Beirut)".into(),
        total: 3,
        watchlists: vec![WatchlistSection {
            name: "russia-israel".into(),
            title: "روسيا وإسرائيل".into(),
            items: vec![arabic, english, arabic_2],
        }],
        alert: false,
        counts: vec![
            WatchlistCount {
                name: "russia-israel".into(),
                title: "روسيا وإسرائيل".into(),
                count: 3,
            },
            WatchlistCount {
                name: "lebanon".into(),
                title: "Lebanon".into(),
                count: 0,
            },
        ],
        health: vec![SourceHealth {
            source: "Times of Israel".into(),
            failures: 4,
            last_failure: "2026-11-25 06:30".into(),
            error: "HTTP 503 Service Unavailable from https://www.timesofisrael.example/feed/"
                .into(),
        }],
        surges: vec![VolumeNote {
            title: "روسيا وإسرائيل".into(),
            count: 3,
            usual: "0.4".into(),
        }],
    }
}

/// Writes computed layout facts into `<pre id="layout-facts">` once the page is laid out.
const PROBE: &str = r#"<script>
(function () {
  var lum = function (c) {
    var m = c.match(/[\d.]+/g).map(Number);
    return (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255;
  };
  var root = document.documentElement;
  var facts = {
    innerWidth: window.innerWidth,
    pageDirection: getComputedStyle(root).direction,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    textLuminance: lum(getComputedStyle(document.querySelector('.item p')).color),
    items: Array.prototype.map.call(document.querySelectorAll('.item'), function (el) {
      var box = el.getBoundingClientRect();
      var title = el.querySelector('h3 a, h3');
      var range = document.createRange();
      range.selectNodeContents(title);
      var text = range.getBoundingClientRect();
      return {
        title: title.textContent.trim(),
        lang: el.getAttribute('lang'),
        direction: getComputedStyle(el).direction,
        overflows: el.scrollWidth > el.clientWidth,
        // Where the title's text sits inside its item: right-aligned for RTL, left for LTR.
        gapLeft: text.left - box.left,
        gapRight: box.right - text.right
      };
    }),
    marks: Array.prototype.map.call(document.querySelectorAll('mark'), function (m) {
      var r = m.getBoundingClientRect();
      return { text: m.textContent, width: r.width, background: getComputedStyle(m).backgroundColor };
    })
  };
  var pre = document.createElement('pre');
  pre.id = 'layout-facts';
  pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
})();
</script>
"#;

fn chromium() -> PathBuf {
    let candidates = [
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.exists() {
            return c;
        }
    }
    panic!(
        "the render check needs Debian's chromium at /usr/bin/chromium (or $CHROMIUM): \
         apt-get update && apt-get install -y chromium (.ci/run does)"
    );
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Lays out `html` at `width` px and returns the facts the probe wrote.
fn layout_facts(html: &str, width: u32, dark: bool) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("digest.html");
    let probed = html.replacen("</body>", &format!("{PROBE}</body>"), 1);
    assert_ne!(probed, html, "rendered digest has a </body>");
    std::fs::write(&page, probed).expect("write page");
    // Headless Chromium's window is at least 500 px wide, so the phone is an iframe of `width`
    // px; its facts are copied into the outer page, which is what --dump-dom prints.
    let frame = dir.path().join("phone.html");
    std::fs::write(
        &frame,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"phone\" src=\"digest.html\" \
             style=\"width:{width}px;height:1200px;border:0\" onload=\"var f=this.contentDocument.getElementById('layout-facts');\
             var p=document.createElement('pre');p.id='layout-facts';p.textContent=f?f.textContent:'';document.body.appendChild(p);\">\
             </iframe></body></html>"
        ),
    )
    .expect("write frame");
    let page = frame;
    let mut cmd = Command::new(chromium());
    cmd.args(chromium_args(&dir.path().join("profile")))
        .arg("--allow-file-access-from-files")
        .arg("--window-size=800,1300")
        .arg("--dump-dom");
    if dark {
        cmd.arg("--force-dark-mode")
            .arg("--blink-settings=preferredColorScheme=0");
    }
    let out = cmd
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let doc = scraper::Html::parse_document(&dom);
    let sel = scraper::Selector::parse("#layout-facts").expect("selector");
    let facts: String = doc
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("the probe did not run; DOM was:\n{dom}"))
        .text()
        .collect();
    serde_json::from_str(&facts).expect("probe JSON")
}

#[test]
fn arabic_and_english_items_lay_out_right_on_a_phone_in_light_and_dark_mode() {
    let view = sample_view();
    let html = render_html(&view).expect("render");

    let light = layout_facts(&html, 375, false);
    assert_eq!(light["innerWidth"], 375, "the check ran at phone width");
    assert_eq!(
        light["pageDirection"], "rtl",
        "digest language ar → page rtl"
    );
    let (scroll, client) = (
        light["scrollWidth"].as_f64().unwrap(),
        light["clientWidth"].as_f64().unwrap(),
    );
    assert!(
        scroll <= client,
        "page overflows at 375 px: {scroll} > {client}"
    );

    let items = light["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    for item in items {
        let title = item["title"].as_str().unwrap();
        assert_eq!(item["overflows"], false, "{title} overflows its box");
        let (left, right) = (
            item["gapLeft"].as_f64().unwrap(),
            item["gapRight"].as_f64().unwrap(),
        );
        if title == EN_TITLE {
            assert_eq!(item["direction"], "ltr", "{title}");
            assert_eq!(item["lang"], "en");
            assert!(left < 1.0, "English title starts at the left: {item}");
        } else {
            assert_eq!(item["direction"], "rtl", "{title}");
            assert_eq!(item["lang"], "ar", "language declared or guessed: {item}");
            assert!(right < 1.0, "Arabic title starts at the right: {item}");
        }
    }

    let marks = light["marks"].as_array().expect("marks");
    let marked: Vec<&str> = marks.iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(
        marked.contains(&"بوتين") && marked.contains(&"Putin"),
        "{marked:?}"
    );
    assert!(
        marks
            .iter()
            .all(|m| m["width"].as_f64().unwrap() > 0.0 && m["background"] != "rgba(0, 0, 0, 0)"),
        "highlights visible: {marks:?}"
    );
    let light_text = light["textLuminance"].as_f64().unwrap();
    assert!(light_text < 0.4, "dark text on light: {light_text}");

    let dark = layout_facts(&html, 375, true);
    let dark_text = dark["textLuminance"].as_f64().unwrap();
    assert!(dark_text > 0.6, "light text in dark mode: {dark_text}");
    assert!(dark["scrollWidth"].as_f64().unwrap() <= dark["clientWidth"].as_f64().unwrap());

    if std::env::var_os("MARSAD_UPDATE_SAMPLE").is_some() {
        write_sample_screenshot(&html);
    }
}

/// docs/digest-sample.png: the sample digest as a phone shows it.
fn write_sample_screenshot(html: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("digest.html");
    std::fs::write(&page, html).expect("write page");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/digest-sample.png");
    std::fs::create_dir_all(target.parent().unwrap()).expect("docs dir");
    let out = Command::new(chromium())
        .args(chromium_args(&dir.path().join("profile")))
        .arg("--window-size=420,1500")
        .arg(format!("--screenshot={}", target.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(target.exists());
}
