//! hvnode's own addons: `%addon org_hvnode_register` (zero-touch
//! registration with an oVirt engine, written into the installed node's
//! configuration) and `%addon org_hvnode_image` (how the installer may
//! treat the image it installs).

use crate::commands::{Check, Syntax, ks_command};
use crate::diag::{Diagnostics, Loc, Severity};
use crate::model::Kickstart;
use crate::options::Finding;
use crate::sections::RawSection;

/// The addon's name as written after `%addon`.
pub const REGISTER_ADDON: &str = "org_hvnode_register";

ks_command! {
    /// `%addon org_hvnode_register --engine=FQDN[:PORT] --fingerprint=FP`.
    RegisterAddon ["org_hvnode_register"] conflicts []
    positional {}
    options {
        /// The engine, `FQDN[:PORT]` (port 443 when absent).
        engine: String = ["--engine"] required,
        /// The engine CA's fingerprint: `SHA256:` + hex or base64, or SHA-1
        /// colon-hex as vdsm-tool prints it. Without it the node waits for
        /// an administrator to confirm the CA.
        fingerprint: Option<String> = ["--fingerprint"],
        /// Display name in the engine (default: the address).
        node_name: Option<String> = ["--node-name"],
        /// Address the engine reaches the node at (default: its FQDN).
        node_address: Option<String> = ["--node-address"],
        ssh_user: Option<String> = ["--ssh-user"],
        ssh_port: Option<i64> = ["--ssh-port"],
    }
}

/// The image addon's name as written after `%addon`.
pub const IMAGE_ADDON: &str = "org_hvnode_image";

ks_command! {
    /// `%addon org_hvnode_image --allow-unverified`.
    ImageAddon ["org_hvnode_image"] conflicts []
    positional {}
    options {
        /// Install an image that neither a signature nor a checksum
        /// verifies (with a warning), rather than refuse it.
        allow_unverified: bool = ["--allow-unverified"],
    }
}

impl Check for ImageAddon {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.allow_unverified {
            f.push(Finding::warning(format!(
                "{IMAGE_ADDON} --allow-unverified: an image without a signature or a checksum will be installed unverified; prefer liveimg --checksum or a signed image"
            )));
        } else {
            f.push(Finding::warning(format!(
                "{IMAGE_ADDON}: no option; the section does nothing"
            )));
        }
    }
}

/// An engine address split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    pub host: String,
    pub port: u16,
}

/// Parses `FQDN`, `FQDN:PORT`, `IPV4[:PORT]` or `[IPV6][:PORT]`.
pub fn parse_engine(s: &str) -> Result<EngineAddress, String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: '[' without ']' around an IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("{s:?}: unexpected {after:?} after the address")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(format!("{s:?}: write an IPv6 address as [ADDRESS]:PORT")),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?}: no host name"));
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(format!("{s:?}: {host:?} is not a host name"));
    }
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: port {p:?} is not a number between 1 and 65535"))?,
    };
    Ok(EngineAddress {
        host: host.to_string(),
        port,
    })
}

/// Whether `s` has the shape of a CA fingerprint we accept.
pub fn fingerprint_shape_ok(s: &str) -> bool {
    if let Some(rest) = s
        .strip_prefix("SHA256:")
        .or_else(|| s.strip_prefix("sha256:"))
    {
        let hex = rest.replace(':', "");
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return true;
        }
        let b64 = rest.trim_end_matches('=');
        return b64.len() == 43
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    }
    let pairs: Vec<&str> = s.split(':').collect();
    pairs.len() == 20
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Check for RegisterAddon {
    fn check(&self, f: &mut Vec<Finding>) {
        if let Err(e) = parse_engine(&self.engine) {
            f.push(Finding::error(format!("{REGISTER_ADDON}: --engine {e}")));
        }
        if let Some(fp) = &self.fingerprint
            && !fingerprint_shape_ok(fp)
        {
            f.push(Finding::error(format!(
                "{REGISTER_ADDON}: --fingerprint {fp:?} is neither SHA256:HEX, SHA256:BASE64 nor SHA-1 colon-hex"
            )));
        }
        if let Some(p) = self.ssh_port
            && !(1..=65535).contains(&p)
        {
            f.push(Finding::error(format!(
                "{REGISTER_ADDON}: --ssh-port {p} is not between 1 and 65535"
            )));
        }
        if self.fingerprint.is_none() {
            f.push(Finding::warning(format!(
                "{REGISTER_ADDON}: no --fingerprint; the node will wait for an administrator to confirm the engine's CA"
            )));
        }
    }
}

/// Reads the `%addon org_hvnode_register` section (the last one wins),
/// reporting its problems at its header line.
pub fn read(ks: &Kickstart, d: &mut Diagnostics) -> Option<RegisterAddon> {
    read_last(ks, REGISTER_ADDON, d)
}

/// Reads the `%addon org_hvnode_image` section (the last one wins),
/// reporting its problems at its header line.
pub fn read_image(ks: &Kickstart, d: &mut Diagnostics) -> Option<ImageAddon> {
    read_last(ks, IMAGE_ADDON, d)
}

/// The last `%addon NAME` section, parsed as `T`; every one is checked.
fn read_last<T: Syntax + Check>(ks: &Kickstart, name: &str, d: &mut Diagnostics) -> Option<T> {
    let mut found = None;
    for (loc, raw) in ks.addons(name) {
        found = read_one(name, loc, raw, d);
    }
    found
}

fn read_one<T: Syntax + Check>(
    name: &str,
    loc: &Loc,
    raw: &RawSection,
    d: &mut Diagnostics,
) -> Option<T> {
    let words = raw.words.get(1..).unwrap_or_default();
    let (addon, mut f) = crate::commands::parse_as::<T>(name, words);
    if raw
        .body
        .iter()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        f.push(Finding::warning(format!(
            "{name}: the section body is ignored; settings go on the %addon line"
        )));
    }
    let ok = !f.iter().any(|f| f.severity == Severity::Error);
    for x in f {
        d.push(loc, x.severity, x.message);
    }
    ok.then_some(addon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_addresses() {
        let ok = |s: &str, h: &str, p: u16| {
            assert_eq!(
                parse_engine(s),
                Ok(EngineAddress {
                    host: h.into(),
                    port: p
                }),
                "{s}"
            )
        };
        ok("engine.example.com", "engine.example.com", 443);
        ok("engine.example.com:8443", "engine.example.com", 8443);
        ok("127.0.0.1:9443", "127.0.0.1", 9443);
        ok("[::1]:9443", "::1", 9443);
        ok("[::1]", "::1", 443);
        for bad in [
            "",
            ":443",
            "engine:0",
            "engine:99999",
            "engine:x",
            "::1:443",
            "en gine",
            "[::1",
        ] {
            assert!(parse_engine(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints() {
        let sha1 = "12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0:12:34:56:78";
        assert!(fingerprint_shape_ok(sha1));
        assert!(fingerprint_shape_ok(&format!("SHA256:{}", "ab".repeat(32))));
        assert!(fingerprint_shape_ok(
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        ));
        assert!(!fingerprint_shape_ok("SHA256:abc"));
        assert!(!fingerprint_shape_ok("12:34"));
    }
}
