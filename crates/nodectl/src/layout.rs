//! `nodectl info`, `check`, `motd` and `generate-banner`: the installed
//! node's layers, boot entries and health.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use health::Status;
use hostinfo::Firmware;
use layers::status;
use serde::Serialize;

use crate::output::print_json;

/// What `nodectl info` shows (`--json`: kind `NodeInfo`): the layered
/// root's facts, and how the node booted.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// The image, layers and boot entries, at the top level (oVirt
    /// nodectl's key names).
    #[serde(flatten)]
    pub layers: status::Info,
    /// UEFI or BIOS, Secure Boot and Setup Mode, the kernel's lockdown.
    pub firmware: Firmware,
}

/// The node's info from its layer facts and this host's firmware.
pub fn node_info(facts: &status::Facts) -> NodeInfo {
    NodeInfo {
        layers: status::info(facts, status::image_nvr()),
        firmware: hostinfo::firmware::firmware(),
    }
}

/// `nodectl info`.
pub fn info(json: bool) -> Result<ExitCode> {
    let facts = status::gather(&status::boot_dir())?;
    let node = node_info(&facts);
    if json {
        print_json("NodeInfo", &node)?;
        return Ok(ExitCode::SUCCESS);
    }
    let info = &node.layers;
    println!("image: {}", info.image.as_deref().unwrap_or("unknown"));
    println!("firmware: {}", node.firmware);
    println!(
        "layer store: {}",
        if info.backend.is_empty() {
            "none found (not an installed node?)"
        } else {
            &info.backend
        }
    );
    println!("layers:");
    for (base, layers) in &info.layers {
        println!("  {base}");
        for l in layers {
            let mark = if info.current_layer.as_deref() == Some(l) {
                " (current)"
            } else {
                ""
            };
            println!("    {l}{mark}");
        }
    }
    println!("bootloader:");
    println!(
        "  default: {}",
        info.bootloader.default.as_deref().unwrap_or("none")
    );
    if let Some(n) = &info.bootloader.next {
        println!("  next boot only: {n}");
    }
    if let Some(t) = &info.bootloader.trial {
        println!("  on trial: {t} (the default once its first boot passes the health checks)");
    }
    for (id, e) in &info.bootloader.entries {
        println!("  {id}:");
        println!("    title: {}", e.title);
        println!("    kernel: {}", e.kernel);
        println!("    args: {}", e.args);
    }
    println!(
        "current layer: {}",
        info.current_layer
            .as_deref()
            .unwrap_or("unknown (live system?)")
    );
    for t in &info.failed_trials {
        println!(
            "failed its trial boot: {} at {}: {}",
            t.layer, t.at, t.reason
        );
    }
    if !info.etc_conflicts.is_empty() {
        println!("/etc conflicts of the last update (yours kept, the image's in NAME.hvnew):");
        for c in &info.etc_conflicts {
            println!("  {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The node's health: the layered root's checks when it runs from a
/// layer, and the host's.
pub fn node_health(facts: &status::Facts) -> health::Report {
    let host = health::HostFacts::gather(
        crate::libvirt::security_models(),
        hostinfo::thin_pools().map_err(|e| e.last_line().to_string()),
    );
    health::report(Some(facts), &host)
}

/// `nodectl check`: exit status 1 when anything failed (a warning, such as
/// no KVM, is shown but passes).
pub fn check(json: bool) -> Result<ExitCode> {
    let facts = status::gather(&status::boot_dir())?;
    let report = node_health(&facts);
    if json {
        print_json("NodeCheck", &report)?;
    } else {
        print!("{}", health::render(&report));
    }
    Ok(if report.status == Status::Failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `nodectl motd`: the text shown at login.
pub fn motd() -> Result<ExitCode> {
    let facts = status::gather(&status::boot_dir())?;
    let report = node_health(&facts);
    println!();
    println!(
        "  hvnode {}{}",
        status::image_nvr().unwrap_or_else(|| "node".into()),
        facts
            .current_layer
            .as_ref()
            .map(|l| format!(", layer {l}"))
            .unwrap_or_default()
    );
    match report.status {
        Status::Ok => println!("  node status: OK"),
        Status::Warning => {
            let warnings: Vec<&str> = report
                .problems()
                .iter()
                .map(|(_, c)| c.name.as_str())
                .collect();
            println!("  node status: OK, with warnings ({})", warnings.join(", "));
        }
        Status::Failed => {
            println!("  node status: DEGRADED");
            println!("  Please check the status manually using `nodectl check`");
        }
    }
    for t in layers::history::failed_layers(&facts.trials).values() {
        println!("  Update FAILED its trial boot: {} ({})", t.layer, t.reason);
    }
    if let Some(t) = status::info(&facts, None).bootloader.trial {
        println!("  Update pending: {t} is tried at the next boot");
    }
    if !facts.etc_conflicts.is_empty() {
        println!(
            "  /etc conflicts after the update: {} (see `nodectl info`)",
            facts.etc_conflicts.join(", ")
        );
    }
    println!("  Web console: https://{}:9090/", host_name());
    println!();
    Ok(ExitCode::SUCCESS)
}

/// The node's host name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The login banner: agetty replaces `\4` with the node's IPv4 address.
pub fn banner_text() -> String {
    "hvnode web console: https://\\4:9090/ (or https://\\n:9090/)\n\n".to_string()
}

/// `nodectl generate-banner`: writes the console URL into the login
/// banner (`/etc/issue.d/hvnode.issue`, read by agetty).
pub fn generate_banner(root: &Path) -> Result<ExitCode> {
    let dir = root.join("etc/issue.d");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("hvnode.issue");
    fsutil::write_atomic(&path, banner_text().as_bytes(), fsutil::Options::default())?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_lands_in_issue_d() {
        let d = tempfile::tempdir().unwrap();
        generate_banner(d.path()).unwrap();
        let text = fs::read_to_string(d.path().join("etc/issue.d/hvnode.issue")).unwrap();
        assert!(text.contains("https://\\4:9090/"));
    }
}
