//! Stories end to end: two loopback feeds carrying the same story in different words (and an
//! unrelated story on the same topic) → one story, listed by `marsad stories`, explained by
//! `--explain`, and shown once in the digest with "also reported by" (the .eml from the outbox
//! parsed with mail-parser).

mod common;

use std::collections::HashMap;

use common::*;
use mail_parser::MessageParser;
use marsad::demo::Route;

struct Item<'a> {
    guid: &'a str,
    path: &'a str,
    title: &'a str,
    date: &'a str,
    paragraphs: &'a [&'a str],
}

fn rss(base: &str, items: &[Item<'_>]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>t</title><link>http://x/</link>",
    );
    for i in items {
        let body: String = i.paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
        out.push_str(&format!(
            "<item><title>{}</title><link>{base}{}</link><guid isPermaLink=\"false\">{}</guid>\
             <pubDate>{}</pubDate><description><![CDATA[{body}]]></description></item>",
            i.title, i.path, i.guid, i.date
        ));
    }
    out.push_str("</channel></rss>");
    out
}

const BODY_A: &[&str] = &[
    "فشل مجلس النواب اللبناني الأربعاء للمرة الثانية عشرة في انتخاب رئيس للجمهورية، بعد أن انسحب عدد من النواب من الجلسة الثانية.",
    "وحصل المرشح الأول على واحد وخمسين صوتاً في الدورة الأولى، فيما نال منافسه تسعة وخمسين صوتاً، ولم يبلغ أي منهما الأكثرية المطلوبة.",
    "ودعا رئيس المجلس إلى الحوار بين الكتل النيابية للخروج من الأزمة.",
    "ويعاني لبنان من فراغ رئاسي منذ أكثر من ثمانية أشهر في ظل أزمة اقتصادية خانقة.",
];
const BODY_A_REWRITE: &[&str] = &[
    "انتهت الجلسة الثانية عشرة لانتخاب رئيس للجمهورية في لبنان الأربعاء من دون نتيجة، بعد انسحاب نواب من الدورة الثانية.",
    "وحصل المرشح الأول على واحد وخمسين صوتاً في الدورة الأولى، فيما نال منافسه تسعة وخمسين صوتاً، ولم يبلغ أي منهما الأكثرية المطلوبة.",
    "ودعا رئيس المجلس إلى الحوار بين الكتل النيابية للخروج من الأزمة.",
    "ويعاني لبنان من فراغ رئاسي منذ أكثر من ثمانية أشهر في ظل أزمة اقتصادية خانقة.",
];
const BODY_B: &[&str] = &[
    "أقر مجلس النواب اللبناني الخميس موازنة العام المقبل بأغلبية خمسة وستين صوتاً، بعد جلسات نقاش استمرت ثلاثة أيام.",
    "وتتضمن الموازنة زيادة في رواتب موظفي القطاع العام ورفعاً لبعض الرسوم الجمركية.",
    "وانتقد نواب معارضون غياب خطة للإصلاح المالي يطالب بها صندوق النقد الدولي.",
];
const TITLE_A: &str = "مجلس النواب اللبناني يفشل في انتخاب رئيس للمرة الثانية عشرة";
const TITLE_A_REWRITE: &str = "الجلسة الثانية عشرة تنتهي بلا رئيس للبنان";
const TITLE_B: &str = "مجلس النواب اللبناني يقر موازنة العام المقبل";

fn feed_one(base: &str) -> String {
    rss(
        base,
        &[Item {
            guid: "one-1",
            path: "/one/speaker-vote",
            title: TITLE_A,
            date: "Wed, 25 Nov 2026 08:00:00 GMT",
            paragraphs: BODY_A,
        }],
    )
}

fn feed_two(base: &str) -> String {
    rss(
        base,
        &[
            Item {
                guid: "two-7",
                path: "/two/no-president",
                title: TITLE_A_REWRITE,
                date: "Wed, 25 Nov 2026 09:30:00 GMT",
                paragraphs: BODY_A_REWRITE,
            },
            Item {
                guid: "two-8",
                path: "/two/budget",
                title: TITLE_B,
                date: "Wed, 25 Nov 2026 10:00:00 GMT",
                paragraphs: BODY_B,
            },
        ],
    )
}

async fn env() -> Env {
    let env = Env::new(
        HashMap::new(),
        |base| {
            format!(
                "[[source]]\nid = \"wire-one\"\nname = \"Wire One\"\nkind = \"feed\"\nurl = \"{base}/one.xml\"\n\n\
                 [[source]]\nid = \"wire-two\"\nname = \"Wire Two\"\nkind = \"feed\"\nurl = \"{base}/two.xml\"\n"
            )
        },
        OUTBOX_MAIL,
    )
    .await;
    let base = env.server.base_url();
    let base = base.trim_end_matches('/');
    env.server.set_route(
        "/one.xml",
        Route::new("application/rss+xml", feed_one(base)),
    );
    env.server.set_route(
        "/two.xml",
        Route::new("application/rss+xml", feed_two(base)),
    );
    env
}

fn by_title<'a>(articles: &'a [serde_json::Value], title: &str) -> &'a serde_json::Value {
    articles
        .iter()
        .find(|a| a["title"] == title)
        .unwrap_or_else(|| panic!("no article titled {title}: {articles:#?}"))
}

