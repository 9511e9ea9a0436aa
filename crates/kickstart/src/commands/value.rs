//! How typed fields of a command read their option values and write them back.

use crate::options::{Arity, NArgs};

/// A field filled from an option (`--name` or `--name=value`).
pub trait OptValue: Sized + Default {
    const ARITY: Arity;
    /// Repeated options accumulate (comma lists) instead of the last winning.
    const EXTEND: bool = false;
    /// The values the option was given (at least one; `None` for flags).
    fn from_given(given: &[Option<String>]) -> Result<Self, String>;
    /// The option as it is written back, or nothing when it is at its default.
    fn render(&self, name: &str, out: &mut Vec<String>);
}

/// A field filled from positional words.
pub trait PosValue: Sized + Default {
    const NARGS: NArgs;
    fn from_words(words: Vec<String>) -> Self;
    fn render(&self, out: &mut Vec<String>);
}

fn last(given: &[Option<String>]) -> &str {
    given.last().and_then(|v| v.as_deref()).unwrap_or_default()
}

impl OptValue for bool {
    const ARITY: Arity = Arity::Flag;
    fn from_given(_: &[Option<String>]) -> Result<Self, String> {
        Ok(true)
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if *self {
            out.push(name.to_string());
        }
    }
}

impl OptValue for String {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        Ok(last(given).to_string())
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        out.push(format!("{name}={}", self));
    }
}

impl OptValue for Option<String> {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        Ok(Some(last(given).to_string()))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if let Some(v) = self {
            out.push(format!("{name}={v}"));
        }
    }
}

/// Python's `int()` on a string: optional sign, digits, surrounding blanks
/// and `_` between digits allowed.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(d) => (-1, d),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    digits
        .replace('_', "")
        .parse::<i64>()
        .ok()
        .map(|v| sign * v)
}

impl OptValue for Option<i64> {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        let v = last(given);
        parse_int(v)
            .map(Some)
            .ok_or_else(|| format!("invalid number {v:?} (a whole number is needed)"))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if let Some(v) = self {
            out.push(format!("{name}={v}"));
        }
    }
}

/// pykickstart's `ksboolean`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Some(true),
        "off" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl OptValue for Option<bool> {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        let v = last(given);
        parse_bool(v)
            .map(Some)
            .ok_or_else(|| format!("invalid boolean {v:?} (use yes/no, on/off, true/false, 1/0)"))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if let Some(v) = self {
            out.push(format!("{name}={}", if *v { "yes" } else { "no" }));
        }
    }
}

/// pykickstart's `commaSplit`: a comma-separated list, blanks trimmed and
/// empty items dropped.
pub fn comma_split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect()
}

impl OptValue for Vec<String> {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        Ok(comma_split(last(given)))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if !self.is_empty() {
            out.push(format!("{name}={}", self.join(",")));
        }
    }
}

/// A comma list whose repeats add up (`services --enabled=a --enabled=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct CommaList(pub Vec<String>);

impl OptValue for CommaList {
    const ARITY: Arity = Arity::Value;
    const EXTEND: bool = true;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        Ok(CommaList(
            given
                .iter()
                .flat_map(|v| comma_split(v.as_deref().unwrap_or_default()))
                .collect(),
        ))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        OptValue::render(&self.0, name, out);
    }
}

/// A value-taking option that may be repeated, each value kept
/// (`firewall --port=… --port=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Repeated(pub Vec<String>);

impl OptValue for Repeated {
    const ARITY: Arity = Arity::Value;
    const EXTEND: bool = true;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        Ok(Repeated(
            given
                .iter()
                .map(|v| v.clone().unwrap_or_default())
                .collect(),
        ))
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        for v in &self.0 {
            out.push(format!("{name}={v}"));
        }
    }
}

/// A closed set of words (`autopart --type=thinp`).
pub trait KsEnum: Sized + Copy {
    const CHOICES: &'static [&'static str];
    /// Accept the words in any letter case (pykickstart lower-cases some).
    const FOLD_CASE: bool = false;
    fn from_word(s: &str) -> Option<Self>;
    fn as_word(&self) -> &'static str;
}

impl<E: KsEnum> OptValue for Option<E> {
    const ARITY: Arity = Arity::Value;
    fn from_given(given: &[Option<String>]) -> Result<Self, String> {
        let v = last(given);
        let folded = if E::FOLD_CASE {
            v.to_lowercase()
        } else {
            v.to_string()
        };
        E::from_word(&folded).map(Some).ok_or_else(|| {
            format!(
                "invalid choice {v:?} (choose from {})",
                E::CHOICES.join(", ")
            )
        })
    }
    fn render(&self, name: &str, out: &mut Vec<String>) {
        if let Some(v) = self {
            out.push(format!("{name}={}", v.as_word()));
        }
    }
}

impl PosValue for String {
    const NARGS: NArgs = NArgs::One;
    fn from_words(words: Vec<String>) -> Self {
        words.into_iter().next().unwrap_or_default()
    }
    fn render(&self, out: &mut Vec<String>) {
        out.push(self.clone());
    }
}

impl PosValue for Option<String> {
    const NARGS: NArgs = NArgs::Optional;
    fn from_words(words: Vec<String>) -> Self {
        words.into_iter().next()
    }
    fn render(&self, out: &mut Vec<String>) {
        out.extend(self.iter().cloned());
    }
}

impl PosValue for Vec<String> {
    const NARGS: NArgs = NArgs::Many;
    fn from_words(words: Vec<String>) -> Self {
        words
    }
    fn render(&self, out: &mut Vec<String>) {
        out.extend(self.iter().cloned());
    }
}

/// Declares a [`KsEnum`]: `ks_enum! { pub enum T { A = "a", B = "b" } }`.
macro_rules! ks_enum {
    (fold_case $($rest:tt)*) => { $crate::commands::value::ks_enum!(@impl true, $($rest)*); };
    ($(#[doc = $doc:literal])* pub enum $($rest:tt)*) => {
        $crate::commands::value::ks_enum!(@impl false, $(#[doc = $doc])* pub enum $($rest)*);
    };
    (@impl $fold:expr, $(#[doc = $doc:literal])* pub enum $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name { $($(#[doc = $vdoc])* #[serde(rename = $word)] $variant),+ }
        impl $crate::commands::value::KsEnum for $name {
            const CHOICES: &'static [&'static str] = &[$($word),+];
            const FOLD_CASE: bool = $fold;
            fn from_word(s: &str) -> Option<Self> {
                match s { $($word => Some($name::$variant),)+ _ => None }
            }
            fn as_word(&self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }
    };
}
pub(crate) use ks_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_python() {
        for (s, want) in [
            ("10", Some(10)),
            (" 10 ", Some(10)),
            ("+3", Some(3)),
            ("-3", Some(-3)),
            ("1_000", Some(1000)),
            ("1__0", None),
            ("_1", None),
            ("1.5", None),
            ("", None),
            ("10M", None),
        ] {
            assert_eq!(parse_int(s), want, "{s:?}");
        }
    }

    #[test]
    fn booleans_like_ksboolean() {
        assert_eq!(parse_bool("On"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn comma_lists_drop_blanks() {
        assert_eq!(comma_split(" sda, ,sdb,"), ["sda", "sdb"]);
    }
}
