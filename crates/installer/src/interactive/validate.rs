//! Checks for what the administrator types, each returning the value or a
//! message that says what is wrong and what would be right. Pure functions:
//! the spokes print the message and ask again.

use std::net::{IpAddr, Ipv4Addr};

/// A host name: an RFC 1123 name (dot-separated labels of letters, digits
/// and hyphens, 1–63 characters each, not starting or ending with a hyphen,
/// 253 characters at most). A trailing dot is dropped.
pub fn hostname(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('.');
    if s.is_empty() {
        return Err("The host name is empty.".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "The host name is {} characters long; at most 253 are allowed.",
            s.len()
        ));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(format!("{s}: a host name has no empty parts (\"..\")."));
        }
        if label.len() > 63 {
            return Err(format!(
                "{s}: each part between dots has at most 63 characters ({label} has {}).",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return Err(format!(
                "{s}: {c:?} is not allowed; use letters, digits, hyphens and dots (e.g. node1.example.com)."
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{s}: a part may not start or end with a hyphen ({label})."
            ));
        }
    }
    if s.rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{s} looks like an IP address; a host name is a name (e.g. node1.example.com)."
        ));
    }
    Ok(s.to_string())
}

/// A user name as useradd accepts it by default: starts with a lower-case
/// letter or `_`, then lower-case letters, digits, `_` or `-`, at most 32
/// characters.
pub fn user_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("The user name is empty.".into());
    }
    if s.len() > 32 {
        return Err(format!("{s}: a user name has at most 32 characters."));
    }
    let mut chars = s.chars();
    if !chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
    {
        return Err(format!(
            "{s}: a user name starts with a lower-case letter or _ (e.g. admin)."
        ));
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "{s}: {c:?} is not allowed; use lower-case letters, digits, _ and -."
        ));
    }
    Ok(s.to_string())
}

/// The key types an OpenSSH authorized_keys line may start with here.
fn ssh_key_type_ok(t: &str) -> bool {
    matches!(t, "ssh-ed25519" | "ssh-rsa")
        || t.strip_prefix("ecdsa-sha2-")
            .is_some_and(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// One OpenSSH public key line: `TYPE BASE64 [comment]`, where the type is
/// `ssh-ed25519`, `ssh-rsa` or `ecdsa-sha2-*` and the key data is base64
/// whose decoded start names the same type (as ssh-keygen writes it).
pub fn ssh_public_key(s: &str) -> Result<String, String> {
    let s = s.trim();
    let mut words = s.split_whitespace();
    let (Some(kind), Some(data)) = (words.next(), words.next()) else {
        return Err(
            "An SSH public key is one line: TYPE KEY [comment] (the contents of ~/.ssh/id_ed25519.pub)."
                .into(),
        );
    };
    if !ssh_key_type_ok(kind) {
        return Err(format!(
            "{kind}: the key type must be ssh-ed25519, ssh-rsa or ecdsa-sha2-* (paste the .pub file, not the private key)."
        ));
    }
    let bytes = base64_decode(data).ok_or_else(|| {
        format!("The key data after {kind} is not base64; paste the whole line of the .pub file.")
    })?;
    // The blob starts with the type as an SSH string: 4-byte length, name.
    let named = bytes
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| bytes.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(format!(
            "The key data does not hold a {kind} key; the line may be cut short or mixed up."
        ));
    }
    Ok(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = s.trim_end_matches('=');
    if s.len() % 4 != 0 || s.len() - body.len() > 2 || body.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// An IPv4 address with its prefix length: `192.0.2.10/24`.
pub fn ipv4_with_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let s = s.trim();
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err(format!(
            "{s}: give the address with its prefix length, e.g. 192.0.2.10/24."
        ));
    };
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr} is not an IPv4 address (e.g. 192.0.2.10/24)."))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("/{prefix}: the prefix length is a number from 1 to 32."))?;
    if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback() {
        return Err(format!("{addr} cannot be a host's address."));
    }
    if prefix <= 30 {
        let host = u32::from(addr) & host_mask(prefix);
        if host == 0 || host == host_mask(prefix) {
            return Err(format!(
                "{addr} is the network or broadcast address of /{prefix}; give a host's address."
            ));
        }
    }
    Ok((addr, prefix))
}

fn host_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// The dotted netmask of a prefix length: 24 → 255.255.255.0.
pub fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(!host_mask(prefix))
}

/// A gateway: an IPv4 address inside the interface's network.
pub fn gateway(s: &str, addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Addr, String> {
    let s = s.trim();
    let gw: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("{s} is not an IPv4 address (e.g. 192.0.2.1)."))?;
    let net = !host_mask(prefix);
    if u32::from(gw) & net != u32::from(addr) & net {
        return Err(format!(
            "{gw} is not in {}/{prefix}, the network of {addr}; the gateway must be reachable directly.",
            Ipv4Addr::from(u32::from(addr) & net)
        ));
    }
    if gw == addr {
        return Err(format!("{gw} is this node's own address."));
    }
    Ok(gw)
}

