//! Reading kickstart files: `%ksappend` and `%include` are resolved here into
//! one stream of lines, each remembering the file and line it came from.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostics, Loc};
use crate::lex;

/// Where included files come from. The validator reads local files; the
/// installer adds URLs.
pub trait Loader {
    fn load(&self, path: &Path) -> io::Result<String>;
}

/// Reads local files (and `file://` URLs).
#[derive(Debug, Default, Clone, Copy)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn load(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not UTF-8 text (first bad byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }
}

/// An in-memory set of files, for tests and fuzzing.
#[derive(Debug, Default, Clone)]
pub struct MemLoader(pub HashMap<PathBuf, String>);

impl Loader for MemLoader {
    fn load(&self, path: &Path) -> io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

/// One line of the flattened input.
#[derive(Debug, Clone)]
pub struct Line {
    pub loc: Loc,
    pub text: String,
}

/// All lines of a kickstart with its includes resolved, and how many lines
/// the top-level file has (pykickstart names its last line for a section
/// left open at the end).
#[derive(Debug, Clone, Default)]
pub struct Flattened {
    pub lines: Vec<Line>,
    pub top_level_lines: usize,
    /// The top-level file's name.
    pub top_file: Arc<str>,
    /// Every file read, in order, the top-level one first.
    pub files: Vec<PathBuf>,
}

const MAX_DEPTH: usize = 16;

/// Resolves `name` as written in `%include`/`%ksappend` inside `including`.
fn resolve(including: &Path, name: &str) -> PathBuf {
    let name = name.strip_prefix("file://").unwrap_or(name);
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match including.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn is_remote(name: &str) -> bool {
    ["http://", "https://", "ftp://", "nfs:", "hd:", "cdrom:"]
        .iter()
        .any(|s| name.starts_with(s))
}

/// Reads `path` and everything it includes.
pub fn flatten(path: &Path, loader: &dyn Loader, diags: &mut Diagnostics) -> Option<Flattened> {
    let text = match loader.load(path) {
        Ok(t) => t,
        Err(e) => {
            diags.error(
                &Loc::new(path.display().to_string(), 0),
                format!("cannot read the kickstart: {e}"),
            );
            return None;
        }
    };
    Some(flatten_text(path, &text, loader, diags))
}

/// Flattens a kickstart given as text; `path` names it and anchors relative
/// includes.
pub fn flatten_text(
    path: &Path,
    text: &str,
    loader: &dyn Loader,
    diags: &mut Diagnostics,
) -> Flattened {
    let mut out = Flattened {
        top_level_lines: text.lines().count(),
        top_file: Arc::from(path.display().to_string()),
        ..Flattened::default()
    };
    if text.trim().is_empty() {
        diags.error(
            &Loc::new(path.display().to_string(), 1),
            "the kickstart is empty",
        );
    }
    let mut stack = vec![path.to_path_buf()];
    read_into(path, text, loader, diags, &mut stack, &mut out);
    out
}

fn read_into(
    path: &Path,
    text: &str,
    loader: &dyn Loader,
    diags: &mut Diagnostics,
    stack: &mut Vec<PathBuf>,
    out: &mut Flattened,
) {
    out.files.push(path.to_path_buf());
    let file: Arc<str> = Arc::from(path.display().to_string());
    for (i, raw) in text.lines().enumerate() {
        let loc = Loc {
            file: file.clone(),
            line: i + 1,
        };
        let trimmed = raw.trim_start();
        let directive = trimmed.split_whitespace().next().unwrap_or_default();
        if directive != "%include" && directive != "%ksappend" {
            // Carriage returns ending a line are its line ending (a file saved on
            // Windows), however many: kept, a script would run `cmd\r`, and
            // each render and parse would take one more away.
            out.lines.push(Line {
                loc,
                text: raw.trim_end_matches('\r').to_string(),
            });
            continue;
        }
        let words = match lex::split(trimmed, true) {
            Ok(w) => w,
            Err(e) => {
                diags.error(&loc, format!("{directive}: {e}"));
                continue;
            }
        };
        let Some(target) = words.get(1).filter(|t| !t.is_empty()) else {
            diags.error(&loc, format!("{directive} needs a file name or URL"));
            continue;
        };
        if is_remote(target) {
            diags.warning(
                &loc,
                format!(
                    "{directive} {target}: not followed while validating; the installer fetches it"
                ),
            );
            continue;
        }
        let target_path = resolve(path, target);
        if stack.contains(&target_path) {
            let chain: Vec<String> = stack
                .iter()
                .chain(std::iter::once(&target_path))
                .map(|p| p.display().to_string())
                .collect();
            diags.error(&loc, format!("{directive} cycle: {}", chain.join(" -> ")));
            continue;
        }
        if stack.len() >= MAX_DEPTH {
            diags.error(
                &loc,
                format!("{directive} nested more than {MAX_DEPTH} deep"),
            );
            continue;
        }
        match loader.load(&target_path) {
            Ok(included) => {
                stack.push(target_path.clone());
                read_into(&target_path, &included, loader, diags, stack, out);
                stack.pop();
            }
            Err(e) => {
                let hint = if target.starts_with("/tmp/") {
                    " (a file a %pre script writes exists only during the install)"
                } else {
                    ""
                };
                diags.error(
                    &loc,
                    format!("{directive} {}: {e}{hint}", target_path.display()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(files: &[(&str, &str)]) -> MemLoader {
        MemLoader(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn includes_are_relative_to_the_including_file_and_keep_their_lines() {
        let l = mem(&[
            ("/ks/main.ks", "text\n%include parts/disk.ks\nreboot\n"),
            ("/ks/parts/disk.ks", "zerombr\n%ksappend net.ks\n"),
            ("/ks/parts/net.ks", "network --bootproto=dhcp\n"),
        ]);
        let mut d = Diagnostics::default();
        let f = flatten(Path::new("/ks/main.ks"), &l, &mut d).unwrap();
        assert!(d.is_empty(), "{d:?}");
        let got: Vec<String> = f
            .lines
            .iter()
            .map(|l| format!("{} {}", l.loc, l.text))
            .collect();
        assert_eq!(
            got,
            [
                "/ks/main.ks:1 text",
                "/ks/parts/disk.ks:1 zerombr",
                "/ks/parts/net.ks:1 network --bootproto=dhcp",
                "/ks/main.ks:3 reboot",
            ]
        );
        assert_eq!(f.top_level_lines, 3);
    }

    #[test]
    fn cycles_and_missing_files_are_reported_at_the_directive() {
        let l = mem(&[
            ("/a.ks", "text\n%include b.ks\n"),
            ("/b.ks", "%include /a.ks\n%include missing.ks\n%include\n"),
        ]);
        let mut d = Diagnostics::default();
        flatten(Path::new("/a.ks"), &l, &mut d).unwrap();
        let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with("/b.ks:1: error: %include cycle: /a.ks -> /b.ks -> /a.ks"));
        assert!(msgs[1].starts_with("/b.ks:2: error: %include /missing.ks:"));
        assert!(msgs[2].starts_with("/b.ks:3: error: %include needs a file name"));
    }
}
