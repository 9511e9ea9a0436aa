//! OVMF, the UEFI firmware a guest boots with `Firmware::Uefi`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// OVMF as one guest uses it: the shared code, read-only, and the guest's
/// own copy of the variable store.
#[derive(Debug, Clone)]
pub(crate) struct Pflash {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// OVMF's code and variable templates, as Debian installs them.
fn ovmf() -> Result<(PathBuf, PathBuf)> {
    for (code, vars) in [
        (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
    ] {
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Ok((code.into(), vars.into()));
        }
    }
    bail!("OVMF is not installed (apt-get install ovmf; `make deps` does)")
}

/// Finds OVMF and gives a guest its own variable store in `dir`.
pub(crate) fn pflash(dir: &Path) -> Result<Pflash> {
    let (code, template) = ovmf()?;
    let vars = dir.join("OVMF_VARS.fd");
    std::fs::copy(&template, &vars).with_context(|| {
        format!(
            "copying OVMF's variable store {} to {}",
            template.display(),
            vars.display()
        )
    })?;
    Ok(Pflash { code, vars })
}
