#!/usr/bin/env python3
"""Reference for benches/scale.rs: fetch and parse the same feeds with feedparser in a thread pool.

Usage: feedparser_ref.py URLS_FILE THREADS   (one URL per line). Prints one JSON object.
"""
import json
import resource
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import feedparser


def one(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read()
    except Exception:
        return (False, 0)
    parsed = feedparser.parse(body)
    return (True, len(parsed.entries))


def main():
    urls = [u.strip() for u in open(sys.argv[1]) if u.strip()]
    threads = int(sys.argv[2])
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, urls))
    seconds = time.monotonic() - start
    print(json.dumps({
        "seconds": seconds,
        "feeds": len(urls),
        "ok": sum(1 for ok, _ in results if ok),
        "entries": sum(n for _, n in results),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