/// Name servers: IPv4 or IPv6 addresses separated by commas or spaces.
pub fn nameservers(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for w in s.split([',', ' ']).filter(|w| !w.is_empty()) {
        let ip: IpAddr = w
            .parse()
            .map_err(|_| format!("{w} is not an IP address (e.g. 192.0.2.53, 2001:db8::53)."))?;
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// A time zone name's shape (`Region/City`, `UTC`): relative, no `..`,
/// letters, digits, `_`, `-`, `+` and `/` only. Whether it exists is for
/// the zone database to say.
pub fn zone_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty()
        || s.starts_with('/')
        || s.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/'))
    {
        return Err(format!(
            "{s}: a time zone is named like Europe/Paris, America/New_York or UTC."
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_rfc_1123() {
        for ok in [
            "node1",
            "node1.example.com",
            "a-b.c",
            "NODE.example.com.",
            "1node.example.com",
        ] {
            assert!(hostname(ok).is_ok(), "{ok}");
        }
        assert_eq!(hostname("node1.example.com.").unwrap(), "node1.example.com");
        for (bad, why) in [
            ("", "empty"),
            ("node_1", "'_'"),
            ("-node", "hyphen"),
            ("node-.example.com", "hyphen"),
            ("a..b", "empty parts"),
            ("192.0.2.1", "IP address"),
            (&"x".repeat(64), "63"),
            (&["a"; 130].join("."), "253"),
        ] {
            let e = hostname(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn user_names_follow_useradd() {
        for ok in ["admin", "_svc", "ops-1", "a_b"] {
            assert_eq!(user_name(ok).unwrap(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("Admin", "lower-case"),
            ("1admin", "starts"),
            ("ad min", "' '"),
            ("ad.min", "'.'"),
            (&"a".repeat(33), "32"),
        ] {
            let e = user_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f admin@laptop";

    #[test]
    fn ssh_keys_are_checked_down_to_the_key_type_inside() {
        assert_eq!(ssh_public_key(ED25519).unwrap(), ED25519);
        assert_eq!(
            ssh_public_key("  ssh-ed25519   AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ").unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
        );
        // "ecdsa-sha2-nistp256" as an SSH string, base64.
        assert!(ssh_public_key("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=").is_ok());
        for (bad, why) in [
            ("", "one line"),
            ("ssh-ed25519", "one line"),
            ("ssh-dss AAAAB3NzaC1kc3M=", "key type"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "key type"),
            ("ssh-ed25519 not*base64", "base64"),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
                "ssh-rsa key",
            ),
            ("ssh-ed25519 AAAAC3Nz", "ssh-ed25519 key"),
        ] {
            let e = ssh_public_key(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn addresses_prefixes_gateways_and_name_servers() {
        assert_eq!(
            ipv4_with_prefix("192.0.2.10/24").unwrap(),
            ("192.0.2.10".parse().unwrap(), 24)
        );
        assert!(ipv4_with_prefix("10.0.0.1/32").is_ok());
        for (bad, why) in [
            ("192.0.2.10", "prefix length"),
            ("192.0.2.300/24", "not an IPv4"),
            ("192.0.2.10/33", "1 to 32"),
            ("192.0.2.10/x", "1 to 32"),
            ("192.0.2.0/24", "network or broadcast"),
            ("192.0.2.255/24", "network or broadcast"),
            ("127.0.0.1/8", "cannot be"),
        ] {
            let e = ipv4_with_prefix(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(netmask(24).to_string(), "255.255.255.0");
        assert_eq!(netmask(20).to_string(), "255.255.240.0");
        assert_eq!(netmask(32).to_string(), "255.255.255.255");
        let a: Ipv4Addr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            gateway("192.0.2.1", a, 24).unwrap().to_string(),
            "192.0.2.1"
        );
        assert!(
            gateway("198.51.100.1", a, 24)
                .unwrap_err()
                .contains("not in 192.0.2.0/24")
        );
        assert!(
            gateway("192.0.2.10", a, 24)
                .unwrap_err()
                .contains("own address")
        );
        assert!(gateway("gw", a, 24).unwrap_err().contains("not an IPv4"));
        assert_eq!(
            nameservers("192.0.2.53, 2001:db8::53 192.0.2.53").unwrap(),
            [
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap()
            ]
        );
        assert!(nameservers("").unwrap().is_empty());
        assert!(
            nameservers("dns.example.com")
                .unwrap_err()
                .contains("not an IP")
        );
    }

    #[test]
    fn zone_names_stay_inside_the_zone_database() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert_eq!(zone_name(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "Europe//Paris",
            "Europe/Paris;",
            "Europe/",
        ] {
            assert!(zone_name(bad).is_err(), "{bad}");
        }
    }
}
