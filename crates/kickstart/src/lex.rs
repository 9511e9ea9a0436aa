//! Splitting a kickstart line into words the way pykickstart does (Python's
//! `shlex.split` in POSIX mode), and quoting words back.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LexError {
    #[error("no closing quotation: a {0} quote is opened and never closed on this line")]
    NoClosingQuotation(char),
    #[error("no escaped character: the line ends with a backslash")]
    NoEscapedCharacter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Space,
    Word,
    Quote(char),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `line` into words. With `comments`, a `#` outside quotes ends the
/// line (also in the middle of a word, as shlex does).
pub fn split(line: &str, comments: bool) -> Result<Vec<String>, LexError> {
    let mut words = Vec::new();
    let mut token = String::new();
    // A token that had quotes is kept even when empty (`""`).
    let mut quoted = false;
    let mut state = State::Space;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match state {
            State::Space | State::Word => {
                if is_space(c) || (comments && c == '#') {
                    if state == State::Word {
                        words.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = State::Space;
                    if c == '#' {
                        return Ok(words);
                    }
                } else if c == '"' || c == '\'' {
                    state = State::Quote(c);
                    quoted = true;
                } else if c == '\\' {
                    match chars.next() {
                        Some(n) => token.push(n),
                        None => return Err(LexError::NoEscapedCharacter),
                    }
                    state = State::Word;
                } else {
                    token.push(c);
                    state = State::Word;
                }
            }
            State::Quote(q) => {
                if c == q {
                    state = State::Word;
                } else if q == '"' && c == '\\' {
                    match chars.next() {
                        Some(n) if n == '"' || n == '\\' => token.push(n),
                        Some(n) => {
                            token.push('\\');
                            token.push(n);
                        }
                        None => return Err(LexError::NoClosingQuotation(q)),
                    }
                } else {
                    token.push(c);
                }
            }
        }
    }
    match state {
        State::Quote(q) => Err(LexError::NoClosingQuotation(q)),
        State::Word => {
            words.push(token);
            Ok(words)
        }
        State::Space => {
            if quoted {
                words.push(token);
            }
            Ok(words)
        }
    }
}

/// Characters that need no quoting: shlex splits only on blanks, quotes,
/// backslashes and `#`.
fn is_safe(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"'\"\\#".contains(c)
}

/// Quotes a word so that [`split`] gives it back unchanged.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_safe) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Renders `--name=value`, quoting the value when needed.
pub fn option(name: &str, value: &str) -> String {
    format!("{name}={}", quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_shlex() {
        let cases: &[(&str, &[&str])] = &[
            ("a#b c", &["a"]),
            ("a #b c", &["a"]),
            ("\"a#b\" c", &["a#b", "c"]),
            ("a\\ b", &["a b"]),
            ("\"x\\\"y\\\\z\\$\\q\"", &["x\"y\\z\\$\\q"]),
            ("'a\\b'", &["a\\b"]),
            ("--opt=\"a b\" c", &["--opt=a b", "c"]),
            ("a\"b c\"d", &["ab cd"]),
            ("\"\"", &[""]),
            ("a \\#b", &["a", "#b"]),
            ("  part  /boot\t--size=1 ", &["part", "/boot", "--size=1"]),
            ("", &[]),
            ("# only a comment", &[]),
        ];
        for (line, want) in cases {
            let got = split(line, true).unwrap();
            assert_eq!(&got, want, "line {line:?}");
        }
    }

    #[test]
    fn without_comments_hash_is_a_character() {
        assert_eq!(
            split("echo a#b # c", false).unwrap(),
            ["echo", "a#b", "#", "c"]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(split("a \"b", true), Err(LexError::NoClosingQuotation('"')));
        assert_eq!(split("a 'b", true), Err(LexError::NoClosingQuotation('\'')));
        assert_eq!(split("a\\", true), Err(LexError::NoEscapedCharacter));
    }

    #[test]
    fn quote_round_trips() {
        for w in [
            "",
            "plain",
            "a b",
            "x\"y",
            "back\\slash",
            "#hash",
            "$HOME",
            "it's",
            "tab\there",
            "--x=y",
        ] {
            assert_eq!(split(&quote(w), true).unwrap(), [w], "word {w:?}");
        }
    }
}
