//! The image's own SELinux policy modules: reference-policy sources in the
//! recipe's `selinux.sources` folder (`NAME.te`, with its `NAME.fc` file contexts
//! and `NAME.if` interfaces), compiled on the build host with the reference
//! policy's development files (Debian's `selinux-policy-dev`, the same policy
//! release as the image's `selinux-policy-default`) into `NAME.pp` packages under
//! the tree's `/usr/share/hvnode/selinux`, which the configure stage installs with
//! the CIL modules there.
//!
//! Written with the reference policy's interfaces (`init_daemon_domain`,
//! `corenet_tcp_bind_websm_port`, …), a module says what a domain may do in the
//! policy's own terms, as Debian's and Fedora's modules do; a hand-expanded CIL
//! module would repeat each interface's rules and break when they change.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

/// The reference policy's module Makefile (`selinux-policy-dev`).
pub const DEVEL_MAKEFILE: &str = "/usr/share/selinux/devel/Makefile";

/// The modules of `src` (one per `.te` file), by name, sorted.
pub fn modules(src: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(src)
        .with_context(|| format!("listing the SELinux policy sources in {}", src.display()))?
    {
        let name = e?.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".te") {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Compiles every module of `src` into `dest` (`NAME.pp`), in the scratch folder
/// `work`, with the compiler's output appended to `log`; returns the packages made.
pub fn compile(src: &Path, work: &Path, dest: &Path, log: &Path) -> Result<Vec<PathBuf>> {
    let names = modules(src)?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if !Path::new(DEVEL_MAKEFILE).is_file() {
        bail!(
            "compiling the image's SELinux modules ({}): {DEVEL_MAKEFILE} is missing; \
             install selinux-policy-dev (tests/deps.sh does)",
            names.join(", ")
        );
    }
    if work.exists() {
        fs::remove_dir_all(work).with_context(|| format!("clearing {}", work.display()))?;
    }
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut made = Vec::new();
    for name in &names {
        for ext in ["te", "fc", "if"] {
            let from = src.join(format!("{name}.{ext}"));
            let to = work.join(format!("{name}.{ext}"));
            if from.is_file() {
                fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            } else {
                // A module without file contexts or interfaces has empty ones.
                fs::write(&to, b"").with_context(|| format!("writing {}", to.display()))?;
            }
        }
        Command::new("make")
            .arg("-f")
            .arg(DEVEL_MAKEFILE)
            .arg(format!("{name}.pp"))
            .current_dir(work)
            .stdin_closed()
            .c_locale()
            .run_logged(log)
            .with_context(|| {
                format!(
                    "compiling the SELinux module {} (its messages name the line of {name}.te \
                     or {name}.fc at fault; full output in {})",
                    src.join(format!("{name}.te")).display(),
                    log.display()
                )
            })?;
        let pp = dest.join(format!("{name}.pp"));
        fs::copy(work.join(format!("{name}.pp")), &pp)
            .with_context(|| format!("installing {}", pp.display()))?;
        made.push(pp);
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modules_are_the_te_files() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.te", "b.fc", "a.te", "notes.md", "c.if"] {
            fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(modules(d.path()).unwrap(), ["a", "b"]);
    }

    #[test]
    fn the_image_module_compiles_with_the_reference_policy() {
        if !Path::new(DEVEL_MAKEFILE).is_file() {
            hvnode_testutil::skip("selinux-policy-dev is not installed");
            return;
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../image/selinux");
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        let made = compile(&src, &d.path().join("work"), &d.path().join("out"), &log)
            .unwrap_or_else(|e| panic!("{e:#}\n{}", fs::read_to_string(&log).unwrap_or_default()));
        assert_eq!(made.len(), modules(&src).unwrap().len());
        for pp in made {
            assert!(fs::metadata(&pp).unwrap().len() > 0, "{}", pp.display());
        }
    }

    #[test]
    fn a_bad_module_names_its_file() {
        if !Path::new(DEVEL_MAKEFILE).is_file() {
            hvnode_testutil::skip("selinux-policy-dev is not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(
            src.join("broken.te"),
            "policy_module(broken, 1.0)\ntype x_t\n",
        )
        .unwrap();
        let log = d.path().join("log");
        let e = compile(&src, &d.path().join("work"), &d.path().join("out"), &log).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("broken.te"), "{text}");
        assert!(
            fs::read_to_string(&log).unwrap().contains("broken.te"),
            "the log names the file and line"
        );
    }
}
