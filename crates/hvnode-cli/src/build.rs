//! `hvnode build`: the node image from a recipe.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The recipe.
    #[arg(default_value = "image/hvnode.toml")]
    pub recipe: PathBuf,
    /// Where the artifacts go.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Stage cache, package cache and work trees [default: $HVNODE_CACHE/image, or ~/.cache/hvnode/image].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The cargo workspace whose release binaries go into the image
    /// [default: the recipe's parent directory's parent].
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Rebuild every stage, ignoring cached ones (downloaded packages are still reused).
    #[arg(long)]
    pub rebuild: bool,
    /// Also make NVR.qcow2, an installed node for VMs: the ISO boots in a
    /// qemu guest and installs with this kickstart (unattended, ending with
    /// poweroff; see kickstart/disk-image.ks). Takes minutes under TCG.
    #[arg(long, value_name = "KICKSTART")]
    pub qcow2: Option<PathBuf>,
    /// Print the build report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Sign the update bundle with this minisign secret key (NVR.update.tar.minisig)
    /// and put its public key into the image's /etc/hvnode/trusted.d
    /// [default: $HVNODE_SIGN_KEY]. An encrypted key's password is read from
    /// $HVNODE_SIGN_KEY_PASSWORD, never asked.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

fn default_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("HVNODE_CACHE") {
        return PathBuf::from(c).join("image");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/hvnode/image")
}

/// Makes `out/NVR.qcow2` from the image just built, and lists it in
/// `SHA256SUMS`.
fn disk_image(ks_path: &Path, out: &Path, cache: &Path) -> Result<()> {
    let text = std::fs::read_to_string(ks_path)
        .with_context(|| format!("reading the disk-image kickstart {}", ks_path.display()))?;
    let img = qemu::Image::open(out)?;
    let ks = qemu::disk_image::prepare_kickstart(&ks_path.display().to_string(), &text, &img)?;
    let file = format!("{}.qcow2", img.nvr);
    eprintln!("making {file}: installing in a qemu guest (TCG: several minutes)");
    let made = qemu::disk_image::make(&img, &ks, &out.join(&file), &cache.join("disk-image"))?;
    let new = image_build::manifest::artifacts(out, std::slice::from_ref(&made.path))?;
    let sums = out.join("SHA256SUMS");
    let old =
        std::fs::read_to_string(&sums).with_context(|| format!("reading {}", sums.display()))?;
    let mut text: String = old
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some(file.as_str()))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&image_build::manifest::sha256sums(&new));
    fsutil::write_atomic(&sums, text.as_bytes(), fsutil::Options::default())?;
    println!(
        "  {:>12}  {file} (installed in {:.0} s under TCG)",
        made.bytes, made.times.install
    );
    Ok(())
}

/// The signing key from `--sign-key` or `HVNODE_SIGN_KEY`, loaded before the
/// build so that a wrong path or password fails at once, not after it.
fn sign_key(arg: Option<&Path>) -> Result<Option<bundle::SignKey>> {
    let Some(path) = arg else {
        return Ok(bundle::SignKey::from_env()?);
    };
    let password = std::env::var(bundle::SIGN_KEY_PASSWORD_ENV).ok();
    Ok(Some(bundle::SignKey::load(path, password.as_deref())?))
}

pub fn build(args: &BuildArgs) -> Result<ExitCode> {
    let recipe = std::fs::canonicalize(&args.recipe)
        .with_context(|| format!("finding the recipe {}", args.recipe.display()))?;
    let workspace = match &args.workspace {
        Some(w) => w.clone(),
        None => recipe
            .parent()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .context("the recipe has no parent directory; pass --workspace")?,
    };
    let opts = image_build::Options {
        recipe,
        out: args.out.clone(),
        cache_dir: args.cache_dir.clone().unwrap_or_else(default_cache),
        workspace,
        rebuild: args.rebuild,
        epoch: None,
        sign_key: sign_key(args.sign_key.as_deref())?.map(std::sync::Arc::new),
        wait_for_cache: false,
    };
    let report = image_build::build(&opts)?;
    if let Some(ks) = &args.qcow2 {
        disk_image(ks, &args.out, &opts.cache_dir)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let total: f64 = report.stages.iter().map(|(_, s)| s).sum();
        println!(
            "{} built in {total:.0} s (SOURCE_DATE_EPOCH={})",
            report.nvr, report.epoch
        );
        for a in &report.artifacts {
            println!("  {:>12}  {}", a.size, a.path);
        }
    }
    Ok(ExitCode::SUCCESS)
}
