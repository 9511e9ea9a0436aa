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
        // Scripts often hold secrets: readable by root only.
        fsutil::write_atomic(&file, body.as_bytes(), fsutil::Options::mode(0o600))
            .with_context(|| format!("writing the script at {loc} to {}", file.display()))?;
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
            append_log(&target, &text).with_context(|| {
                format!(
                    "writing the --log of the {} script at {loc} to {}",
                    kind.name(),
                    target.display()
                )
            })?;
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

/// Appends a script's output to its `--log`, which is made readable by root
/// only (mode 0600) when it is created, as Anaconda makes it.
fn append_log(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut f = crate::open_private_log(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use kickstart::source::FsLoader;

    use super::*;

    #[test]
    fn the_script_and_its_log_are_for_root_only() {
        let d = tempfile::tempdir().unwrap();
        let pre_log = d.path().join("logs/ks-pre.log");
        let text = format!(
            "%pre --log={}\necho \"script mode $(stat -c %a \"$0\")\"\n%end\n",
            pre_log.display()
        );
        let p = kickstart::parse_str("ks.cfg", &text, &FsLoader);
        assert!(p.is_valid(), "{:?}", p.diagnostics);
        let log = Log::create(&d.path().join("install.log")).unwrap();
        run(&p.kickstart, ScriptKind::Pre, None, &log).unwrap();
        run(&p.kickstart, ScriptKind::Pre, None, &log).unwrap();
        assert_eq!(
            fs::read_to_string(&pre_log).unwrap(),
            "script mode 600\nscript mode 600\n",
            "appended to, and the script itself was 0600"
        );
        let mode = fs::metadata(&pre_log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
