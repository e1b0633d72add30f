//! Normalization shared by every stage that compares text: Arabic/Unicode text folding (`text`)
//! and URL canonicalization (`url`). Text and watchlist terms go through the same functions, so a
//! term and the article words it should match can never be folded differently.
pub mod text;
pub mod url;
