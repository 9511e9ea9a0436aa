//! `hvnode iso customize`, `show` and `reset`: a built ISO changed in
//! place, without a rebuild, root or a mount.
//!
//! The builder reserves two fixed-size files in the ISO 9660 tree (the
//! areas of [`iso_custom`]). Customising copies the ISO next to the output,
//! finds the areas through the ISO's directory records, checks that they
//! are what they claim (magic, kind, size), rewrites their bytes, flushes
//! and renames. Nothing else changes: not a file's size or place, not the
//! boot loaders, the El Torito images, the MBR or the GPT, so the result
//! boots as the input did, from a CD and written to a USB disk, and a
//! signed boot chain stays as signed as it was.
//!
//! The rule for an ISO customised before: a customisation starts from the
//! current one. `--kickstart`, `--default-entry`, `--timeout` and
//! `--engine-fqdn` replace what was there; `--kargs-delete` and
//! `--kargs-append` edit the current arguments (deletes first);
//! `--trust-key` adds a key (replacing one with the same key id). Only
//! [`reset`] goes back to the build's defaults, byte for byte.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
/// The type of [`Changes::default_entry`], so that a caller needs no other crate.
pub use iso_custom::MenuEntry;
use iso_custom::{AreaKind, Customization, EmbeddedKickstart, Engine, TrustKey};
use kickstart::addon::{REGISTER_ADDON, fingerprint_shape_ok, parse_engine};
use kickstart::source::FsLoader;
use kickstart::{Severity, node, parse_file};
use serde::Serialize;

use crate::assemble::{KARGS_VAR, grub_quote, partial_name};
use crate::iso9660::{Extent, Iso, IsoError};

/// The ISO's grub configuration, which holds the build's kernel arguments.
const GRUB_CFG: &str = "boot/grub/grub.cfg";
/// The most a kernel command line may hold on x86 (`COMMAND_LINE_SIZE`,
/// its final NUL included).
const KERNEL_CMDLINE_MAX: usize = 2048;
/// What the longest menu entry adds to the arguments, and `BOOT_IMAGE=`.
const ENTRY_EXTRA: usize = 80;

/// What to change; see the module documentation for how it combines with
/// an earlier customisation.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// A kickstart file, checked as `hvnode ks validate` checks it.
    pub kickstart: Option<PathBuf>,
    pub kargs_append: Vec<String>,
    pub kargs_delete: Vec<String>,
    pub default_entry: Option<MenuEntry>,
    pub timeout: Option<u32>,
    /// minisign public keys (`.pub` files).
    pub trust_keys: Vec<PathBuf>,
    /// `FQDN[:PORT]`.
    pub engine: Option<String>,
    pub engine_fingerprint: Option<String>,
}

/// The areas of one ISO, found and checked.
#[derive(Debug, Clone)]
struct Areas {
    grub: Extent,
    installer: Extent,
}

/// An ISO's customisation as it stands.
#[derive(Debug, Clone)]
pub struct State {
    pub customization: Customization,
    /// The build's kernel arguments (the ISO's grub.cfg).
    pub build_kargs: Vec<String>,
    /// The build's menu timeout.
    pub build_timeout: Option<u32>,
    areas: Areas,
}

impl State {
    /// The kernel arguments every menu entry boots with now.
    pub fn kargs(&self) -> &[String] {
        self.customization
            .kargs
            .as_deref()
            .unwrap_or(&self.build_kargs)
    }
}

/// What `hvnode iso show --json` prints (`apiVersion` hvnode.io/v1, kind
/// `IsoCustomizationStatus`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShowReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub iso: String,
    pub customized: bool,
    pub default_entry: MenuEntry,
    pub timeout: Option<u32>,
    pub kargs: Vec<String>,
    pub build_kargs: Vec<String>,
    pub kickstart: Option<EmbeddedKickstart>,
    pub trust_keys: Vec<TrustKey>,
    pub engine: Option<Engine>,
}

