-- Several daemons sharing one database lease due sources and pending digests: the holder and
-- until when. An expired lease may be taken over (the holder crashed).
ALTER TABLE sources ADD COLUMN lease_owner TEXT;
ALTER TABLE sources ADD COLUMN lease_until TEXT;
ALTER TABLE digest_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE digest_runs ADD COLUMN lease_until TEXT;

-- Full-text search over normalized article text (rowid = articles.id). The text is already
-- folded and split by crate::normalize, so the tokenizer only needs to split on spaces.
CREATE VIRTUAL TABLE article_search USING fts5(doc, tokenize = 'unicode61 remove_diacritics 0');
