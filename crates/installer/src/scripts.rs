//! `%pre`, `%post` and `%onerror` scripts, run as Anaconda runs them: with
//! their `--interpreter` (default `/bin/sh`), `%post` inside the installed
//! system (chroot) unless `--nochroot`, output appended to `--log`, and a
//! failure stopping the install only with `--erroronfail`.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use kickstart::Kickstart;
use kickstart::sections::ScriptKind;

use crate::Log;

/// Runs every script of `kind`. `root` is the installed system for
/// chrooted `%post`.
pub fn run(ks: &Kickstart, kind: ScriptKind, root: Option<&Path>, log: &Log) -> Result<()> {
    for (loc, s) in ks.scripts() {
        if s.header.kind != kind {
            continue;
        }
        let h = &s.header;
        let interpreter = h.interpreter.clone().unwrap_or_else(|| "/bin/sh".into());
        let body = s.body.join("\n") + "\n";
        let chroot = kind == ScriptKind::Post && !h.nochroot;
        let (script_dir, run_path) = match (chroot, root) {
            (true, Some(r)) => (r.join("tmp"), "/tmp".to_string()),
            (true, None) => bail!("{loc}: %post needs the installed system"),
            _ => (
                std::env::temp_dir(),
                std::env::temp_dir().display().to_string(),
            ),
        };
        fs::create_dir_all(&script_dir)?;
        let name = format!("hvnode-ks-script-{}.sh", loc.line);
        let file = script_dir.join(&name);
        fs::write(&file, body).with_context(|| format!("writing {}", file.display()))?;
        let mut c = if chroot {
            let mut c = Command::new("chroot");
            c.arg(root.unwrap_or(Path::new("/")))
                .arg(&interpreter)
                .arg(format!("{run_path}/{name}"));
            c
        } else {
            let mut c = Command::new(&interpreter);
            c.arg(&file);
            c
        };
        log.line(&format!("running the {} script at {loc}", kind.name()));
        let out = c
            .output()
            .with_context(|| format!("{loc}: starting the script with {interpreter}"))?;
        let _ = fs::remove_file(&file);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        log.raw(&text);
        if let Some(l) = &h.log {
            let target = match (chroot, root) {
                (true, Some(r)) => layers::under(r, l),
                _ => Path::new(l).to_path_buf(),
            };
            if let Some(d) = target.parent() {
                fs::create_dir_all(d)?;
            }
            let mut old = fs::read_to_string(&target).unwrap_or_default();
            old.push_str(&text);
            fs::write(&target, old).with_context(|| format!("writing {}", target.display()))?;
        }
        if !out.status.success() {
            if h.erroronfail {
                bail!(
                    "the {} script at {loc} failed ({}) and has --erroronfail: {}",
                    kind.name(),
                    out.status,
                    text.lines().last().unwrap_or("no output")
                );
            }
            log.line(&format!(
                "the {} script at {loc} failed ({}); going on (no --erroronfail)",
                kind.name(),
                out.status
            ));
        }
    }
    Ok(())
}
