//! Diagnostics: what is wrong (or odd) in a kickstart, and where.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// How bad a diagnostic is. Any error makes the kickstart invalid; warnings
/// leave it valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A place in a kickstart: the file as it was named and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl Loc {
    pub fn new(file: impl Into<Arc<str>>, line: usize) -> Self {
        Loc {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One finding, printed as `FILE:LINE: error: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(flatten)]
    pub loc: Loc,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.loc, self.severity, self.message)
    }
}

/// The diagnostics of one parse, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.push(loc, Severity::Error, message);
    }

    pub fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.push(loc, Severity::Warning, message);
    }

    pub fn push(&mut self, loc: &Loc, severity: Severity, message: impl Into<String>) {
        self.0.push(Diagnostic {
            loc: loc.clone(),
            severity,
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Words longer than this get no suggestion: no keyword comes near it, and
/// scoring costs the product of the two lengths per candidate.
const SUGGEST_MAX_LEN: usize = 48;

/// "did you mean" for a misspelt word, from a list of the valid ones.
///
/// A typo keeps a word's length within a few characters, so a candidate less
/// than half or more than twice as long (give or take two) is not scored: a
/// long word sharing a keyword's first letters would otherwise reach the
/// threshold on the prefix alone, and a file of garbage words would cost
/// seconds to diagnose.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    if len > SUGGEST_MAX_LEN {
        return None;
    }
    let mut counts = [0u16; 256];
    for ch in word.chars() {
        counts[bucket(ch)] += 1;
    }
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let clen = c.chars().count();
        if len > 2 * clen + 2 || clen > 2 * len + 2 || !may_reach_threshold(&counts, len, c, clen) {
            continue;
        }
        let score = strsim::jaro_winkler(word, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

fn bucket(ch: char) -> usize {
    (u32::from(ch) & 0xff) as usize
}

/// Whether `candidate` can score 0.8 against the word whose characters
/// `counts` holds. Jaro-Winkler adds its prefix bonus only above a Jaro
/// similarity of 0.7, and that similarity is at most (m/|a| + m/|b| + 1) / 3
/// for m matching characters; m is at most the characters the two words have
/// in common (counted here in buckets, which can only overcount). One pass over
/// the candidate instead of Jaro's pass per pair of characters.
fn may_reach_threshold(counts: &[u16; 256], len: usize, candidate: &str, clen: usize) -> bool {
    let mut used = [0u16; 256];
    let mut common = 0usize;
    for ch in candidate.chars() {
        let b = bucket(ch);
        if used[b] < counts[b] {
            used[b] += 1;
            common += 1;
        }
    }
    let common = common as f64;
    len > 0 && clen > 0 && common / len as f64 + common / clen as f64 > 1.1
}

/// Appends ` (did you mean X?)` when there is a close candidate.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(c) => format!(" (did you mean {c}?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_severity_message() {
        let d = Diagnostic {
            loc: Loc::new("ks.cfg", 12),
            severity: Severity::Error,
            message: "unknown option --tpye for autopart".into(),
        };
        assert_eq!(
            d.to_string(),
            "ks.cfg:12: error: unknown option --tpye for autopart"
        );
    }

    #[test]
    fn suggestions() {
        let opts = ["--type", "--fstype", "--encrypted", "--nohome"];
        assert_eq!(did_you_mean("--tpye", opts), Some("--type"));
        assert_eq!(did_you_mean("--encrpted", opts), Some("--encrypted"));
        assert_eq!(did_you_mean("--zzzzzz", opts), None);
    }

    #[test]
    fn no_suggestion_for_a_word_far_longer_than_every_candidate() {
        let long = format!("--type{}", "x".repeat(40));
        assert_eq!(did_you_mean(&long, ["--type"]), None);
        assert_eq!(did_you_mean(&"--type".repeat(20), ["--type"]), None);
        assert_eq!(did_you_mean("--typee", ["--type"]), Some("--type"));
    }

    proptest::proptest! {
        /// The common-character bound only skips candidates that could not
        /// reach the threshold: for words of similar length the answer is the
        /// one of scoring every candidate.
        #[test]
        fn the_bound_never_drops_a_suggestion(
            word in "[a-dé-]{1,12}",
            cands in proptest::collection::vec("[a-dé-]{1,12}", 1..8),
        ) {
            let len = word.chars().count();
            let near: Vec<&str> = cands
                .iter()
                .map(String::as_str)
                .filter(|c| {
                    let clen = c.chars().count();
                    len <= 2 * clen + 2 && clen <= 2 * len + 2
                })
                .collect();
            let mut best: Option<(f64, &str)> = None;
            for c in &near {
                let score = strsim::jaro_winkler(&word, c);
                if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, c));
                }
            }
            proptest::prop_assert_eq!(did_you_mean(&word, near.iter().copied()), best.map(|(_, c)| c));
        }
    }
}
