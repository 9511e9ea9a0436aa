//! Sections: `%pre`, `%pre-install`, `%post`, `%onerror`, `%traceback`,
//! `%packages`, `%certificate`, `%addon`, `%anaconda`.

use serde::Serialize;

use crate::commands::value::ks_enum;
use crate::commands::{Check, ks_command};
use crate::options::Finding;

ks_enum! {
    /// Which script section.
    pub enum ScriptKind {
        Pre = "%pre",
        PreInstall = "%pre-install",
        Post = "%post",
        OnError = "%onerror",
        /// Deprecated in favour of `%onerror`.
        Traceback = "%traceback",
    }
}

// The enum comes from `ks_enum!`, which cannot mark a default variant.
#[allow(clippy::derivable_impls)]
impl Default for ScriptKind {
    fn default() -> Self {
        ScriptKind::Post
    }
}

impl ScriptKind {
    pub fn from_name(name: &str) -> Self {
        use crate::commands::value::KsEnum;
        ScriptKind::from_word(name).unwrap_or_default()
    }
    pub fn name(&self) -> &'static str {
        use crate::commands::value::KsEnum;
        self.as_word()
    }
}

ks_command! {
    /// A script section's header.
    ScriptHeader ["%pre", "%pre-install", "%post", "%onerror", "%traceback"] conflicts []
    invoked { kind: ScriptKind }
    positional {}
    options {
        /// Stop the install when the script fails.
        erroronfail: bool = ["--erroronfail"],
        interpreter: Option<String> = ["--interpreter"],
        log: Option<String> = ["--log", "--logfile"],
        /// `%post` only: run outside the installed system's root.
        nochroot: bool = ["--nochroot"],
    }
}

impl Check for ScriptHeader {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.nochroot && self.kind != ScriptKind::Post {
            f.push(Finding::error(format!(
                "{}: --nochroot is for %post only",
                self.kind.name()
            )));
        }
        if self.kind == ScriptKind::Traceback {
            f.push(Finding::error(
                "%traceback is deprecated and may be removed; use %onerror",
            ));
        }
    }
}

/// A script: header options and the body, line for line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Script {
    #[serde(flatten)]
    pub header: ScriptHeader,
    pub body: Vec<String>,
}

ks_command! {
    /// The `%packages` header.
    PackagesHeader ["%packages"] conflicts []
    positional {}
    options {
        excludedocs: bool = ["--excludedocs"],
        ignoremissing: bool = ["--ignoremissing"],
        default: bool = ["--default"],
        inst_langs_deprecated: Option<String> = ["--instLangs"] deprecated,
        inst_langs: Option<String> = ["--inst-langs"],
        multilib: bool = ["--multilib"],
        nocore: bool = ["--nocore"],
        timeout: Option<i64> = ["--timeout"],
        retries: Option<i64> = ["--retries"],
        exclude_weakdeps_deprecated: bool = ["--excludeWeakdeps"] deprecated,
        exclude_weakdeps: bool = ["--exclude-weakdeps"],
        ignorebroken: bool = ["--ignorebroken"],
    }
}

impl Check for PackagesHeader {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.default && self.nocore {
            f.push(Finding::error(
                "%packages: --default and --nocore cannot be used together",
            ));
        }
    }
}

/// `%packages`: header and the package lines (comments and blanks dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Packages {
    #[serde(flatten)]
    pub header: PackagesHeader,
    pub lines: Vec<String>,
}

/// Checks one `%packages` line; returns it as kept, or an error.
pub fn package_line(line: &str) -> Result<Option<String>, String> {
    let kept = line.split('#').next().unwrap_or_default().trim_end();
    let t = kept.trim_start();
    if t.is_empty() {
        return Ok(None);
    }
    if t == "-" {
        return Err("%packages: a lone '-' names nothing to exclude".into());
    }
    // No package, group or module name starts with '%'; kept, the line would be
    // written back as a section's line (`%end# note` read as the package "%end"
    // ends the section when written again).
    if t.starts_with('%') {
        let word = line.split_whitespace().next().unwrap_or(t);
        return Err(format!(
            "%packages: {word} is not a package name; %end ends the section only as a \
             word of its own (a comment after it needs a space: \"%end # note\")"
        ));
    }
    if t.starts_with('@') {
        let words: Vec<&str> = t.split_whitespace().collect();
        if words.contains(&"--nodefaults") && words.contains(&"--optional") {
            return Err(format!(
                "%packages: group {} cannot have both --nodefaults and --optional",
                words[0]
            ));
        }
    }
    Ok(Some(t.to_string()))
}

ks_command! {
    /// The `%certificate` header.
    CertificateHeader ["%certificate"] conflicts []
    positional {}
    options {
        filename: String = ["--filename"] required,
        dir: Option<String> = ["--dir"],
        r#type: Option<String> = ["--type"],
    }
}

impl Check for CertificateHeader {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.dir.is_none() && self.r#type.is_none() {
            f.push(Finding::error("%certificate: give --dir or --type"));
        }
    }
}

/// `%certificate`: a certificate to install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certificate {
    #[serde(flatten)]
    pub header: CertificateHeader,
    pub body: Vec<String>,
}

/// `%addon NAME …` or `%anaconda`: the header words and body, verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawSection {
    /// `%addon` or `%anaconda`.
    pub section: String,
    pub words: Vec<String>,
    pub body: Vec<String>,
}

impl RawSection {
    /// The addon's name (`org_hvnode_register`), for `%addon`.
    pub fn addon_name(&self) -> Option<&str> {
        (self.section == "%addon")
            .then(|| self.words.first().map(String::as_str))
            .flatten()
    }
}

/// Every section header pykickstart's F40 parser knows.
pub const SECTIONS: &[&str] = &[
    "%pre",
    "%pre-install",
    "%post",
    "%onerror",
    "%traceback",
    "%packages",
    "%certificate",
    "%addon",
    "%anaconda",
];
