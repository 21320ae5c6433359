//! The text analyzer behind BM25: text to terms, terms to stable ids.
//!
//! Steps, in order: Unicode word segmentation (UAX #29 word boundaries, so "don't" and "3.5"
//! are one word and punctuation is dropped), lowercasing (with the typographic apostrophe
//! `’` read as `'`), dropping words longer than [`MAX_WORD_CHARS`], optionally dropping stop
//! words (matched on the lowercased word), and Snowball stemming in the analyzer's
//! [`Language`]. Empty stems are dropped.
//!
//! A term's id is `|mmh3(stem)|`: MurmurHash3 x86 32-bit of the stem's UTF-8 bytes with seed 0,
//! read as a signed 32-bit integer, absolute value. This is the id fastembed's `qdrant/bm25`
//! gives a stem, so ids need no vocabulary (nothing to persist, segments and the server agree
//! without coordination, a query term unknown to the collection simply matches nothing). Two
//! different stems can share an id (about one pair in a vocabulary of 90,000 stems): their
//! counts are then added as if they were one term.

mod murmur3;
mod stop_words;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// Words longer than this many characters are dropped (fastembed's `token_max_length`): they
/// are mostly identifiers or noise, and would each be a term of their own.
pub const MAX_WORD_CHARS: usize = 40;

/// Errors building an analyzer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("unknown language `{name}` (known: {})", Language::NAMES)]
    UnknownLanguage { name: String },
    #[error("there is no stop-word list for {language} (only for english): turn stop words off")]
    NoStopWords { language: &'static str },
}

/// A Snowball stemmer's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    Arabic,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
}

const LANGUAGES: [(Language, &str, Algorithm); 18] = [
    (Language::Arabic, "arabic", Algorithm::Arabic),
    (Language::Danish, "danish", Algorithm::Danish),
    (Language::Dutch, "dutch", Algorithm::Dutch),
    (Language::English, "english", Algorithm::English),
    (Language::Finnish, "finnish", Algorithm::Finnish),
    (Language::French, "french", Algorithm::French),
    (Language::German, "german", Algorithm::German),
    (Language::Greek, "greek", Algorithm::Greek),
    (Language::Hungarian, "hungarian", Algorithm::Hungarian),
    (Language::Italian, "italian", Algorithm::Italian),
    (Language::Norwegian, "norwegian", Algorithm::Norwegian),
    (Language::Portuguese, "portuguese", Algorithm::Portuguese),
    (Language::Romanian, "romanian", Algorithm::Romanian),
    (Language::Russian, "russian", Algorithm::Russian),
    (Language::Spanish, "spanish", Algorithm::Spanish),
    (Language::Swedish, "swedish", Algorithm::Swedish),
    (Language::Tamil, "tamil", Algorithm::Tamil),
    (Language::Turkish, "turkish", Algorithm::Turkish),
];

impl Language {
    /// Every name [`Language::parse`] accepts, for messages.
    pub const NAMES: &str = "arabic, danish, dutch, english, finnish, french, german, greek, hungarian, italian, norwegian, portuguese, romanian, russian, spanish, swedish, tamil, turkish";

    /// A language by its English name, any case.
    pub fn parse(name: &str) -> Option<Language> {
        let lower = name.to_ascii_lowercase();
        LANGUAGES
            .iter()
            .find(|(_, n, _)| *n == lower)
            .map(|&(l, _, _)| l)
    }

    /// The lowercase name [`Language::parse`] reads back (as stored in manifests).
    pub fn name(self) -> &'static str {
        LANGUAGES
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or("english", |&(_, n, _)| n)
    }

    fn algorithm(self) -> Algorithm {
        LANGUAGES
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or(Algorithm::English, |&(_, _, a)| a)
    }

    fn stop_words(self) -> Option<&'static [&'static str]> {
        match self {
            Language::English => Some(stop_words::ENGLISH),
            _ => None,
        }
    }
}

/// The id of a stemmed term (see the crate documentation): `|mmh3(term)|`.
pub fn term_id(term: &str) -> u32 {
    (murmur3::hash32(term.as_bytes(), 0) as i32).unsigned_abs()
}

/// A document's terms counted: what BM25 needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermCounts {
    /// `(term id, occurrences)`, ascending by id, ids distinct, occurrences at least 1.
    pub terms: Vec<(u32, u32)>,
    /// Terms kept after stop words and length, counted with repetition: the sum of the
    /// occurrences, BM25's document length.
    pub length: u32,
}

