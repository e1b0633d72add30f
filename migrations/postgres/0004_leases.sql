-- Several daemons sharing one database lease due sources and pending digests: the holder and
-- until when. An expired lease may be taken over (the holder crashed).
ALTER TABLE sources ADD COLUMN lease_owner TEXT;
ALTER TABLE sources ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE digest_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE digest_runs ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX sources_next_run ON sources (next_run);

-- Full-text search over normalized article text ('simple': no stemming, the words are already
-- folded by crate::normalize).
CREATE TABLE article_search (
    article BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    doc     TSVECTOR NOT NULL
);
CREATE INDEX article_search_doc ON article_search USING GIN (doc);
CREATE INDEX matches_article ON matches (article);
