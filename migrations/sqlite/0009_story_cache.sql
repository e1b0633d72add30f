-- Stories are placed with an in-memory LSH index of the window (src/store/stories.rs), kept in
-- step with the database by reading the signatures other writers committed since. `seq` numbers
-- signatures in commit order (they are written while the story lock is held), from a counter
-- that never goes back even when old signatures are pruned. Band keys are no longer stored.
ALTER TABLE article_signatures ADD COLUMN seq BIGINT;
UPDATE article_signatures SET seq = article;
CREATE INDEX article_signatures_seq ON article_signatures (seq);
-- Pruned by age at every refresh.
CREATE INDEX article_signatures_fetched ON article_signatures (fetched);
CREATE TABLE story_seq (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO story_seq (id, last) SELECT 1, COALESCE(MAX(seq), 0) FROM article_signatures;
DROP TABLE story_bands;