/// Turns text into stemmed terms. Cheap to share between threads; building one builds its
/// stemmer and stop-word set.
pub struct Analyzer {
    language: Language,
    stemmer: Stemmer,
    stop_words: Option<std::collections::HashSet<&'static str>>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("language", &self.language)
            .field("stop_words", &self.stop_words.is_some())
            .finish()
    }
}

impl Analyzer {
    /// An analyzer for `language`, dropping stop words if `stop_words` (a list exists for
    /// English only: other languages with stop words on are an error).
    pub fn new(language: Language, stop_words: bool) -> Result<Analyzer, Error> {
        let stop_words = match (stop_words, language.stop_words()) {
            (false, _) => None,
            (true, Some(list)) => Some(list.iter().copied().collect()),
            (true, None) => {
                return Err(Error::NoStopWords {
                    language: language.name(),
                });
            }
        };
        Ok(Analyzer {
            language,
            stemmer: Stemmer::create(language.algorithm()),
            stop_words,
        })
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The stems of `text`'s words, in text order, with repetition.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in text.unicode_words() {
            let lower = word.to_lowercase().replace('\u{2019}', "'");
            if lower.chars().count() > MAX_WORD_CHARS {
                continue;
            }
            if self
                .stop_words
                .as_ref()
                .is_some_and(|s| s.contains(lower.as_str()))
            {
                continue;
            }
            let stem = self.stemmer.stem(&lower);
            if !stem.is_empty() {
                out.push(stem.into_owned());
            }
        }
        out
    }

    /// `text`'s term ids and how often each occurs, and its length.
    pub fn count(&self, text: &str) -> TermCounts {
        let mut ids: Vec<u32> = self.terms(text).iter().map(|t| term_id(t)).collect();
        let length = ids.len() as u32;
        ids.sort_unstable();
        let mut terms: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            match terms.last_mut() {
                Some((last, n)) if *last == id => *n += 1,
                _ => terms.push((id, 1)),
            }
        }
        TermCounts { terms, length }
    }

    /// `text`'s distinct term ids, ascending (a query: each term counts once).
    pub fn query_terms(&self, text: &str) -> Vec<u32> {
        self.count(text)
            .terms
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_lowercases_drops_stop_words_and_stems() {
        let a = Analyzer::new(Language::English, true).unwrap();
        assert_eq!(
            a.terms("The Dogs were RUNNING, don't they? Running’s fun; 3.5 km."),
            vec!["dog", "run", "run", "fun", "3.5", "km"]
        );
        let keep = Analyzer::new(Language::English, false).unwrap();
        assert_eq!(keep.terms("The dogs don't"), vec!["the", "dog", "don't"]);
        let long = "x".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(keep.terms(&format!("a {long} b")), vec!["a", "b"]);
    }

    #[test]
    fn counts_are_sorted_by_id_and_sum_to_the_length() {
        let a = Analyzer::new(Language::English, true).unwrap();
        let c = a.count("cats chase cats and the cat naps");
        assert_eq!(c.length, 5);
        let cat = term_id("cat");
        assert!(c.terms.contains(&(cat, 3)));
        assert!(c.terms.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(c.terms.iter().map(|t| t.1).sum::<u32>(), c.length);
        assert_eq!(a.query_terms("cat cats"), vec![cat]);
        assert_eq!(a.count("the and of"), TermCounts::default());
    }

    #[test]
    fn ids_are_fastembeds() {
        // `abs(mmh3.hash("foo"))` in Python.
        assert_eq!(term_id("foo"), 156_908_512);
    }

    #[test]
    fn languages_round_trip_and_stop_words_exist_only_for_english() {
        for (l, name, _) in LANGUAGES {
            assert_eq!(Language::parse(name), Some(l));
            assert_eq!(l.name(), name);
        }
        assert_eq!(Language::parse("English"), Some(Language::English));
        assert_eq!(Language::parse("klingon"), None);
        assert_eq!(
            Analyzer::new(Language::French, true).unwrap_err(),
            Error::NoStopWords { language: "french" }
        );
        let fr = Analyzer::new(Language::French, false).unwrap();
        assert_eq!(
            fr.terms("Les chevaux mangeaient"),
            vec!["le", "cheval", "mang"]
        );
    }
}
