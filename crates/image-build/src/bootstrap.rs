//! The base system: Debian packages into a root tarball. Behind a trait so
//! that another backend (dnf for a Fedora/CentOS base) can follow.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::cache::Key;
use crate::recipe::Recipe;

/// Makes the base root tarball of an image.
pub trait Bootstrap {
    /// Adds everything that decides the result to the cache key.
    fn key(&self, recipe: &Recipe, key: &mut Key) -> Result<()>;
    /// Writes the root tarball to `out`; output goes to `log`.
    fn run(&self, recipe: &Recipe, out: &Path, log: &Path, epoch: i64) -> Result<()>;
}

/// Debian through mmdebstrap, with downloaded .debs kept in `deb_cache`.
#[derive(Debug, Clone)]
pub struct Mmdebstrap {
    pub deb_cache: PathBuf,
    /// Where the build host keeps its apt sources.
    pub apt_dir: PathBuf,
}

impl Mmdebstrap {
    pub fn new(deb_cache: PathBuf) -> Self {
        Mmdebstrap {
            deb_cache,
            apt_dir: PathBuf::from("/etc/apt"),
        }
    }

    /// The package sources: the recipe's mirror, or the build host's apt
    /// source files that name the recipe's suite.
    pub fn sources(&self, recipe: &Recipe) -> Result<Vec<String>> {
        if let Some(m) = &recipe.base.mirror {
            return Ok(vec![m.clone()]);
        }
        let mut files = Vec::new();
        let list = self.apt_dir.join("sources.list");
        if list.is_file() {
            files.push(list);
        }
        if let Ok(dir) = fs::read_dir(self.apt_dir.join("sources.list.d")) {
            let mut more: Vec<PathBuf> = dir
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
                .collect();
            more.sort();
            files.extend(more);
        }
        let suite = &recipe.base.suite;
        let chosen: Vec<String> = files
            .into_iter()
            .filter(|f| {
                fs::read_to_string(f).is_ok_and(|t| {
                    t.lines()
                        .filter(|l| !l.trim_start().starts_with('#'))
                        .any(|l| {
                            l.split_whitespace()
                                .any(|w| w == suite || w.starts_with(&format!("{suite}-")))
                        })
                })
            })
            .map(|p| p.display().to_string())
            .collect();
        if chosen.is_empty() {
            bail!(
                "no apt source on this build host names the suite {suite:?} (looked in {}); set base.mirror in the recipe",
                self.apt_dir.display()
            );
        }
        Ok(chosen)
    }

    fn version() -> String {
        Command::new("mmdebstrap")
            .arg("--version")
            .run_capture()
            .unwrap_or_default()
    }
}

impl Bootstrap for Mmdebstrap {
    fn key(&self, recipe: &Recipe, key: &mut Key) -> Result<()> {
        key.add_json("base", &recipe.base)
            .add_json("packages", &recipe.packages)
            .add("mmdebstrap", Self::version().as_bytes());
        for s in self.sources(recipe)? {
            let content = fs::read(&s).unwrap_or_else(|_| s.clone().into_bytes());
            key.add(&format!("source:{s}"), &content);
        }
        Ok(())
    }

    fn run(&self, recipe: &Recipe, out: &Path, log: &Path, epoch: i64) -> Result<()> {
        fs::create_dir_all(&self.deb_cache)
            .with_context(|| format!("creating the package cache {}", self.deb_cache.display()))?;
        let cache = self.deb_cache.display().to_string();
        let mut c = Command::new("mmdebstrap");
        c.env("SOURCE_DATE_EPOCH", epoch.to_string())
            .arg(format!("--variant={}", recipe.base.variant))
            .args(["--mode=root", "--format=tar"])
            .arg(format!("--components={}", recipe.base.components.join(",")))
            .arg("--aptopt=APT::Install-Recommends \"false\"")
            .arg(format!("--include={}", recipe.packages.include.join(",")));
        for p in &recipe.packages.exclude_paths {
            c.arg(format!("--dpkgopt=path-exclude={p}"));
        }
        for p in &recipe.packages.keep_paths {
            c.arg(format!("--dpkgopt=path-include={p}"));
        }
        // Reuse and refill the .deb cache (mmdebstrap's documented recipe).
        c.arg("--skip=download/empty")
            .arg(format!(
                "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives && find '{cache}' -maxdepth 1 -name '*.deb' -exec cp -t \"$1\"/var/cache/apt/archives/ {{}} +"
            ))
            .arg(format!("--customize-hook=sync-out /var/cache/apt/archives '{cache}'"))
            .arg(&recipe.base.suite)
            .arg(out);
        for s in self.sources(recipe)? {
            c.arg(s);
        }
        c.run_logged(log)
            .context("bootstrapping the base system with mmdebstrap")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(mirror: Option<&str>) -> Recipe {
        let mut r = Recipe::parse(
            Path::new("r.toml"),
            "name = \"n\"\nversion = \"1\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"systemd\"]\n",
        )
        .unwrap();
        r.base.mirror = mirror.map(String::from);
        r
    }

    #[test]
    fn host_sources_for_the_suite_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("sources.list.d")).unwrap();
        fs::write(
            d.join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/other.list"),
            "deb https://other/apt stable main\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/old.list"),
            "# deb http://m bookworm main\n",
        )
        .unwrap();
        let m = Mmdebstrap {
            deb_cache: d.join("debs"),
            apt_dir: d.to_path_buf(),
        };
        let s = m.sources(&recipe(None)).unwrap();
        assert_eq!(
            s,
            [d.join("sources.list.d/debian.sources")
                .display()
                .to_string()]
        );
        assert_eq!(
            m.sources(&recipe(Some("http://mirror/debian"))).unwrap(),
            ["http://mirror/debian"]
        );
        let empty = Mmdebstrap {
            deb_cache: d.join("debs"),
            apt_dir: d.join("nothing"),
        };
        let e = empty.sources(&recipe(None)).unwrap_err().to_string();
        assert!(e.contains("set base.mirror"), "{e}");
    }
}
