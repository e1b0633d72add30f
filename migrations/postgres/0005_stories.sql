-- Stories: near-duplicate articles grouped (see src/dedupe). Each article records how it joined
-- its story, so `marsad stories --explain ID` can show the decision.

CREATE TABLE stories (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_article BIGINT NOT NULL,
    created       TIMESTAMPTZ NOT NULL
);

-- reason: 'new' (started the story) or 'similar' (joined it: story_via is the most similar
-- article found, story_similarity the estimated overlap of their shingles).
ALTER TABLE articles ADD COLUMN story_reason TEXT;
ALTER TABLE articles ADD COLUMN story_via BIGINT;
ALTER TABLE articles ADD COLUMN story_similarity DOUBLE PRECISION;
CREATE INDEX articles_story ON articles (story);

-- MinHash signature of each article seen within the window.
CREATE TABLE article_signatures (
    article   BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    signature BYTEA NOT NULL,
    fetched   TIMESTAMPTZ NOT NULL
);

-- LSH band keys; rows older than the window are pruned at each refresh.
CREATE TABLE story_bands (
    band_key BIGINT NOT NULL,
    article  BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    fetched  TIMESTAMPTZ NOT NULL
);
CREATE INDEX story_bands_key ON story_bands (band_key, fetched);
CREATE INDEX story_bands_fetched ON story_bands (fetched);
CREATE INDEX story_bands_article ON story_bands (article);
