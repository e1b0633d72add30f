//! Near-duplicate detection: which stored article tells the same story as a new one.
//!
//! Exact duplicates (same canonical URL, same GUID, same normalized text) are caught earlier by
//! the store; this module catches the rest of "the same news": wire copy republished under a new
//! headline, a lede rewritten, a long version and its short version.
//!
//! Text goes through the same normalizer as matching (`normalize::text::normalize`), is split into
//! words the same way (letters, marks, digits), and becomes a set of word [`SHINGLE`]-grams. Each
//! article is summarised by a MinHash signature of that set (`minhash`, one-permutation hashing
//! with densification: one hash per shingle), indexed by LSH bands so a
//! new article is compared only with articles that share at least one band. The similarity is the
//! estimated *overlap coefficient* |A∩B| / min(|A|,|B|) rather than Jaccard, so a short version
//! of a story is as close to its long version as a rewrite is.
//!
//! Why MinHash rather than SimHash: both were measured on the labelled fixtures
//! (`tests/stories.rs` prints both); SimHash's Hamming distance tracks Jaccard-like similarity
//! and cannot tell a short version of a story from a different story, so its recall on the
//! "different length" pairs was far lower. `simhash` stays as the measured peer.
//!
//! The pure pieces (signature, band keys, similarity, best candidate) are used by the store's
//! transaction and by [`StoryIndex`], the in-memory window the benchmark drives.

pub mod minhash;
pub mod simhash;

use std::collections::{HashMap, VecDeque};

pub use minhash::Signature;

/// Words per shingle, chosen on the fixtures: single words join different stories on the same
/// topic; 3-grams break too easily on rewritten sentences.
pub const SHINGLE: usize = 2;

/// Below this many shingles an article is too short to judge (a headline only): it only ever
/// joins a story by exact text.
pub const MIN_SHINGLES: u32 = 8;

/// Default `[stories] window`: how far back a new article looks for its story.
pub const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// Default `[stories] threshold` on the estimated overlap coefficient (0–1), chosen on the
/// fixtures (see `tests/stories.rs`): between the highest different-story pair (0.36, two
/// events of one topic with the same officials and figures) and the lowest same-story pair
/// (0.44, a short version against a rewrite whose lede changed). The margin is narrow; raise
/// it if unrelated stories get joined.
pub const DEFAULT_THRESHOLD: f64 = 0.42;

/// Default `[stories] window_articles`: the most articles the window holds, newest kept. The
/// in-memory index costs 4-5 KB per article at its largest (its band-key table doubles as keys
/// come and go), so this bounds it near 130 MB whatever the number of sources (measured: a
/// 10,000-source refresh peaks at 205 MiB in all, 333 MiB with 50,000). At 10,000 busy sources
/// it shortens the effective window to the last hours, where most copies of a story appear.
pub const DEFAULT_WINDOW_ARTICLES: usize = 30_000;

/// How stories are formed; `[stories]` in marsad.toml.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoryParams {
    pub window: std::time::Duration,
    /// At most this many of the window's newest articles are looked at.
    pub window_articles: usize,
    pub threshold: f64,
}

