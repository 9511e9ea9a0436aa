//! OVMF, the UEFI firmware a guest boots with `Firmware::Uefi` or
//! `Firmware::UefiSecureBoot`.

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
fn ovmf(secure_boot: bool) -> Result<(PathBuf, PathBuf)> {
    if secure_boot {
        // The build with SMM (so a guest cannot write the variable store
        // behind the firmware's back) and a variable store with Microsoft's
        // keys enrolled and Secure Boot on: what a server's firmware has.
        let (code, vars) = (
            "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
        );
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Ok((code.into(), vars.into()));
        }
        bail!(
            "OVMF with Secure Boot ({code}, {vars}) is not installed (apt-get install ovmf; \
             `make deps` does)"
        );
    }
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

/// Finds OVMF, with Secure Boot enforced or without, and gives a guest its
/// own variable store in `dir`.
pub(crate) fn pflash(dir: &Path, secure_boot: bool) -> Result<Pflash> {
    let (code, template) = ovmf(secure_boot)?;
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
