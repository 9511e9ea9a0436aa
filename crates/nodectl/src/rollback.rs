//! `nodectl rollback [--to LAYER]`: the previous layer (or the one named)
//! becomes the default from the next boot; a pending trial is called off.
//! The plan is shown and confirmed first (`--yes` skips the question).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use layers::LayerName;
use layers::status;

use crate::output::print_json;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The layer to make the default (`nodectl info` lists them); the one
    /// before the current default when not given.
    #[arg(long, value_name = "LAYER")]
    pub to: Option<LayerName>,
    /// Do not ask before changing the default.
    #[arg(long)]
    pub yes: bool,
    /// Make the layer named by --to the default even though it failed its
    /// trial boot.
    #[arg(long, requires = "to")]
    pub force: bool,
    /// The plan (and, with --yes, what was done) as JSON; nothing is asked.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RollbackArgs) -> Result<ExitCode> {
    let boot = status::boot_dir();
    let facts = status::gather(&boot).context("reading the node's layers and boot entries")?;
    let plan = update::plan_rollback(&facts, args.to.as_ref(), args.force)?;
    let apply = args.yes || (!args.json && ask(&plan));
    if apply {
        update::apply_rollback(&plan, &boot)
            .with_context(|| format!("making {} the default layer", plan.to))?;
    }
    if args.json {
        print_json(
            "Rollback",
            serde_json::json!({ "plan": plan, "applied": apply }),
        )?;
    } else if apply {
        println!(
            "{} is the default layer from the next boot (was {}); reboot to use it.",
            plan.to, plan.from
        );
    } else {
        println!("Nothing was changed.");
    }
    Ok(if apply {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ask(plan: &update::RollbackPlan) -> bool {
    println!("Default layer now:       {}", plan.from);
    println!("Default from next boot:  {}", plan.to);
    if let Some(t) = &plan.cancels_trial {
        println!("The pending trial boot of {t} is called off.");
    }
    if !std::io::stdin().is_terminal() {
        println!("Not asked (no terminal): run again with --yes to roll back.");
        return false;
    }
    crate::output::ask("Roll back?")
}
