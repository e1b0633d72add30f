-- The tables keyed by article no longer check their reference to `articles`: every row of them
-- is written by the transaction that stores or finds its article, under that article's dedupe
-- key locks, and each check cost a lookup and a row lock on `articles` per row written (a fifth
-- of the server's time storing a refresh). Pruning deletes an article's rows itself (see
-- `Db::prune`), under the lock that keeps refresh writes out.
ALTER TABLE article_urls DROP CONSTRAINT IF EXISTS article_urls_article_fkey;
ALTER TABLE article_guids DROP CONSTRAINT IF EXISTS article_guids_article_fkey;
ALTER TABLE matches DROP CONSTRAINT IF EXISTS matches_article_fkey;
ALTER TABLE article_search DROP CONSTRAINT IF EXISTS article_search_article_fkey;
ALTER TABLE article_signatures DROP CONSTRAINT IF EXISTS article_signatures_article_fkey;