impl ShowReport {
    pub fn new(iso: &Path, s: &State) -> ShowReport {
        let c = &s.customization;
        ShowReport {
            api_version: iso_custom::API_VERSION,
            kind: "IsoCustomizationStatus",
            iso: iso.display().to_string(),
            customized: !c.is_empty(),
            default_entry: c.default_entry.unwrap_or(MenuEntry::Install),
            timeout: c.timeout.or(s.build_timeout),
            kargs: s.kargs().to_vec(),
            build_kargs: s.build_kargs.clone(),
            kickstart: c.kickstart.clone(),
            trust_keys: c.trust_keys.clone(),
            engine: c.engine.clone(),
        }
    }
}

fn read_at(file: &File, e: Extent, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(e.len).context("an extent beyond memory")?];
    file.read_exact_at(&mut buf, e.offset)
        .with_context(|| format!("reading {what} at byte {}", e.offset))?;
    Ok(buf)
}

/// Finds `kind`'s area in `iso` and checks it.
fn area(iso: &Iso<'_>, file: &File, kind: AreaKind, path: &Path) -> Result<(Extent, Vec<u8>)> {
    let e = match iso.find(kind.path()) {
        Ok(e) => e,
        Err(IsoError::NotFound(_)) => bail!(
            "{} has no customisation areas ({} is missing): it was built by an hvnode without `iso customize`, or not by hvnode. Build the image again with this hvnode (hvnode build)",
            path.display(),
            kind.path()
        ),
        Err(e) => return Err(e).with_context(|| format!("looking for {kind}")),
    };
    if e.len != kind.size() as u64 {
        bail!(
            "{} in {} has {} bytes, not the {} of the area: it was not made by hvnode's builder; nothing was written",
            kind.path(),
            path.display(),
            e.len,
            kind.size()
        );
    }
    if e.offset % crate::iso9660::BLOCK != 0 {
        bail!("{kind} is not block-aligned in {}", path.display());
    }
    let bytes = read_at(file, e, kind.path())?;
    iso_custom::decode(kind, &bytes)
        .with_context(|| format!("checking {kind} of {}; nothing was written", path.display()))?;
    Ok((e, bytes))
}

/// The value of `set NAME=VALUE` in a grub.cfg, unquoted.
fn grub_set(cfg: &str, name: &str) -> Option<String> {
    let prefix = format!("set {name}=");
    let v = cfg.lines().find_map(|l| l.strip_prefix(&prefix))?;
    Some(
        match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(q) => q.replace("'\\''", "'"),
            None => v.to_string(),
        },
    )
}

/// Reads the customisation of the ISO at `path`.
pub fn read(path: &Path) -> Result<State> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let iso = Iso::open(&file).with_context(|| format!("reading {}", path.display()))?;
    let (grub, _) = area(&iso, &file, AreaKind::Grub, path)?;
    let (installer, bytes) = area(&iso, &file, AreaKind::Installer, path)?;
    let payload = iso_custom::decode(AreaKind::Installer, &bytes)?;
    let customization = Customization::from_payload(payload)
        .with_context(|| format!("reading the customisation of {}", path.display()))?;
    let cfg_extent = iso
        .find(GRUB_CFG)
        .with_context(|| format!("looking for {GRUB_CFG} in {}", path.display()))?;
    if cfg_extent.len > 1 << 20 {
        bail!("{GRUB_CFG} in {} is over 1 MiB", path.display());
    }
    let cfg = String::from_utf8_lossy(&read_at(&file, cfg_extent, GRUB_CFG)?).into_owned();
    let build_kargs = grub_set(&cfg, KARGS_VAR)
        .with_context(|| {
            format!(
                "{GRUB_CFG} of {} sets no {KARGS_VAR}: it was not made by this hvnode's builder",
                path.display()
            )
        })?
        .split_whitespace()
        .map(String::from)
        .collect();
    let build_timeout = grub_set(&cfg, "timeout").and_then(|t| t.parse().ok());
    Ok(State {
        customization,
        build_kargs,
        build_timeout,
        areas: Areas { grub, installer },
    })
}

/// The grub area's script for `c` (empty for the build's defaults).
pub fn grub_script(c: &Customization) -> String {
    let mut s = String::new();
    if let Some(e) = c.default_entry {
        s.push_str(&format!("set default={}\n", e.id()));
    }
    if let Some(t) = c.timeout {
        s.push_str(&format!("set timeout={t}\n"));
    }
    if let Some(k) = &c.kargs {
        s.push_str(&format!("set {KARGS_VAR}={}\n", grub_quote(&k.join(" "))));
    }
    s
}

