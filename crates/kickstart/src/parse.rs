//! The kickstart state machine: commands outside sections, sections from
//! their header to `%end`, cross-command rules, duplicates.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::commands::{self, Check, Command, Syntax, other};
use crate::diag::{Diagnostics, Loc, suggest};
use crate::lex;
use crate::model::{Item, Kickstart, Located};
use crate::options::Finding;
use crate::sections::{
    self, Certificate, CertificateHeader, Packages, PackagesHeader, RawSection, Script,
    ScriptHeader,
};
use crate::source::{self, Flattened, Line, Loader};

/// The result of parsing: the model (as far as it could be read) and every
/// diagnostic. Valid means no errors.
#[derive(Debug, Clone, Default)]
pub struct Parse {
    pub kickstart: Kickstart,
    pub diagnostics: Diagnostics,
    /// Every file read, the top-level one first.
    pub files: Vec<std::path::PathBuf>,
}

impl Parse {
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.has_errors()
    }
}

/// Parses the kickstart at `path`, following `%include` and `%ksappend`.
pub fn parse_file(path: &Path, loader: &dyn Loader) -> Parse {
    let mut diagnostics = Diagnostics::default();
    match source::flatten(path, loader, &mut diagnostics) {
        Some(flat) => finish(flat, diagnostics),
        None => Parse {
            diagnostics,
            ..Parse::default()
        },
    }
}

/// Parses kickstart text named `name` (includes resolve next to it).
pub fn parse_str(name: &str, text: &str, loader: &dyn Loader) -> Parse {
    let mut diagnostics = Diagnostics::default();
    let flat = source::flatten_text(Path::new(name), text, loader, &mut diagnostics);
    finish(flat, diagnostics)
}

fn finish(flat: Flattened, mut diagnostics: Diagnostics) -> Parse {
    let files = flat.files.clone();
    let kickstart = Parser::new(&mut diagnostics).run(&flat);
    Parse {
        kickstart,
        diagnostics,
        files,
    }
}

struct OpenSection {
    name: String,
    loc: Loc,
    words: Vec<String>,
    body: Vec<String>,
}

struct Parser<'d> {
    diags: &'d mut Diagnostics,
    items: Vec<Located<Item>>,
    /// Command names seen so far, for conflicting commands.
    seen: HashSet<&'static str>,
    /// Keys of data commands seen so far, for duplicates.
    defined: HashMap<String, Loc>,
}

impl<'d> Parser<'d> {
    fn new(diags: &'d mut Diagnostics) -> Self {
        Parser {
            diags,
            items: Vec::new(),
            seen: HashSet::new(),
            defined: HashMap::new(),
        }
    }

    fn report(&mut self, loc: &Loc, findings: Vec<Finding>) {
        for f in findings {
            self.diags.push(loc, f.severity, f.message);
        }
    }

    fn run(mut self, flat: &Flattened) -> Kickstart {
        let mut open: Option<OpenSection> = None;
        for Line { loc, text } in &flat.lines {
            if let Some(section) = open.as_mut() {
                let first = text.split_whitespace().next().unwrap_or_default();
                if first == "%end" {
                    if let Err(e) = lex::split(text, false) {
                        self.diags.error(loc, format!("%end: {e}"));
                    }
                    if let Some(s) = open.take() {
                        self.close(s);
                    }
                } else if sections::SECTIONS.contains(&first) {
                    self.diags.error(
                        loc,
                        format!(
                            "{} (line {}) does not end with %end before {first} starts",
                            section.name, section.loc.line
                        ),
                    );
                    return Kickstart { items: self.items };
                } else {
                    section.body.push(text.clone());
                }
                continue;
            }
            let trimmed = text.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let words = match lex::split(text, true) {
                Ok(w) => w,
                Err(e) => {
                    self.diags.error(loc, e.to_string());
                    continue;
                }
            };
            let Some(first) = words.first() else { continue };
            if first.is_empty() {
                self.diags
                    .error(loc, "a line starts with an empty word (\"\")");
                continue;
            }
            if first.starts_with('%') {
                if sections::SECTIONS.contains(&first.as_str()) {
                    open = Some(OpenSection {
                        name: first.clone(),
                        loc: loc.clone(),
                        words: words[1..].to_vec(),
                        body: Vec::new(),
                    });
                } else {
                    let what = if first == "%end" {
                        "%end outside any section".to_string()
                    } else {
                        format!(
                            "unknown section {first}{}",
                            suggest(first, sections::SECTIONS.iter().copied())
                        )
                    };
                    self.diags.error(loc, what);
                    return Kickstart { items: self.items };
                }
                continue;
            }
            self.command(loc, first, &words[1..]);
        }
        if let Some(s) = open {
            // pykickstart names the top-level file's last line.
            let loc = Loc {
                file: flat.top_file.clone(),
                line: flat.top_level_lines.max(1),
            };
            self.diags.error(
                &loc,
                format!("{} (line {}) does not end with %end", s.name, s.loc.line),
            );
        }
        Kickstart { items: self.items }
    }

