//! The image recipe (`image/hvnode.toml`), read strictly: an unknown key or
//! a wrong type is an error naming the file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("reading the recipe {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub version: String,
    pub release: String,
    pub base: Base,
    pub packages: Packages,
    #[serde(default)]
    pub files: Files,
    #[serde(default)]
    pub services: Services,
    #[serde(default)]
    pub selinux: Selinux,
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default)]
    pub initramfs: Initramfs,
    #[serde(default)]
    pub outputs: Outputs,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// mmdebstrap variant.
    #[serde(default = "default_variant")]
    pub variant: String,
    /// A Debian mirror URL; without it, the build host's apt sources.
    pub mirror: Option<String>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
}

fn default_variant() -> String {
    "minbase".into()
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default)]
    pub keep_paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// Directory (relative to the recipe) laid over the image's root.
    pub source: PathBuf,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            source: PathBuf::from("files"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Services {
    #[serde(default)]
    pub enable: Vec<String>,
    #[serde(default)]
    pub disable: Vec<String>,
    /// Units masked in the image (`systemctl mask`: a link to /dev/null in
    /// /etc/systemd/system, which an admin can remove with `systemctl
    /// unmask`): for a unit that others pull in, which `disable` cannot stop.
    #[serde(default)]
    pub mask: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selinux {
    #[serde(default = "default_mode")]
    pub mode: SelinuxMode,
    #[serde(default)]
    pub booleans: BTreeMap<String, bool>,
    /// A folder of the image's own policy modules (reference-policy sources,
    /// `NAME.te` with `NAME.fc` and `NAME.if`), relative to the recipe; see
    /// [`crate::policy`].
    #[serde(default)]
    pub sources: Option<String>,
}

impl Default for Selinux {
    fn default() -> Self {
        Selinux {
            mode: SelinuxMode::Enforcing,
            booleans: BTreeMap::new(),
            sources: None,
        }
    }
}

fn default_mode() -> SelinuxMode {
    SelinuxMode::Enforcing
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxMode {
    Enforcing,
    Permissive,
}

impl SelinuxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SelinuxMode::Enforcing => "enforcing",
            SelinuxMode::Permissive => "permissive",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Initramfs {
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub omit: Vec<String>,
    /// Kernel file system modules to include (dracut's `filesystems`);
    /// empty: every file system the kernel has.
    #[serde(default)]
    pub filesystems: Vec<String>,
    /// dracut modules only the live boot needs (the ISO, USB and PXE:
    /// finding the root image on the medium or over the network). The
    /// initramfs of the medium adds them; the installed node's initramfs,
    /// in the image's `/boot`, leaves them out.
    #[serde(default)]
    pub live_modules: Vec<String>,
    /// dracut modules the installed node's initramfs leaves out besides
    /// `live_modules`: its root is on a local disk, so no network stack
    /// and no network drivers.
    #[serde(default)]
    pub installed_omit: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    #[serde(default = "yes")]
    pub iso: bool,
    #[serde(default = "yes")]
    pub pxe: bool,
    #[serde(default = "yes")]
    pub update_bundle: bool,
    #[serde(default = "default_label")]
    pub iso_label: String,
    /// URL the PXE tree is served at over HTTP (`${next-server}` allowed).
    #[serde(default = "default_pxe_url")]
    pub pxe_base_url: String,
    /// zstd level of the squashfs root image, 1 (fast) to 22 (small).
    #[serde(default = "default_squashfs_level")]
    pub squashfs_level: u8,
}

fn yes() -> bool {
    true
}

fn default_label() -> String {
    "HVNODE".into()
}

/// The level the shipped images use: 7 % smaller than level 3 (294 MB
/// against 316 MB for the node image), several times slower to make; a
/// test release may trade size for time.
pub const DEFAULT_SQUASHFS_LEVEL: u8 = 15;

fn default_squashfs_level() -> u8 {
    DEFAULT_SQUASHFS_LEVEL
}

fn default_pxe_url() -> String {
    "http://${next-server}/hvnode".into()
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            iso: true,
            pxe: true,
            update_bundle: true,
            iso_label: default_label(),
            pxe_base_url: default_pxe_url(),
            squashfs_level: DEFAULT_SQUASHFS_LEVEL,
        }
    }
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Recipe::parse(path, &text)
    }

    /// Parses recipe text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Recipe, RecipeError> {
        let invalid = |line: usize, message: String| RecipeError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let recipe: Recipe = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            invalid(line, e.message().to_string())
        })?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1)
                .unwrap_or(1)
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+~".contains(c))
        };
        if !word(&recipe.name) || recipe.name.contains('.') {
            return Err(invalid(
                line_of("name"),
                format!(
                    "name {:?}: letters, digits, '+', '~' and '_' only",
                    recipe.name
                ),
            ));
        }
        if !word(&recipe.version) || !word(&recipe.release) {
            return Err(invalid(
                line_of("version"),
                "version and release: letters, digits, '.', '+', '~' and '_' only".into(),
            ));
        }
        if recipe.packages.include.is_empty() {
            return Err(invalid(
                line_of("include"),
                "packages.include is empty".into(),
            ));
        }
        if let Some(bad) = recipe.packages.include.iter().find(|p| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        }) {
            return Err(invalid(
                line_of("include"),
                format!("packages.include: {bad:?} is not a Debian package name"),
            ));
        }
        let label = &recipe.outputs.iso_label;
        if label.is_empty()
            || label.len() > 32
            || !label
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(invalid(
                line_of("iso_label"),
                format!("outputs.iso_label {label:?}: 1 to 32 of A-Z, 0-9, '_' and '-'"),
            ));
        }
        let ir = &recipe.initramfs;
        if let Some(both) = ir
            .modules
            .iter()
            .find(|m| ir.live_modules.contains(m) || ir.installed_omit.contains(m))
        {
            let field = if ir.live_modules.contains(both) {
                "live_modules"
            } else {
                "installed_omit"
            };
            return Err(invalid(
                line_of(field),
                format!(
                    "initramfs: {both:?} is in both modules (every initramfs) and {field} \
                     (not in the installed node's): keep it in one of them"
                ),
            ));
        }
        let services = &recipe.services;
        if let Some(u) = services.mask.iter().find(|u| services.enable.contains(u)) {
            return Err(invalid(
                line_of("mask"),
                format!(
                    "services: {u} is both enabled and masked: remove it from enable or from mask"
                ),
            ));
        }
        let level = recipe.outputs.squashfs_level;
        if !(1..=22).contains(&level) {
            return Err(invalid(
                line_of("squashfs_level"),
                format!("outputs.squashfs_level {level}: zstd levels are 1 to 22"),
            ));
        }
        Ok(recipe)
    }

    /// The image's name-version-release, e.g. `hvnode-1.0-0.20261125.0`.
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "hvnode"
version = "1.0"
release = "0.20261125.0"
[base]
suite = "bookworm"
[packages]
include = ["systemd-sysv", "linux-image-amd64"]
"#;

    fn err(text: &str) -> String {
        Recipe::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_unit_is_enabled_or_masked_not_both() {
        let e = err(&format!(
            "{GOOD}[services]\nenable = [\"ssh.service\"]\nmask = [\"systemd-fsckd.socket\", \"ssh.service\"]\n"
        ));
        assert!(
            e.contains("r.toml:") && e.contains("ssh.service is both enabled and masked"),
            "{e}"
        );
        let ok = format!("{GOOD}[services]\nmask = [\"systemd-fsckd.socket\"]\n");
        let r = Recipe::parse(Path::new("r.toml"), &ok).unwrap();
        assert_eq!(r.services.mask, ["systemd-fsckd.socket"]);
    }

    #[test]
    fn good_recipe_and_defaults() {
        let r = Recipe::parse(Path::new("r.toml"), GOOD).unwrap();
        assert_eq!(r.nvr(), "hvnode-1.0-0.20261125.0");
        assert_eq!(r.base.variant, "minbase");
        assert_eq!(r.selinux.mode, SelinuxMode::Enforcing);
        assert_eq!(r.outputs.iso_label, "HVNODE");
        assert!(r.outputs.iso && r.outputs.pxe && r.outputs.update_bundle);
    }

    #[test]
    fn the_shipped_recipe_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../image/hvnode.toml");
        let r = Recipe::load(&path).unwrap();
        assert!(
            r.packages
                .include
                .iter()
                .any(|p| p == "selinux-policy-default")
        );
        assert!(r.kernel.args.iter().any(|a| a == "security=selinux"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = err(&GOOD.replace("[packages]", "[packages]\ninclued = []"));
        assert!(e.starts_with("r.toml:8: unknown field `inclued`"), "{e}");
        let e = err(&GOOD.replace("suite = \"bookworm\"", "suite = 12"));
        assert!(e.starts_with("r.toml:6: invalid type"), "{e}");
        let e = err(&GOOD.replace("\"linux-image-amd64\"", "\"Linux Image\""));
        assert!(
            e.contains("r.toml:8: packages.include: \"Linux Image\""),
            "{e}"
        );
        let e = err(&GOOD.replace("name = \"hvnode\"", "name = \"hv node\""));
        assert!(e.starts_with("r.toml:2: name"), "{e}");
        let e = err(&format!("{GOOD}\n[outputs]\niso_label = \"lower\"\n"));
        assert!(e.contains("iso_label"), "{e}");
        let e = err(&format!("{GOOD}\n[selinux]\nmode = \"disabled\"\n"));
        assert!(e.contains("unknown variant `disabled`"), "{e}");
    }
}
