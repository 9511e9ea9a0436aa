//! Command-line style options of kickstart commands, parsed the way
//! pykickstart's argparse-based parsers do: `--opt=value` and `--opt value`,
//! unique prefixes of long options, flags that take no value, positional
//! words, and the last of repeated options winning.

use crate::diag::{Severity, suggest};

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Flag,
    Value,
    /// A value may follow (`--reformat` or `--reformat=xfs`).
    MaybeValue,
}

/// How many words a positional slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NArgs {
    /// Exactly one, required.
    One,
    /// Zero or one.
    Optional,
    /// Any number.
    Many,
}

#[derive(Debug, Clone)]
pub struct OptSpec {
    /// The canonical name first, then aliases, each with its leading `--`.
    pub names: &'static [&'static str],
    pub arity: Arity,
    pub required: bool,
    /// Deprecated options have no effect; pykickstart's validator rejects them.
    pub deprecated: bool,
    /// Values accumulate over repeats instead of the last one winning.
    pub extend: bool,
}

impl OptSpec {
    pub const fn new(names: &'static [&'static str], arity: Arity) -> Self {
        OptSpec {
            names,
            arity,
            required: false,
            deprecated: false,
            extend: false,
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub const fn extend(mut self) -> Self {
        self.extend = true;
        self
    }
    pub fn name(&self) -> &'static str {
        self.names[0]
    }
}

#[derive(Debug, Clone)]
pub struct PosSpec {
    pub name: &'static str,
    pub nargs: NArgs,
}

/// The syntax of one command: its positional slots and its options.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub positionals: Vec<PosSpec>,
    pub options: Vec<OptSpec>,
}

/// A finding while parsing options; the caller attaches the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn error(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            message: message.into(),
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// What [`parse`] found: per option (in spec order) the values given, per
/// positional slot its words.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub options: Vec<Vec<Option<String>>>,
    pub positionals: Vec<Vec<String>>,
}

impl Parsed {
    /// The given value(s) of option `index`: `None` when absent.
    pub fn given(&self, index: usize) -> Option<&[Option<String>]> {
        self.options
            .get(index)
            .filter(|v| !v.is_empty())
            .map(Vec::as_slice)
    }
}

fn looks_like_option(word: &str) -> bool {
    word.starts_with('-') && word.len() > 1 && word.parse::<f64>().is_err()
}

