#!/usr/bin/env python3
"""Reference for benches/scale.rs: fetch and parse the same sources in a thread pool.

Usage: feedparser_ref.py SOURCES_FILE THREADS. Each line is "feed URL" (fetched and parsed with
feedparser) or "html URL" (a listing page: its <a class="post"> links are fetched one after the
other and each page's <h1> and class="body" text taken with the standard library's HTMLParser).
Prints one JSON object.
"""
import json
import re
import resource
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import feedparser

LINK = re.compile(r'<a class="post" href="([^"]+)"')


def get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


class Article(HTMLParser):
    """Collects the text of <h1> and of the element with class "body"."""

    def __init__(self):
        super().__init__()
        self.title, self.body = [], []
        self.in_title, self.body_depth = False, 0

    def handle_starttag(self, tag, attrs):
        if tag == "h1":
            self.in_title = True
        if self.body_depth:
            self.body_depth += 1
        elif ("class", "body") in attrs:
            self.body_depth = 1

    def handle_endtag(self, tag):
        if tag == "h1":
            self.in_title = False
        if self.body_depth:
            self.body_depth -= 1

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        elif self.body_depth:
            self.body.append(data)


def one(line):
    kind, url = line.split(" ", 1)
    try:
        body = get(url)
    except Exception:
        return (False, 0)
    if kind == "feed":
        return (True, len(feedparser.parse(body).entries))
    articles = 0
    for link in LINK.findall(body.decode("utf-8", "replace")):
        try:
            page = Article()
            page.feed(get(urllib.parse.urljoin(url, link)).decode("utf-8", "replace"))
        except Exception:
            continue
        if page.title or page.body:
            articles += 1
    return (True, articles)


def main():
    lines = [u.strip() for u in open(sys.argv[1]) if u.strip()]
    threads = int(sys.argv[2])
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, lines))
    seconds = time.monotonic() - start
    print(json.dumps({
        "seconds": seconds,
        "feeds": len(lines),
        "ok": sum(1 for ok, _ in results if ok),
        "entries": sum(n for _, n in results),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
