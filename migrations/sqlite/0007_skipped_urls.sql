-- Pages a source linked to that were deliberately not fetched: disallowed by robots.txt, or not a
-- web page (PDF, image, video). Kept with the reason so `status`/the fetch log can say why, and so
-- they are not requested again on every refresh (they are re-checked after a day).
CREATE TABLE skipped_urls (
    url       TEXT PRIMARY KEY,           -- canonical URL
    source    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX skipped_urls_source ON skipped_urls (source);