#[tokio::test]
async fn two_sources_same_story_become_one_story_with_also_reported_by() {
    let env = env().await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    assert_eq!(articles.len(), 3, "{articles:#?}");
    let a = by_title(&articles, TITLE_A);
    let rewrite = by_title(&articles, TITLE_A_REWRITE);
    let b = by_title(&articles, TITLE_B);
    assert!(
        a["story"].is_i64(),
        "articles --json carries the story: {a}"
    );
    assert_eq!(a["story"], rewrite["story"], "rewrite joins the story");
    assert_ne!(
        a["story"], b["story"],
        "same topic, other event: another story"
    );

    let out = env.marsad(&["stories", "--json", "--since", "1h"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stories = json_lines(&out);
    assert_eq!(stories.len(), 2, "{stories:#?}");
    let story = stories
        .iter()
        .find(|s| s["id"] == a["story"])
        .expect("the shared story is listed");
    let sources: Vec<&str> = story["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(sources, ["wire-one", "wire-two"]);
    let members = story["articles"].as_array().expect("articles");
    assert_eq!(members.len(), 2);
    // The two feeds are fetched concurrently, so either copy may have been stored first.
    let started = members
        .iter()
        .find(|m| m["reason"] == "new")
        .expect("one article started the story");
    let joined = members
        .iter()
        .find(|m| m["reason"] == "similar")
        .expect("the other joined it");
    assert_eq!(joined["via"], started["id"]);
    let similarity = joined["similarity"].as_f64().expect("similarity");
    assert!((0.42..=1.0).contains(&similarity), "{similarity}");

    let id = a["story"].as_i64().expect("story id").to_string();
    let out = env.marsad(&["stories", "--explain", &id]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("started the story"), "{text}");
    let percent = format!(
        "joined: {:.0}% of its word pairs are shared with article {}",
        similarity * 100.0,
        started["id"]
    );
    assert!(text.contains(&percent), "{text}");
    let missing = env.marsad(&["stories", "--explain", "999999"]).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no story 999999"),
        "{}",
        stderr(&missing)
    );

    // The digest: the story once, led by the earliest copy, the other as "also reported by".
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let eml: Vec<_> = std::fs::read_dir(env.outbox())
        .expect("outbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(eml.len(), 1, "{eml:?}");
    let raw = std::fs::read(&eml[0]).expect("read .eml");
    let msg = MessageParser::default().parse(&raw).expect("MIME message");
    let html = msg.body_html(0).expect("HTML part").into_owned();
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).expect("selector");
    let links: Vec<(String, String)> = doc
        .select(&sel("a"))
        .map(|l| {
            (
                l.text().collect::<String>().trim().to_string(),
                l.value().attr("href").unwrap_or_default().to_string(),
            )
        })
        .collect();
    let lead = links.iter().filter(|(t, _)| t.contains(TITLE_A)).count();
    assert_eq!(lead, 1, "the earliest copy leads, once: {links:#?}");
    assert!(
        !links.iter().any(|(t, _)| t.contains(TITLE_A_REWRITE)),
        "the second copy is not an item of its own: {links:#?}"
    );
    let also_url = rewrite["url"].as_str().expect("url");
    assert!(
        links
            .iter()
            .any(|(t, h)| t.contains("Wire Two") && h == also_url),
        "also reported by Wire Two at {also_url}: {links:#?}"
    );
    assert!(html.contains("ورد أيضاً في"), "'also reported by' label");
    assert!(
        links.iter().any(|(t, _)| t.contains(TITLE_B)),
        "the other story stays"
    );
    let text = msg.body_text(0).expect("text part");
    assert!(text.contains("Wire Two"), "{text}");
}

#[tokio::test]
async fn new_url_or_guid_with_the_same_text_is_the_same_article() {
    let env = env().await;
    assert!(env.marsad(&["fetch"]).await.status.success());
    let base = env.server.base_url();
    let base = base.trim_end_matches('/').to_string();
    // Wire One republishes the same text under a new GUID and a new URL.
    let moved = rss(
        &base,
        &[Item {
            guid: "one-1-v2",
            path: "/one/2026/speaker-vote",
            title: TITLE_A,
            date: "Wed, 25 Nov 2026 08:00:00 GMT",
            paragraphs: BODY_A,
        }],
    );
    env.server
        .set_route("/one.xml", Route::new("application/rss+xml", moved));
    assert!(env.marsad(&["fetch"]).await.status.success());
    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    assert_eq!(articles.len(), 3, "no new article: {articles:#?}");
    let a = by_title(&articles, TITLE_A);
    let urls: Vec<&str> = a["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    assert!(
        urls.contains(&format!("{base}/one/2026/speaker-vote").as_str()),
        "new URL recorded on the existing article: {urls:?}"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM article_guids WHERE guid = 'one-1-v2'")
            .await,
        1,
        "new GUID recorded"
    );

    // An edit under the known URL, with yet another GUID: updated in place, story kept.
    let edited_title = format!("{TITLE_A} (محدث)");
    let edited = rss(
        &base,
        &[Item {
            guid: "one-1-v3",
            path: "/one/2026/speaker-vote",
            title: &edited_title,
            date: "Wed, 25 Nov 2026 08:00:00 GMT",
            paragraphs: BODY_A,
        }],
    );
    env.server
        .set_route("/one.xml", Route::new("application/rss+xml", edited));
    assert!(env.marsad(&["fetch"]).await.status.success());
    let after = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    assert_eq!(after.len(), 3, "still no new article: {after:#?}");
    let updated = by_title(&after, &edited_title);
    assert_eq!(updated["id"], a["id"]);
    assert_eq!(updated["story"], a["story"]);
}