impl Default for StoryParams {
    fn default() -> Self {
        StoryParams {
            window: DEFAULT_WINDOW,
            window_articles: DEFAULT_WINDOW_ARTICLES,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

static STORE_ASSIGNMENT_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Time this process has spent placing new articles in stories inside the store's refresh
/// transactions (candidate lookup, decision and the writes it needs), for the benchmark and for
/// anyone asking where a refresh's time goes.
pub fn store_assignment_time() -> std::time::Duration {
    std::time::Duration::from_nanos(
        STORE_ASSIGNMENT_NANOS.load(std::sync::atomic::Ordering::Relaxed),
    )
}

#[doc(hidden)]
pub fn add_store_assignment_time(spent: std::time::Duration) {
    STORE_ASSIGNMENT_NANOS.fetch_add(
        u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// 64-bit FNV-1a: stable across builds and platforms, because signatures are stored.
#[inline]
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// SplitMix64 finaliser: spreads FNV's weak low bits over the whole word.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes of the normalized words of `title` and `body`, in order.
pub fn word_hashes(title: &str, body: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity((title.len() + body.len()) / 6);
    for part in [title, body] {
        crate::normalize::text::with_words(part, |words| {
            out.extend(words.norms().map(|w| fnv1a(w.as_bytes(), FNV_OFFSET)));
        });
    }
    out
}

/// The distinct word `n`-gram hashes of a word-hash sequence (a text shorter than `n` words is
/// one shingle of all its words).
pub fn shingles_n(words: &[u64], n: usize) -> Vec<u64> {
    if words.is_empty() {
        return Vec::new();
    }
    let n = n.clamp(1, words.len());
    let mut out: Vec<u64> = words
        .windows(n)
        .map(|w| {
            let mut h = 0x9e37_79b9_7f4a_7c15_u64;
            for &x in w {
                h = mix(h ^ x);
            }
            h
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The distinct [`SHINGLE`]-gram hashes of an article's normalized text.
pub fn shingles(title: &str, body: &str) -> Vec<u64> {
    shingles_n(&word_hashes(title, body), SHINGLE)
}

/// The signature the store and the index keep for an article.
pub fn signature(title: &str, body: &str) -> Signature {
    Signature::of(&shingles(title, body))
}

/// The article's content hash (`normalize::text::content_hash`) and its [`signature`], from one
/// pass over its words: splitting and normalizing them is most of the cost of either.
pub fn content_hash_and_signature(title: &str, body: &str) -> (String, Signature) {
    content_hash_and_signature_with(title, body, |_, _| {})
}

/// [`content_hash_and_signature`], also handing `on_part` the words of the title (`false`) and
/// of the body (`true`), so the matcher reads them in the same pass.
pub(crate) fn content_hash_and_signature_with(
    title: &str,
    body: &str,
    mut on_part: impl FnMut(bool, &crate::normalize::text::Words),
) -> (String, Signature) {
    let mut hashes = Vec::with_capacity((title.len() + body.len()) / 6);
    let hash = crate::normalize::text::content_hash_of_words(title, body, |part, words| {
        hashes.extend(words.norms().map(|w| fnv1a(w.as_bytes(), FNV_OFFSET)));
        on_part(part, words);
    });
    (hash, Signature::of(&shingles_n(&hashes, SHINGLE)))
}

/// The candidate most similar to `sig`, if it reaches `threshold`. Ties go to the earlier
/// candidate, so the decision does not depend on hash-map order when callers pass them sorted.
pub fn best_match<'a, Id: Copy>(
    sig: &Signature,
    candidates: impl IntoIterator<Item = (Id, &'a Signature)>,
    threshold: f64,
) -> Option<(Id, f64)> {
    if sig.shingles < MIN_SHINGLES {
        return None;
    }
    let mut best: Option<(Id, f64)> = None;
    for (id, other) in candidates {
        if other.shingles < MIN_SHINGLES {
            continue;
        }
        let s = sig.similarity(other);
        if s >= threshold && best.is_none_or(|(_, b)| s > b) {
            best = Some((id, s));
        }
    }
    best
}

/// Where an article went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub story: u64,
    /// The article it was found similar to, and the similarity; `None` for a new story.
    pub joined: Option<(u64, f64)>,
}

struct Entry {
    id: u64,
    time: i64,
    story: u64,
    sig: Signature,
    /// Per band, how many entries back the next older entry with the same band key is (0 at
    /// the end of the chain): 4 bytes where a sequence number takes 8, 256 bytes per article.
    back: [u32; minhash::BANDS],
}

/// A band key's newest entry (its sequence number, in the low [`SEQ_BITS`] bits) and how many
/// window entries have the key (the high bits, saturating): one word per key keeps the map at
/// 16 bytes a slot instead of 24, the larger part of the window's memory. 2^40 sequence numbers
/// outlast any process; a count saturates only past 16 million articles sharing one key.
#[derive(Clone, Copy)]
struct Head(u64);

const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const COUNT_MAX: u64 = (1 << (64 - SEQ_BITS)) - 1;

impl Head {
    fn new(seq: u64, count: u64) -> Head {
        Head((seq & SEQ_MASK) | (count.min(COUNT_MAX) << SEQ_BITS))
    }
    fn seq(self) -> u64 {
        self.0 & SEQ_MASK
    }
    fn count(self) -> u64 {
        self.0 >> SEQ_BITS
    }
}

/// A band key shared by more window articles than this is not looked at: such a bucket holds
/// frequent shingles (stock phrases, "of the") that unrelated articles share, so it costs time
/// in proportion to the window and finds nothing the other bands would not. A real copy shares
/// many bands (a 10% rewrite keeps about half), and a short version of a story shares its
/// rarer ones too.
pub const MAX_BUCKET: u32 = 64;

/// Band keys are already well-mixed hashes: the map only spreads them with one multiplication
/// instead of hashing them again with SipHash (about half of the index's time at a 20,000-article
/// window: bench `stories` 22k → 41k articles/s).
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// An in-memory sliding window of recent articles with their LSH band index: what the store
/// keeps in `article_signatures`/`story_bands`, for the benchmark and for tests. Each band key
/// maps to the newest entry having it, and entries chain to older ones, so memory is a fixed
/// amount per article in the window (no per-key allocations).
pub struct StoryIndex {
    params: StoryParams,
    next_story: u64,
    entries: VecDeque<Entry>,
    /// Sequence number of the window's first entry (entries ever inserted before it).
    offset: u64,
    /// Per band key: the newest entry having it and how many window entries have it.
    heads: KeyMap<Head>,
}

impl StoryIndex {
    pub fn new(params: StoryParams) -> StoryIndex {
        StoryIndex {
            params,
            next_story: 1,
            entries: VecDeque::new(),
            offset: 0,
            heads: KeyMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Places article `id` seen at `time` (seconds; non-decreasing) with signature `sig`.
    pub fn insert(&mut self, id: u64, time: i64, sig: Signature) -> Placement {
        self.evict_before(time.saturating_sub(self.params.window.as_secs() as i64));
        let placement = match self.nearest(&sig) {
            Some((via, story, similarity)) => Placement {
                story,
                joined: Some((via, similarity)),
            },
            None => {
                let story = self.next_story;
                self.next_story += 1;
                Placement {
                    story,
                    joined: None,
                }
            }
        };
        self.push(id, time, placement.story, sig);
        placement
    }

    /// The window article most similar to `sig` at or above the threshold, as (article, its
    /// story, similarity), looking only at band buckets not crowded by more than [`MAX_BUCKET`]
    /// articles. Call [`StoryIndex::evict_before`] first to slide the window.
    pub fn nearest(&self, sig: &Signature) -> Option<(u64, u64, f64)> {
        let keys = sig.band_keys();
        let mut seen: Vec<u64> = Vec::new();
        for (band, key) in keys.iter().enumerate() {
            let mut seq = match self.heads.get(key) {
                Some(head) if head.count() <= u64::from(MAX_BUCKET) => head.seq(),
                _ => continue,
            };
            // A chain ends where it says so or at an entry already evicted.
            while seq >= self.offset {
                seen.push(seq);
                match self.entries[(seq - self.offset) as usize].back[band] {
                    0 => break,
                    back => seq -= u64::from(back),
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        let candidates = seen
            .iter()
            .map(|&seq| (seq, &self.entries[(seq - self.offset) as usize].sig));
        best_match(sig, candidates, self.params.threshold).map(|(seq, similarity)| {
            let e = &self.entries[(seq - self.offset) as usize];
            (e.id, e.story, similarity)
        })
    }

    /// Adds article `id` of story `story` to the window (after the articles already in it).
    pub fn push(&mut self, id: u64, time: i64, story: u64, sig: Signature) {
        let seq = self.offset + self.entries.len() as u64;
        let mut back = [0; minhash::BANDS];
        if sig.shingles >= MIN_SHINGLES {
            for (band, key) in sig.band_keys().iter().enumerate() {
                // One probe of the map per band (a lookup, then an insert, took two).
                match self.heads.entry(*key) {
                    std::collections::hash_map::Entry::Occupied(mut slot) => {
                        let head = *slot.get();
                        // An older entry too far back to say in 4 bytes ends the chain (never
                        // in practice: that is 4 billion articles ago).
                        back[band] = u32::try_from(seq - head.seq()).unwrap_or(0);
                        slot.insert(Head::new(seq, head.count() + 1));
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(Head::new(seq, 1));
                    }
                }
            }
        }
        self.next_story = self.next_story.max(story.saturating_add(1));
        self.entries.push_back(Entry {
            id,
            time,
            story,
            sig,
            back,
        });
        while self.entries.len() > self.params.window_articles.max(1) {
            self.pop_oldest();
        }
    }

    /// Renames stories among the `count` newest entries: `rename` gives an entry's story its
    /// final id (the store places a batch under provisional ids, then learns the real ones from
    /// the database).
    pub fn rename_recent_stories(&mut self, count: usize, rename: impl Fn(u64) -> u64) {
        let from = self.entries.len().saturating_sub(count);
        for e in self.entries.range_mut(from..) {
            e.story = rename(e.story);
        }
    }

    /// Drops articles seen before `before`. A band key whose newest entry is the one dropped
    /// leaves the map; chains through it end there by sequence number.
    pub fn evict_before(&mut self, before: i64) {
        while self
            .entries
            .front()
            .is_some_and(|front| front.time < before)
        {
            self.pop_oldest();
        }
    }

    /// Drops the oldest article.
    fn pop_oldest(&mut self) {
        if let Some(front) = self.entries.front() {
            if front.sig.shingles >= MIN_SHINGLES {
                // Every window entry with a key is in its chain, and the newest is evicted last:
                // the count is exact and reaches zero when the head itself leaves.
                for key in front.sig.band_keys() {
                    if let Some(head) = self.heads.get_mut(&key) {
                        if head.seq() == self.offset & SEQ_MASK {
                            self.heads.remove(&key);
                        } else {
                            *head = Head::new(head.seq(), head.count().saturating_sub(1));
                        }
                    }
                }
            }
            self.entries.pop_front();
            self.offset += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_gives_the_content_hash_and_the_signature_of_two() {
        let texts = [
            ("", ""),
            ("عنوان", ""),
            ("", "نص بلا عنوان"),
            ("Putin meets Netanyahu", LONG),
            (
                "بوتين يلتقي نتنياهو في موسكو",
                "قال الكرملين إنّ الاجتماع «مهمّ» وإنَّ الرئيسين ناقشا الوضع في سوريا ولبنان ٢٠٢٦.",
            ),
        ];
        for (title, body) in texts {
            let (hash, signature) = content_hash_and_signature(title, body);
            assert_eq!(
                hash,
                crate::normalize::text::content_hash(title, body),
                "{title}"
            );
            assert_eq!(signature, super::signature(title, body), "{title}");
        }
        // Moving a word between title and body still changes the hash.
        let (a, _) = content_hash_and_signature("بوتين يلتقي", "نتنياهو");
        let (b, _) = content_hash_and_signature("بوتين", "يلتقي نتنياهو");
        assert_ne!(a, b);
    }

    const LONG: &str = "The central bank raised its main interest rate by half a point on Tuesday, \
        the third increase this year, saying inflation had stayed above its target for too long. \
        The governor told reporters that further rises could follow if prices kept climbing.";

    #[test]
    fn shingles_ignore_case_diacritics_and_punctuation() {
        assert_eq!(
            shingles("Gaza", "قالَ الوزيرُ: «الاتفاق» قريب!"),
            shingles("GAZA", "قال الوزير الاتفاق قريب")
        );
    }

    #[test]
    fn a_rewrite_joins_and_another_story_does_not() {
        let mut index = StoryIndex::new(StoryParams::default());
        let first = index.insert(1, 0, signature("Bank raises rates", LONG));
        assert_eq!(first.joined, None);
        let rewrite = format!("{LONG} Markets fell after the announcement.");
        let second = index.insert(
            2,
            10,
            signature("Rates up again as inflation bites", &rewrite),
        );
        assert_eq!(second.story, first.story);
        assert_eq!(second.joined.map(|(id, _)| id), Some(1));
        let other = index.insert(
            3,
            20,
            signature(
                "Bank holds rates",
                "The central bank kept its interest rate unchanged on Thursday after two \
                 increases, and the governor said the economy needed time to adjust to them.",
            ),
        );
        assert_ne!(other.story, first.story);
    }

    #[test]
    fn the_window_forgets_old_articles() {
        let params = StoryParams {
            window: std::time::Duration::from_secs(100),
            threshold: DEFAULT_THRESHOLD,
            ..StoryParams::default()
        };
        let mut index = StoryIndex::new(params);
        let first = index.insert(1, 0, signature("A", LONG));
        let later = index.insert(2, 500, signature("A", LONG));
        assert_ne!(later.story, first.story);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn the_window_keeps_at_most_window_articles_newest_ones() {
        let random = |seed: u64| Signature {
            mins: std::array::from_fn(|i| mix(seed * 1000 + i as u64) as u32),
            shingles: 100,
        };
        let mut index = StoryIndex::new(StoryParams {
            window_articles: 3,
            ..StoryParams::default()
        });
        let first = index.insert(1, 0, random(1));
        // Three unrelated articles push the first out, though all are within the time window.
        for n in 2..5 {
            index.insert(n, n as i64, random(n));
        }
        assert_eq!(index.len(), 3);
        let copy = index.insert(10, 10, random(1));
        assert_eq!(copy.joined, None, "its original left the window");
        assert_ne!(copy.story, first.story);
        let copy_of_newest = index.insert(11, 11, random(4));
        assert_eq!(copy_of_newest.joined.map(|(id, _)| id), Some(4));
        assert_eq!(index.len(), 3);
        // Keys of the articles gone are gone from the index too: only the window's are left.
        assert!(index.heads.values().all(|head| head.count() <= 2));
        assert!(index.heads.len() <= 3 * minhash::BANDS);
    }

    #[test]
    fn a_copy_joins_past_band_buckets_crowded_by_unrelated_articles() {
        let random = |seed: u64| Signature {
            mins: std::array::from_fn(|i| mix(seed * 1000 + i as u64) as u32),
            shingles: 100,
        };
        let base = random(1);
        let params = StoryParams {
            window: std::time::Duration::from_secs(1000),
            threshold: DEFAULT_THRESHOLD,
            ..StoryParams::default()
        };
        let mut index = StoryIndex::new(params);
        let first = index.insert(1, 0, base.clone());
        // More unrelated articles than MAX_BUCKET share ten of the base's bands.
        let crowd = MAX_BUCKET as u64 + 20;
        for n in 0..crowd {
            let mut sig = random(100 + n);
            for b in 0..10 {
                sig.mins[b] = base.mins[b];
                sig.mins[b + minhash::BANDS] = base.mins[b + minhash::BANDS];
            }
            let p = index.insert(2 + n, 1 + n as i64, sig);
            assert_ne!(p.story, first.story, "unrelated article {n} joined");
        }
        let mut copy = base.clone();
        copy.mins[20] ^= 1;
        let joined = index.insert(1000, 500, copy);
        assert_eq!(joined.joined.map(|(id, _)| id), Some(1));
        // Once the crowd leaves the window, bucket counts are back to what is left.
        let later = index.insert(2000, 1400, base.clone());
        assert_eq!(index.len(), 2);
        assert_eq!(later.joined.map(|(id, _)| id), Some(1000));
        assert!(index.heads.values().all(|head| head.count() <= 2));
    }

    #[test]
    fn a_headline_alone_never_joins_by_similarity() {
        let mut index = StoryIndex::new(StoryParams::default());
        let a = index.insert(1, 0, signature("Bank raises rates", ""));
        let b = index.insert(2, 1, signature("Bank raises rates", ""));
        assert_ne!(a.story, b.story);
    }
}