/// Checks a kickstart as `hvnode ks validate` does (F40 syntax, then the
/// node rules) and that it stands alone; returns it and its warnings.
pub fn check_kickstart(path: &Path) -> Result<(EmbeddedKickstart, Vec<String>)> {
    let parse = parse_file(path, &FsLoader);
    let mut diags: Vec<_> = parse.diagnostics.iter().cloned().collect();
    if parse.is_valid() {
        let (_, node) = node::plan(&parse.kickstart);
        diags.extend(node.iter().cloned());
    }
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        bail!(
            "{} is not a valid kickstart, so nothing was written:\n{}\n(`hvnode ks validate {}` checks it)",
            path.display(),
            errors.join("\n"),
            path.display()
        );
    }
    if let Some(other) = parse.files.get(1) {
        bail!(
            "{} includes {} (%include or %ksappend): an embedded kickstart travels alone on the ISO; put the included lines into it. Nothing was written",
            path.display(),
            other.display()
        );
    }
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the kickstart {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ks.cfg".into());
    let warnings: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    let has_register = parse
        .kickstart
        .addons(REGISTER_ADDON)
        .next()
        .is_some()
        .then(|| format!("{name} has its own %addon {REGISTER_ADDON}"));
    Ok((
        EmbeddedKickstart { name, text },
        warnings.into_iter().chain(has_register).collect::<Vec<_>>(),
    ))
}

/// A kernel argument we can put on grub's command line.
fn check_karg(a: &str) -> Result<()> {
    if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "kernel argument {a:?}: give one argument per --kargs-append/--kargs-delete, without blanks"
        );
    }
    Ok(())
}

/// `current` with `changes` applied; notes for the user (what changed
/// nothing, the kickstart's warnings).
pub fn apply(state: &State, changes: &Changes) -> Result<(Customization, Vec<String>)> {
    let mut c = state.customization.clone();
    let mut notes = Vec::new();
    if let Some(path) = &changes.kickstart {
        let (ks, warnings) = check_kickstart(path)?;
        notes.extend(warnings);
        c.kickstart = Some(ks);
    }
    if !changes.kargs_append.is_empty() || !changes.kargs_delete.is_empty() {
        let mut kargs = state.kargs().to_vec();
        for d in &changes.kargs_delete {
            check_karg(d)?;
            let before = kargs.len();
            kargs.retain(|a| {
                if d.contains('=') {
                    a != d
                } else {
                    a != d && !a.starts_with(&format!("{d}="))
                }
            });
            if kargs.len() == before {
                notes.push(format!(
                    "--kargs-delete {d}: not among the kernel arguments, nothing deleted"
                ));
            }
        }
        for a in &changes.kargs_append {
            check_karg(a)?;
            if kargs.contains(a) {
                notes.push(format!("--kargs-append {a}: already there"));
            } else {
                kargs.push(a.clone());
            }
        }
        let len = kargs.iter().map(|a| a.len() + 1).sum::<usize>();
        if len + ENTRY_EXTRA > KERNEL_CMDLINE_MAX {
            bail!(
                "the kernel arguments would be {len} bytes: with what the menu entries add, over the {KERNEL_CMDLINE_MAX} bytes a kernel command line holds; nothing was written"
            );
        }
        c.kargs = (kargs != state.build_kargs).then_some(kargs);
    }
    if let Some(e) = changes.default_entry {
        c.default_entry = (e != MenuEntry::Install).then_some(e);
    }
    if let Some(t) = changes.timeout {
        c.timeout = (Some(t) != state.build_timeout).then_some(t);
    }
    for path in &changes.trust_keys {
        let key = bundle::read_public_key(path)
            .with_context(|| format!("--trust-key {}: nothing was written", path.display()))?;
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the key {}", path.display()))?;
        let text = format!("{}\n", text.trim());
        c.trust_keys.retain(|k| k.key_id != key.key_id);
        c.trust_keys.push(TrustKey {
            key_id: key.key_id,
            text,
        });
    }
    if let Some(e) = &changes.engine {
        let a = parse_engine(e)
            .map_err(|why| anyhow::anyhow!("--engine-fqdn {why}; nothing was written"))?;
        c.engine = Some(Engine {
            host: a.host,
            port: a.port,
            fingerprint: None,
        });
    }
    if let Some(fp) = &changes.engine_fingerprint {
        if !fingerprint_shape_ok(fp) {
            bail!(
                "--engine-fingerprint {fp:?} is neither SHA256:HEX, SHA256:BASE64 nor SHA-1 colon-hex (what `openssl x509 -fingerprint` prints); nothing was written"
            );
        }
        match &mut c.engine {
            Some(e) => e.fingerprint = Some(fp.clone()),
            None => bail!(
                "--engine-fingerprint without an engine: give --engine-fqdn FQDN[:PORT] too; nothing was written"
            ),
        }
    } else if changes.engine.is_some() {
        notes.push(
            "no --engine-fingerprint: the node will wait for an administrator to confirm the engine's CA"
                .into(),
        );
    }
    Ok((c, notes))
}

