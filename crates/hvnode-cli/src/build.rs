//! `hvnode build`: the node image from a recipe.

use std::path::PathBuf;
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
    /// Print the build report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
    };
    let report = image_build::build(&opts)?;
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
