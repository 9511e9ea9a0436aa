//! Image and layer names. An image is named by its NVR
//! (`name-version-release`, e.g. `hvnode-1.0-0.20261125.0`); its layers by
//! the NVR and a counter (`hvnode-1.0-0.20261125.0+1`), as RHVH names them.
//! Both are used as LVM volume names and btrfs subvolume names, so only
//! the characters LVM accepts in names are allowed.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "{0:?} is not an image NVR: expected name-version-release (e.g. hvnode-1.0-0.20261125.0)"
    )]
    NotNvr(String),
    #[error("{0:?} has characters a volume name cannot hold (allowed: letters, digits, . _ + -)")]
    BadCharacters(String),
    #[error("{0:?} is not a layer name: expected NVR+N (e.g. hvnode-1.0-0.20261125.0+1)")]
    NotLayer(String),
}

fn check_chars(s: &str) -> Result<(), NameError> {
    if s.is_empty()
        || s.starts_with(['-', '.'])
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    {
        return Err(NameError::BadCharacters(s.to_string()));
    }
    Ok(())
}

/// An image's name-version-release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Nvr {
    pub name: String,
    pub version: String,
    pub release: String,
}

impl FromStr for Nvr {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check_chars(s)?;
        if s.contains('+') {
            return Err(NameError::NotNvr(s.to_string()));
        }
        let (rest, release) = s
            .rsplit_once('-')
            .ok_or_else(|| NameError::NotNvr(s.to_string()))?;
        let (name, version) = rest
            .rsplit_once('-')
            .ok_or_else(|| NameError::NotNvr(s.to_string()))?;
        if name.is_empty() || version.is_empty() || release.is_empty() {
            return Err(NameError::NotNvr(s.to_string()));
        }
        Ok(Nvr {
            name: name.into(),
            version: version.into(),
            release: release.into(),
        })
    }
}

impl fmt::Display for Nvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.name, self.version, self.release)
    }
}

impl From<Nvr> for String {
    fn from(n: Nvr) -> String {
        n.to_string()
    }
}

/// Compares dotted version strings numerically where both parts are numbers
/// (`1.10` after `1.9`), as text otherwise.
fn cmp_version(a: &str, b: &str) -> Ordering {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl Ord for Nvr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| cmp_version(&self.version, &other.version))
            .then_with(|| cmp_version(&self.release, &other.release))
    }
}

impl PartialOrd for Nvr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A writable layer: its base and its number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct LayerName {
    pub base: Nvr,
    pub number: u32,
}

impl LayerName {
    pub fn first(base: &Nvr) -> LayerName {
        LayerName {
            base: base.clone(),
            number: 1,
        }
    }

    pub fn next(&self) -> LayerName {
        LayerName {
            base: self.base.clone(),
            number: self.number + 1,
        }
    }
}

impl TryFrom<String> for Nvr {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl TryFrom<String> for LayerName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl FromStr for LayerName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (base, n) = s
            .rsplit_once('+')
            .ok_or_else(|| NameError::NotLayer(s.to_string()))?;
        let number: u32 = n.parse().map_err(|_| NameError::NotLayer(s.to_string()))?;
        if number == 0 {
            return Err(NameError::NotLayer(s.to_string()));
        }
        Ok(LayerName {
            base: base.parse()?,
            number,
        })
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.base, self.number)
    }
}

impl From<LayerName> for String {
    fn from(n: LayerName) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvr_round_trips_and_orders() {
        let a: Nvr = "hvnode-1.0-0.20261125.0".parse().unwrap();
        assert_eq!(a.name, "hvnode");
        assert_eq!(a.version, "1.0");
        assert_eq!(a.release, "0.20261125.0");
        assert_eq!(a.to_string(), "hvnode-1.0-0.20261125.0");
        let b: Nvr = "hvnode-1.0-0.20261125.10".parse().unwrap();
        let c: Nvr = "hvnode-1.10-0.20261101.0".parse().unwrap();
        assert!(a < b && b < c);
        let multi: Nvr = "ovirt-node-ng-4.5.5-0.20240101.0".parse().unwrap();
        assert_eq!(multi.name, "ovirt-node-ng");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (s, want) in [
            ("hvnode", "not an image NVR"),
            ("hvnode-1.0", "not an image NVR"),
            ("hv node-1-2", "characters"),
            ("-x-1-2", "characters"),
            ("hvnode-1.0-1+1", "not an image NVR"),
        ] {
            let e = s.parse::<Nvr>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
        for s in ["hvnode-1.0-1", "hvnode-1.0-1+0", "hvnode-1.0-1+x", "+1"] {
            assert!(s.parse::<LayerName>().is_err(), "{s}");
        }
    }

    #[test]
    fn layers_count_up_from_one() {
        let base: Nvr = "hvnode-1.0-0.20261125.0".parse().unwrap();
        let l = LayerName::first(&base);
        assert_eq!(l.to_string(), "hvnode-1.0-0.20261125.0+1");
        assert_eq!(l.next().to_string(), "hvnode-1.0-0.20261125.0+2");
        let parsed: LayerName = "hvnode-1.0-0.20261125.0+12".parse().unwrap();
        assert_eq!(parsed.number, 12);
        assert!(parsed > l);
    }
}