/// Removes a temporary file unless it was renamed into place.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Copies `input` next to `output`, writes `grub` and `installer` into
/// the areas, checks them, flushes and renames the copy to `output`.
fn write(input: &Path, output: &Path, areas: &Areas, grub: &[u8], installer: &[u8]) -> Result<()> {
    let partial = partial_name(output);
    if partial.exists() {
        fs::remove_file(&partial)
            .with_context(|| format!("removing the leftover {}", partial.display()))?;
    }
    let mut guard = Partial(Some(partial.clone()));
    // copy_file_range: a reflink where the file system shares extents.
    fs::copy(input, &partial).with_context(|| {
        format!(
            "copying {} to {} (is there room for a copy of the ISO?)",
            input.display(),
            partial.display()
        )
    })?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&partial)
        .with_context(|| format!("opening {}", partial.display()))?;
    for (e, bytes) in [(areas.grub, grub), (areas.installer, installer)] {
        if bytes.len() as u64 != e.len {
            bail!(
                "internal error: an area of {} bytes for an extent of {}",
                bytes.len(),
                e.len
            );
        }
        file.write_all_at(bytes, e.offset)
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("flushing {}", partial.display()))?;
    drop(file);
    // What a reader of the result finds must be what was meant.
    let check = read(&partial).context("reading the customised copy back")?;
    let expect = Customization::from_payload(iso_custom::decode(AreaKind::Installer, installer)?)?;
    if check.customization != expect {
        bail!("the customised copy does not read back as written; nothing was renamed");
    }
    fs::rename(&partial, output)
        .with_context(|| format!("renaming {} to {}", partial.display(), output.display()))?;
    guard.0 = None;
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing the folder {}", dir.display()))?;
    Ok(())
}

/// Refuses an ISO whose implanted MD5 a change would break.
fn refuse_implanted_md5(path: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let iso = Iso::open(&file).with_context(|| format!("reading {}", path.display()))?;
    if iso.has_implanted_md5() {
        bail!(
            "{} carries an MD5 implanted by implantisomd5, which a change would break (checkisomd5 and rd.live.check would call the medium damaged). Customise the ISO as built, then run implantisomd5 on the result",
            path.display()
        );
    }
    Ok(())
}

/// `hvnode iso customize`: `output` is `input` with `changes` applied to
/// its current customisation. Nothing is written when a check fails.
pub fn customize(input: &Path, output: &Path, changes: &Changes) -> Result<Vec<String>> {
    let state = read(input)?;
    refuse_implanted_md5(input)?;
    let (c, notes) = apply(&state, changes)?;
    let grub = iso_custom::encode(AreaKind::Grub, grub_script(&c).as_bytes())
        .context("nothing was written")?;
    let installer = iso_custom::encode(AreaKind::Installer, &c.to_payload()).context(
        "nothing was written; a kickstart that large belongs on a web server (inst.ks=http://…) or an OEMDRV volume",
    )?;
    write(input, output, &state.areas, &grub, &installer)?;
    Ok(notes)
}

/// `hvnode iso reset`: `output` is `input` with both areas as built, so a
/// customised ISO gets back the bytes of the build.
pub fn reset(input: &Path, output: &Path) -> Result<()> {
    let state = read(input)?;
    write(
        input,
        output,
        &state.areas,
        &iso_custom::pristine(AreaKind::Grub),
        &iso_custom::pristine(AreaKind::Installer),
    )
}

#[cfg(test)]
#[path = "customize_tests.rs"]
mod tests;