    fn command(&mut self, loc: &Loc, name: &str, words: &[String]) {
        if other::REMOVED.contains(&name) {
            self.diags
                .error(loc, format!("{name} has been removed from kickstart"));
            return;
        }
        if other::DEPRECATED.contains(&name) {
            self.diags.error(
                loc,
                format!("{name} is deprecated and has no effect; remove it"),
            );
            return;
        }
        let (group, conflicts): (&'static [&'static str], &'static [&'static str]) =
            if let Some(g) = commands::typed_group(name) {
                g
            } else if let Some((n, c)) = other::ignored_group(name) {
                (n, c)
            } else {
                let known = commands::typed_names()
                    .chain(other::ignored_names())
                    .chain(other::REMOVED.iter().copied());
                self.diags.error(
                    loc,
                    format!("unknown command {name}{}", suggest(name, known)),
                );
                return;
            };
        for c in conflicts {
            if self.seen.contains(c) {
                self.diags.error(
                    loc,
                    format!("the {name} and {c} commands cannot be used in the same kickstart"),
                );
            }
        }
        self.seen.extend(group.iter().copied());
        let mut findings = Vec::new();
        let cmd = match commands::parse_typed(name, words, &mut findings) {
            Some(c) => c,
            None => match other::parse_ignored(name, words, &mut findings) {
                Some(c) => Command::Ignored(c),
                None => return,
            },
        };
        // pykickstart keeps (and so compares) only commands that parsed.
        let parsed_cleanly = !findings
            .iter()
            .any(|f| f.severity == crate::diag::Severity::Error);
        self.report(loc, findings);
        if let Some((what, key)) = duplicate_key(&cmd).filter(|_| parsed_cleanly) {
            match self.defined.get(&format!("{what}\0{key}")) {
                Some(first) => {
                    let msg = format!("{what} {key:?} is already defined at line {}", first.line);
                    self.diags.error(loc, msg);
                }
                None => {
                    self.defined.insert(format!("{what}\0{key}"), loc.clone());
                }
            }
        }
        self.items.push(Located {
            loc: loc.clone(),
            value: Item::Command(cmd),
        });
    }

    fn close(&mut self, s: OpenSection) {
        let loc = s.loc.clone();
        let item = match s.name.as_str() {
            "%packages" => {
                let header = self.header::<PackagesHeader>(&s);
                let mut lines = Vec::new();
                for line in &s.body {
                    match sections::package_line(line) {
                        Ok(Some(l)) => lines.push(l),
                        Ok(None) => {}
                        Err(e) => self.diags.error(&loc, e),
                    }
                }
                Item::Packages(Packages { header, lines })
            }
            "%certificate" => {
                let header = self.header::<CertificateHeader>(&s);
                if s.body.iter().all(|l| l.trim().is_empty()) {
                    self.diags.error(&loc, "%certificate is empty");
                }
                Item::Certificate(Certificate {
                    header,
                    body: s.body,
                })
            }
            "%addon" | "%anaconda" => {
                if s.name == "%addon" && s.words.is_empty() {
                    self.diags
                        .warning(&loc, "%addon without a name does nothing");
                }
                Item::Raw(RawSection {
                    section: s.name.clone(),
                    words: s.words,
                    body: s.body,
                })
            }
            _ => {
                let header = self.header::<ScriptHeader>(&s);
                // pykickstart drops scripts whose body is blank.
                if s.body.iter().all(|l| l.trim().is_empty()) {
                    return;
                }
                Item::Script(Script {
                    header,
                    body: s.body,
                })
            }
        };
        self.items.push(Located { loc, value: item });
    }

    /// Parses a section header's options.
    fn header<H: Syntax + Check>(&mut self, s: &OpenSection) -> H {
        let (h, f) = commands::parse_as::<H>(&s.name, &s.words);
        self.report(&s.loc, f);
        h
    }
}

/// The identity pykickstart gives data commands; a second one with the same
/// identity is a duplicate.
fn duplicate_key(cmd: &Command) -> Option<(&'static str, String)> {
    Some(match cmd {
        Command::Partition(p) if p.mntpoint != "swap" => {
            ("partition with mount point", p.mntpoint.clone())
        }
        Command::Logvol(l) => ("logical volume", format!("{}/{}", l.vgname, l.name)),
        Command::Volgroup(v) => ("volume group", v.vgname.clone()),
        Command::Network(n) => ("network device", n.device.clone().unwrap_or_default()),
        Command::User(u) => ("user", u.name.clone()),
        Command::Group(g) => ("group", g.name.clone()),
        Command::Sshkey(k) => ("ssh key for user", k.username.clone()),
        Command::Ignored(i) => return i.identity.clone(),
        _ => return None,
    })
}
