//! What the calls return: domains as the protocol names them, and their facts.

use std::fmt;

/// A domain (virtual machine) as the protocol names it (`remote_nonnull_domain`):
/// the handle every domain call takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain {
    /// The domain's name, unique on the host.
    pub name: String,
    /// The domain's UUID, 16 raw bytes; [`Domain::uuid_string`] gives the usual text.
    pub uuid: [u8; 16],
    /// The running domain's id, or -1 when it is not running.
    pub id: i32,
}

impl Domain {
    /// The UUID in its usual text form (`6f5c1e2a-0001-4002-8003-000000000042`).
    pub fn uuid_string(&self) -> String {
        let mut s = String::with_capacity(36);
        for (i, b) in self.uuid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// A domain's state (`virDomainState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainState {
    /// `VIR_DOMAIN_NOSTATE` (0).
    NoState,
    /// `VIR_DOMAIN_RUNNING` (1).
    Running,
    /// `VIR_DOMAIN_BLOCKED` (2): blocked on a resource.
    Blocked,
    /// `VIR_DOMAIN_PAUSED` (3): paused by the administrator or libvirt.
    Paused,
    /// `VIR_DOMAIN_SHUTDOWN` (4): being shut down.
    ShuttingDown,
    /// `VIR_DOMAIN_SHUTOFF` (5).
    Shutoff,
    /// `VIR_DOMAIN_CRASHED` (6).
    Crashed,
    /// `VIR_DOMAIN_PMSUSPENDED` (7): suspended by guest power management.
    PmSuspended,
    /// A state newer than this client knows.
    Other(u32),
}

impl DomainState {
    /// The state of libvirt's number.
    pub fn from_number(n: u32) -> Self {
        match n {
            0 => Self::NoState,
            1 => Self::Running,
            2 => Self::Blocked,
            3 => Self::Paused,
            4 => Self::ShuttingDown,
            5 => Self::Shutoff,
            6 => Self::Crashed,
            7 => Self::PmSuspended,
            other => Self::Other(other),
        }
    }

    /// libvirt's number of the state.
    pub fn number(self) -> u32 {
        match self {
            Self::NoState => 0,
            Self::Running => 1,
            Self::Blocked => 2,
            Self::Paused => 3,
            Self::ShuttingDown => 4,
            Self::Shutoff => 5,
            Self::Crashed => 6,
            Self::PmSuspended => 7,
            Self::Other(n) => n,
        }
    }
}

impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::NoState => "no state",
            Self::Running => "running",
            Self::Blocked => "blocked",
            Self::Paused => "paused",
            Self::ShuttingDown => "shutting down",
            Self::Shutoff => "shut off",
            Self::Crashed => "crashed",
            Self::PmSuspended => "suspended",
            Self::Other(_) => "unknown",
        };
        f.write_str(s)
    }
}

/// A domain's facts (`virDomainInfo`, from `virDomainGetInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainInfo {
    pub state: DomainState,
    /// The most memory the domain may have, in KiB.
    pub max_memory_kib: u64,
    /// The memory the domain has now, in KiB.
    pub memory_kib: u64,
    /// The number of virtual CPUs.
    pub vcpus: u32,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
}

/// Authentication schemes libvirtd may ask for (`remote_auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `REMOTE_AUTH_NONE` (0).
    None,
    /// `REMOTE_AUTH_SASL` (1): not spoken by this client.
    Sasl,
    /// `REMOTE_AUTH_POLKIT` (2).
    Polkit,
    /// A scheme newer than this client knows.
    Other(u32),
}

impl AuthType {
    pub(crate) fn from_number(n: u32) -> Self {
        match n {
            0 => Self::None,
            1 => Self::Sasl,
            2 => Self::Polkit,
            other => Self::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_in_their_usual_form() {
        let dom = Domain {
            name: "vm1".into(),
            uuid: *b"\x6f\x5c\x1e\x2a\x00\x01\x40\x02\x80\x03\x00\x00\x00\x00\x00\x42",
            id: 3,
        };
        assert_eq!(dom.uuid_string(), "6f5c1e2a-0001-4002-8003-000000000042");
    }

    #[test]
    fn states_round_trip_their_numbers() {
        for n in 0..10 {
            assert_eq!(DomainState::from_number(n).number(), n);
        }
        assert_eq!(DomainState::from_number(5).to_string(), "shut off");
        assert_eq!(DomainState::from_number(99).to_string(), "unknown");
    }
}
