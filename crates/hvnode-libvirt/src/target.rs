//! Which socket to connect to, and which name to open there, for a libvirt URI.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where a connection goes: the daemon's socket, and the URI to open there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The daemon's unix socket.
    pub socket: PathBuf,
    /// The URI the daemon opens (`qemu:///system`): the given one without the
    /// transport and the query.
    pub name: String,
}

impl Target {
    /// The target of a local URI: `driver:///path` or `driver+unix:///path`, with an
    /// optional `?socket=PATH`. Without `socket`, libvirtd's socket, or the modular
    /// daemon's (`/run/libvirt/virtqemud-sock`) where only that one exists. Remote
    /// URIs (a host name, `+ssh`, `+tls`) are refused: this client speaks to the local
    /// daemon only.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        Self::from_uri_in(uri, Path::new("/run/libvirt"))
    }

    /// [`Target::from_uri`] with the daemons' sockets looked for in `run_dir`.
    fn from_uri_in(uri: &str, run_dir: &Path) -> Result<Self, Error> {
        let bad = |reason| Error::Uri {
            uri: uri.to_string(),
            reason,
        };
        if uri.contains('\0') {
            return Err(bad("it contains a NUL byte"));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("it has no scheme"))?;
        let (driver, transport) = scheme.split_once('+').unwrap_or((scheme, ""));
        if driver.is_empty() {
            return Err(bad("it names no driver"));
        }
        if !transport.is_empty() && transport != "unix" {
            return Err(bad("only local connections (unix) are supported"));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !rest.starts_with('/') {
            return Err(bad("only local connections (no host name) are supported"));
        }
        let socket = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("socket="))
            .map(PathBuf::from)
            .unwrap_or_else(|| default_socket(driver, run_dir));
        Ok(Self {
            socket,
            name: format!("{driver}://{rest}"),
        })
    }
}

impl Target {
    /// The daemon's read-only socket beside its read-write one (`libvirt-sock-ro`,
    /// `virtqemud-sock-ro`), where `socket` is one of the daemon's own; a socket the
    /// URI named (`?socket=`) is kept as it is.
    pub fn read_only(mut self) -> Self {
        let name = self
            .socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let daemons =
            name == "libvirt-sock" || (name.starts_with("virt") && name.ends_with("d-sock"));
        if daemons {
            self.socket.set_file_name(format!("{name}-ro"));
        }
        self
    }
}

/// libvirtd's socket, or the modular daemon's for `driver` where libvirtd's is absent.
fn default_socket(driver: &str, run_dir: &Path) -> PathBuf {
    let monolithic = run_dir.join("libvirt-sock");
    let modular = run_dir.join(format!("virt{driver}d-sock"));
    if !monolithic.exists() && modular.exists() {
        modular
    } else {
        monolithic
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn uris_become_a_socket_and_a_name() {
        let t = Target::from_uri("qemu:///system").unwrap();
        assert!(
            t.socket.starts_with("/run/libvirt/"),
            "{}",
            t.socket.display()
        );
        assert_eq!(t.name, "qemu:///system");
        let t = Target::from_uri("test+unix:///tmp/node.xml?socket=/tmp/s").unwrap();
        assert_eq!(t.socket, PathBuf::from("/tmp/s"));
        assert_eq!(t.name, "test:///tmp/node.xml");
        assert_eq!(
            Target::from_uri("test:///default").unwrap().name,
            "test:///default"
        );
    }

    #[test]
    fn read_only_connections_go_to_the_daemons_read_only_socket() {
        let t = Target::from_uri("qemu:///system").unwrap().read_only();
        assert!(
            t.socket.to_string_lossy().ends_with("-sock-ro"),
            "{}",
            t.socket.display()
        );
        assert_eq!(t.name, "qemu:///system");
        let named = Target::from_uri("test:///default?socket=/tmp/s").unwrap();
        assert_eq!(named.clone().read_only(), named);
    }

    #[test]
    fn remote_and_malformed_uris_are_refused_with_the_reason() {
        for (uri, reason) in [
            ("qemu+ssh://host/system", "only local connections (unix)"),
            ("qemu://host/system", "no host name"),
            ("nonsense", "no scheme"),
            ("+unix:///system", "no driver"),
            ("qemu:///system\0", "NUL"),
        ] {
            let err = Target::from_uri(uri).unwrap_err();
            assert!(matches!(err, Error::Uri { .. }), "{uri}: {err:?}");
            assert!(err.to_string().contains(reason), "{uri}: {err}");
            assert!(
                err.to_string().contains("qemu:///system"),
                "says what to use"
            );
        }
    }

    #[test]
    fn the_modular_daemon_serves_where_libvirtd_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::from_uri_in("qemu:///system", dir.path()).unwrap();
        assert_eq!(
            t.socket,
            dir.path().join("libvirt-sock"),
            "neither: libvirtd's"
        );
        std::fs::write(dir.path().join("virtqemud-sock"), "").unwrap();
        let t = Target::from_uri_in("qemu:///system", dir.path()).unwrap();
        assert_eq!(t.socket, dir.path().join("virtqemud-sock"));
        std::fs::write(dir.path().join("libvirt-sock"), "").unwrap();
        let t = Target::from_uri_in("qemu:///system", dir.path()).unwrap();
        assert_eq!(
            t.socket,
            dir.path().join("libvirt-sock"),
            "both: libvirtd's"
        );
    }
}
