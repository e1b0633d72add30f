-- Matches are looked up by article through the primary key (article, watchlist), whose leading
-- column is the article: the separate index on `matches (article)` only cost a second index
-- entry for every match written.
DROP INDEX IF EXISTS matches_article;
