//! Later releases of the node image, built by a test from the project's
//! recipe: the same packages and files with another release number and
//! the test's changes, and only the update bundle as output (signed with
//! the test's key). What `nodectl update` on an installed test node is
//! given.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

/// A test signing key made by the `minisign` program (`-W`: no password).
#[derive(Debug, Clone)]
pub struct TestKey {
    pub secret: PathBuf,
    pub public: PathBuf,
}

impl TestKey {
    /// Makes a key pair in `dir`.
    pub fn generate(dir: &Path) -> Result<TestKey> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = TestKey {
            secret: dir.join("test.key"),
            public: dir.join("test.pub"),
        };
        let out = Command::new("minisign")
            .args(["-G", "-W", "-f", "-p"])
            .arg(&key.public)
            .arg("-s")
            .arg(&key.secret)
            .output()
            .context("running minisign -G (tests/deps.sh installs minisign)")?;
        if !out.status.success() {
            bail!(
                "minisign -G failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(key)
    }

    /// The public key file's text, for the node's `/etc/hvnode/trusted.d`.
    pub fn public_text(&self) -> Result<String> {
        fs::read_to_string(&self.public)
            .with_context(|| format!("reading {}", self.public.display()))
    }
}

/// What a release changes from the project's recipe.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Appended to the recipe's release (`0.20261125.0` → `0.20261125.0.2`):
    /// a newer NVR.
    pub release_suffix: String,
    /// Files laid over the image, on top of the project's (path in the
    /// image, text).
    pub files: Vec<(String, String)>,
}

/// A built release.
#[derive(Debug, Clone)]
pub struct Release {
    pub nvr: String,
    /// `NVR.update.tar`, its `.minisig` beside it.
    pub bundle: PathBuf,
}

/// Builds the project's recipe (`workspace/image/hvnode.toml`) with
/// `changes` into `work` (recipe, then `out/`), signed with `key`, with
/// the project's stage cache (`HVNODE_CACHE`, else `~/.cache/hvnode`).
///
/// The calling thread (and so every program the build starts) runs at
/// nice 10 from then on: guests booting beside the build keep the CPU they
/// need (under load, a node's disks took more than systemd's 90 s to
/// appear and it stopped in emergency mode).
pub fn build(workspace: &Path, changes: &Changes, key: &TestKey, work: &Path) -> Result<Release> {
    lower_priority();
    let recipe_dir = work.join("recipe");
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(&recipe_dir)
        .with_context(|| format!("creating {}", recipe_dir.display()))?;
    let image = workspace.join("image");
    let text = fs::read_to_string(image.join("hvnode.toml")).context("reading the recipe")?;
    let recipe = changed_recipe(&text, &changes.release_suffix)?;
    fs::write(recipe_dir.join("hvnode.toml"), recipe).context("writing the test recipe")?;
    // The recipe's folders (its files, its SELinux module's sources), as they are.
    for dir in ["files", "selinux"] {
        if !image.join(dir).is_dir() {
            continue;
        }
        let status = Command::new("cp")
            .arg("-a")
            .arg(image.join(dir))
            .arg(recipe_dir.join(dir))
            .status()
            .with_context(|| format!("copying the image's {dir}"))?;
        if !status.success() {
            bail!("cp -a {} failed", image.join(dir).display());
        }
    }
    for (path, text) in &changes.files {
        let p = recipe_dir.join("files").join(path.trim_start_matches('/'));
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    let cache = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hvnode")))
        .context("HVNODE_CACHE or HOME is needed for the stage cache")?;
    // The project recipe's last commit time: the stage cache keys the
    // bootstrapped base on it, so the release reuses the image's base
    // rather than bootstrapping Debian again.
    let epoch = Command::new("git")
        .arg("-C")
        .arg(&image)
        .args(["log", "-1", "--format=%ct", "--", "hvnode.toml"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<i64>().ok());
    let sign_key = bundle::SignKey::load(&key.secret, None)
        .with_context(|| format!("loading {}", key.secret.display()))?;
    let report = image_build::build(&image_build::Options {
        recipe: recipe_dir.join("hvnode.toml"),
        out: work.join("out"),
        cache_dir: cache.join("image"),
        workspace: workspace.to_path_buf(),
        rebuild: false,
        epoch,
        sign_key: Some(Arc::new(sign_key)),
        wait_for_cache: true,
    })
    .with_context(|| format!("building the test release in {}", work.display()))?;
    let bundle = work.join("out").join(format!("{}.update.tar", report.nvr));
    if !bundle.is_file() || !bundle::signature_path(&bundle).is_file() {
        bail!("the build made no signed {}", bundle.display());
    }
    Ok(Release {
        nvr: report.nvr,
        bundle,
    })
}

/// Nice 10 for this thread: `renice` of its thread id (niceness is a
/// thread's on Linux, and the processes it starts inherit it). Best effort.
fn lower_priority() {
    let tid = fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if let Some(tid) = tid {
        let _ = Command::new("renice")
            .args(["-n", "10", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// zstd level of a test release's root image: at the shipped level 15 a
/// release took 89 s to build beside the other VM tests, at 3 it takes
/// 37 s, for a 7 % larger image.
const TEST_SQUASHFS_LEVEL: u8 = 3;

/// The recipe with `suffix` added to its release, only the update bundle
/// as output, and a quickly made root image.
fn changed_recipe(text: &str, suffix: &str) -> Result<String> {
    let mut out = String::new();
    let mut release = false;
    let mut in_outputs = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_outputs = t.starts_with("[outputs]");
            if in_outputs {
                out.push_str(line);
                out.push_str(&format!("\nsquashfs_level = {TEST_SQUASHFS_LEVEL}\n"));
                continue;
            }
        }
        if !in_outputs && t.starts_with("release") && t.contains('=') && !release {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value.trim().trim_matches('"');
            out.push_str(&format!("{key}= \"{value}{suffix}\"\n"));
            release = true;
            continue;
        }
        let key = t.split('=').next().unwrap_or("").trim();
        if in_outputs && key == "squashfs_level" {
            continue;
        }
        if in_outputs && t.contains('=') && (key == "iso" || key == "pxe") {
            out.push_str(&format!("{key} = false\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !release {
        bail!("the recipe has no `release =` line to change");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_grows_and_only_the_bundle_is_made() {
        let r = changed_recipe(
            "name = \"hvnode\"\nrelease = \"0.1.0\"\n[outputs]\niso = true\npxe = true\nupdate_bundle = true\niso_label = \"HVNODE\"\npxe_base_url = \"http://x/\"\n",
            ".2",
        )
        .unwrap();
        assert!(r.contains("release = \"0.1.0.2\"\n"), "{r}");
        assert!(
            r.contains("iso = false\npxe = false\nupdate_bundle = true\niso_label = \"HVNODE\"\npxe_base_url = \"http://x/\"\n"),
            "{r}"
        );
        assert!(r.contains("[outputs]\nsquashfs_level = 3\n"), "{r}");
        let r = changed_recipe(
            "name = \"hvnode\"\nrelease = \"0.1.0\"\n[outputs]\nsquashfs_level = 19\n",
            ".2",
        )
        .unwrap();
        assert_eq!(r.matches("squashfs_level").count(), 1, "{r}");
        assert!(changed_recipe("name = \"x\"\n", ".2").is_err());
    }
}
