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

/// "did you mean" for a misspelt word, from a list of the valid ones.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
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
}