enum Lookup {
    Exact(usize),
    Prefix(usize, &'static str),
    Ambiguous(Vec<&'static str>),
    Unknown,
}

fn lookup(spec: &CommandSpec, name: &str) -> Lookup {
    for (i, o) in spec.options.iter().enumerate() {
        if o.names.contains(&name) {
            return Lookup::Exact(i);
        }
    }
    let mut hits: Vec<(usize, &'static str)> = Vec::new();
    if name.starts_with("--") && name.len() > 2 {
        for (i, o) in spec.options.iter().enumerate() {
            for n in o.names {
                if n.starts_with(name) {
                    hits.push((i, n));
                }
            }
        }
    }
    match hits.as_slice() {
        [] => Lookup::Unknown,
        [(i, n)] => Lookup::Prefix(*i, n),
        _ => {
            let mut names: Vec<&'static str> = hits.iter().map(|(_, n)| *n).collect();
            names.dedup();
            Lookup::Ambiguous(names)
        }
    }
}

/// Parses the words after the command name. `command` names the command in
/// messages.
pub fn parse(command: &str, spec: &CommandSpec, words: &[String]) -> (Parsed, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut parsed = Parsed {
        options: vec![Vec::new(); spec.options.len()],
        positionals: vec![Vec::new(); spec.positionals.len()],
    };
    let mut loose: Vec<&String> = Vec::new();
    let mut only_positionals = false;
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        if only_positionals || !looks_like_option(word) {
            loose.push(word);
            continue;
        }
        if word == "--" {
            only_positionals = true;
            continue;
        }
        let (name, explicit) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (word.as_str(), None),
        };
        let index = match lookup(spec, name) {
            Lookup::Exact(i) => i,
            Lookup::Prefix(i, full) => {
                findings.push(Finding::warning(format!(
                    "{command}: {name} is taken as an abbreviation of {full}; write it out"
                )));
                i
            }
            Lookup::Ambiguous(names) => {
                findings.push(Finding::error(format!(
                    "{command}: ambiguous option {name}: could be {}",
                    names.join(", ")
                )));
                continue;
            }
            Lookup::Unknown => {
                let all = spec.options.iter().flat_map(|o| o.names.iter().copied());
                findings.push(Finding::error(format!(
                    "{command}: unknown option {name}{}",
                    suggest(name, all)
                )));
                continue;
            }
        };
        let o = &spec.options[index];
        if o.deprecated {
            findings.push(Finding::error(format!(
                "{command}: {} is deprecated and has no effect; remove it",
                o.name()
            )));
        }
        let value = match (o.arity, explicit) {
            (Arity::Flag, None) => None,
            (Arity::Flag, Some(v)) => {
                findings.push(Finding::error(format!(
                    "{command}: {} takes no value (given {v:?})",
                    o.name()
                )));
                continue;
            }
            (Arity::Value | Arity::MaybeValue, Some(v)) => Some(v),
            (Arity::MaybeValue, None) => match iter.peek() {
                Some(next) if !looks_like_option(next) => iter.next().cloned(),
                _ => None,
            },
            (Arity::Value, None) => match iter.peek() {
                Some(next) if !looks_like_option(next) => iter.next().cloned(),
                _ => {
                    findings.push(Finding::error(format!(
                        "{command}: {} needs a value ({}=VALUE)",
                        o.name(),
                        o.name()
                    )));
                    continue;
                }
            },
        };
        let slot = &mut parsed.options[index];
        if !o.extend {
            slot.clear();
        }
        slot.push(value);
    }
    for o in spec.options.iter().enumerate().filter(|(_, o)| o.required) {
        if parsed.options[o.0].is_empty() {
            findings.push(Finding::error(format!(
                "{command}: {} is required",
                o.1.name()
            )));
        }
    }
    assign_positionals(command, spec, &loose, &mut parsed, &mut findings);
    (parsed, findings)
}

fn assign_positionals(
    command: &str,
    spec: &CommandSpec,
    loose: &[&String],
    parsed: &mut Parsed,
    findings: &mut Vec<Finding>,
) {
    let needed_after = |from: usize| {
        spec.positionals[from..]
            .iter()
            .filter(|p| p.nargs == NArgs::One)
            .count()
    };
    let mut rest = loose;
    for (i, p) in spec.positionals.iter().enumerate() {
        let take = match p.nargs {
            NArgs::One => 1.min(rest.len()),
            NArgs::Optional => usize::from(rest.len() > needed_after(i + 1)),
            NArgs::Many => rest.len().saturating_sub(needed_after(i + 1)),
        };
        if p.nargs == NArgs::One && take == 0 {
            findings.push(Finding::error(format!("{command}: missing {}", p.name)));
        }
        parsed.positionals[i] = rest[..take].iter().map(|s| s.to_string()).collect();
        rest = &rest[take..];
    }
    if !rest.is_empty() {
        let words: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
        findings.push(Finding::error(if spec.positionals.is_empty() {
            format!(
                "{command} takes no arguments besides options; unexpected: {}",
                words.join(" ")
            )
        } else {
            format!("{command}: unexpected arguments: {}", words.join(" "))
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CommandSpec {
        CommandSpec {
            positionals: vec![PosSpec {
                name: "mntpoint",
                nargs: NArgs::One,
            }],
            options: vec![
                OptSpec::new(&["--type", "--fstype"], Arity::Value),
                OptSpec::new(&["--grow"], Arity::Flag),
                OptSpec::new(&["--size"], Arity::Value),
                OptSpec::new(&["--ondisk", "--ondrive"], Arity::Value),
                OptSpec::new(&["--onpart"], Arity::Value),
                OptSpec::new(&["--isUtc"], Arity::Flag).deprecated(),
                OptSpec::new(&["--name"], Arity::Value).required(),
            ],
        }
    }

    fn run(line: &str) -> (Parsed, Vec<Finding>) {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse("part", &spec(), &words)
    }

    fn errors(f: &[Finding]) -> Vec<&str> {
        f.iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.message.as_str())
            .collect()
    }

    #[test]
    fn table() {
        // (line, error substrings expected; empty means no error)
        let cases: &[(&str, &[&str])] = &[
            ("/ --name=a --type=xfs --grow --size 10", &[]),
            ("/ --name a --fstype xfs", &[]),
            (
                "/ --name=a --tpye=xfs",
                &["unknown option --tpye (did you mean --type?)"],
            ),
            ("/ --name=a --grow=yes", &["--grow takes no value"]),
            ("/ --name=a --size", &["--size needs a value"]),
            ("/ --name=a --size --grow", &["--size needs a value"]),
            ("/ --name=a --on=sda", &["ambiguous option --on"]),
            ("/ --name=a --isUtc", &["--isUtc is deprecated"]),
            ("/", &["--name is required"]),
            ("--name=a", &["missing mntpoint"]),
            ("/ /boot --name=a", &["unexpected arguments: /boot"]),
        ];
        for (line, want) in cases {
            let (_, f) = run(line);
            let got = errors(&f);
            assert_eq!(got.len(), want.len(), "{line}: {got:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.contains(w), "{line}: {g:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn prefix_is_a_warning_and_resolves() {
        let (p, f) = run("/ --name=a --gr --ondr=sdb");
        assert!(errors(&f).is_empty(), "{f:?}");
        assert_eq!(f.len(), 2);
        assert_eq!(p.given(1), Some(&[None][..]));
        assert_eq!(p.given(3), Some(&[Some("sdb".to_string())][..]));
    }

    #[test]
    fn last_value_wins_and_negative_numbers_are_values() {
        let (p, f) = run("/ --name=a --size=1 --size -5");
        assert!(errors(&f).is_empty(), "{f:?}");
        assert_eq!(p.given(2), Some(&[Some("-5".to_string())][..]));
    }
}
