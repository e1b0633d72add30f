-- Stories: near-duplicate articles grouped (see src/dedupe). Each article records how it joined
-- its story, so `marsad stories --explain ID` can show the decision.

CREATE TABLE stories (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    first_article INTEGER NOT NULL,
    created       TEXT NOT NULL
);

-- reason: 'new' (started the story) or 'similar' (joined it: story_via is the most similar
-- article found, story_similarity the estimated overlap of their shingles).
ALTER TABLE articles ADD COLUMN story_reason TEXT;
ALTER TABLE articles ADD COLUMN story_via INTEGER;
ALTER TABLE articles ADD COLUMN story_similarity REAL;
CREATE INDEX articles_story ON articles (story);

-- MinHash signature of each article seen within the window.
CREATE TABLE article_signatures (
    article   INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    signature BLOB NOT NULL,
    fetched   TEXT NOT NULL
);

-- LSH band keys; rows older than the window are pruned at each refresh.
CREATE TABLE story_bands (
    band_key INTEGER NOT NULL,
    article  INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    fetched  TEXT NOT NULL
);
CREATE INDEX story_bands_key ON story_bands (band_key, fetched);
CREATE INDEX story_bands_fetched ON story_bands (fetched);
CREATE INDEX story_bands_article ON story_bands (article);
