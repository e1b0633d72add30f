-- marsad schema, PostgreSQL flavour.

CREATE TABLE sources (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    url                  TEXT NOT NULL,
    etag                 TEXT,
    last_modified        TEXT,
    last_attempt         TIMESTAMPTZ,
    last_success         TIMESTAMPTZ,
    last_error           TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    next_run             TIMESTAMPTZ
);

CREATE TABLE fetches (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       TEXT NOT NULL,
    started      TIMESTAMPTZ NOT NULL,
    finished     TIMESTAMPTZ NOT NULL,
    outcome      TEXT NOT NULL,           -- ok | not_modified | error
    http_status  BIGINT,
    items        BIGINT NOT NULL DEFAULT 0,
    new_articles BIGINT NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX fetches_source ON fetches (source, started);

CREATE TABLE articles (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       TEXT NOT NULL,
    url          TEXT NOT NULL,           -- canonical URL it was first seen at
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    published    TIMESTAMPTZ,
    fetched      TIMESTAMPTZ NOT NULL,
    language     TEXT,
    author       TEXT,
    content_hash TEXT NOT NULL,
    story        BIGINT
);
CREATE INDEX articles_hash ON articles (content_hash);
CREATE INDEX articles_fetched ON articles (fetched);

-- Every URL an article was reached at, as linked (feed link, listing link, tracking variants),
-- with its canonical form, which is what deduplication looks up.
CREATE TABLE article_urls (
    raw_url    TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    article    BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL
);
CREATE INDEX article_urls_url ON article_urls (url);
CREATE INDEX article_urls_article ON article_urls (article);

-- Feed GUIDs are only unique within one feed.
CREATE TABLE article_guids (
    source  TEXT NOT NULL,
    guid    TEXT NOT NULL,
    article BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (source, guid)
);

CREATE TABLE matches (
    article   BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    watchlist TEXT NOT NULL,
    hits      TEXT NOT NULL,              -- JSON array of hits
    matched   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article, watchlist)
);
CREATE INDEX matches_matched ON matches (matched);

-- One row per (digest, period). Inserted before sending; the rendered message is kept so a retry
-- sends exactly the same message with the same Message-ID.
CREATE TABLE digest_runs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest       TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end   TIMESTAMPTZ NOT NULL,
    message_id   TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    html         TEXT NOT NULL,
    text         TEXT NOT NULL,
    items        BIGINT NOT NULL,
    state        TEXT NOT NULL,           -- pending | sent
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    next_attempt TIMESTAMPTZ,
    created      TIMESTAMPTZ NOT NULL,
    sent         TIMESTAMPTZ,
    delivered_to TEXT,
    UNIQUE (digest, period_end)
);
