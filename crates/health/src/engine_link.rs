//! The engine's link (`hvnode-vdsm`), as oVirt's `nodectl check` has its vdsm
//! section: the service runs, the engine's host deploy left its certificates (a
//! node no engine enrolled yet only warns), the host certificate is valid, the
//! node has its unique id, and the service serves.

use std::path::Path;

use vdsm::status::{Managed, Status as LinkStatus};

use crate::{Group, Item, Status, group, item, warn_unless, with_status};

/// The service's unit.
pub const UNIT: &str = "hvnode-vdsm.service";

/// Where the engine's host deploy leaves the certificates (`hvnode-vdsm
/// --pki-dir`'s default).
pub const PKI_DIR: &str = "/etc/pki/vdsm";

/// The node's unique id for the engine (vdsm's).
pub const VDSM_ID: &str = "/etc/vdsm/vdsm.id";

/// The group's name in the report.
pub const GROUP: &str = "vdsm";

/// The checks about the engine's enrolment of the node (its certificates),
/// which only the engine's Enroll Certificate mends: a trial boot of an update
/// does not fail on them (the layer before has the same certificates).
pub const ENROLMENT_CHECKS: [&str; 2] = ["Certificates", "Certificate validity"];

/// Whether `check` of group `group` is about the engine's enrolment.
pub fn is_enrolment(group: &str, check: &str) -> bool {
    group == GROUP && ENROLMENT_CHECKS.contains(&check)
}

/// A host certificate that expires within this many days is a warning: time
/// enough to enrol it again before the engine loses the node.
pub const CERT_WARN_DAYS: u64 = 30;

/// How a file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Present,
    Missing,
    /// It could not be looked at (a folder this user may not search: the
    /// host key's folder is the vdsm user's), with why.
    Unknown(String),
}

/// What the vdsm group looks at; [`VdsmFacts::gather`] reads it from the
/// running system.
#[derive(Debug, Clone)]
pub struct VdsmFacts {
    /// [`UNIT`]'s ActiveState (empty: systemd does not know it).
    pub active_state: String,
    /// The deploy's files under [`PKI_DIR`] (`vdsm::pki`'s names: key,
    /// certificate, CA) and how each was found.
    pub pki: Vec<(&'static str, Found)>,
    /// The host certificate's end of validity (seconds since the epoch), or
    /// why it could not be read; `None` when there is no certificate.
    pub cert_not_after: Option<Result<i64, String>>,
    /// The first line of [`VDSM_ID`]; `None` when there is no file; or why it
    /// could not be read.
    pub vdsm_id: Result<Option<String>, String>,
    /// The service's status file (`vdsm::status::STATUS_PATH`); `None` when
    /// there is none; or why it could not be read.
    pub status: Result<Option<LinkStatus>, String>,
    /// When the facts were read (seconds since the epoch).
    pub now: u64,
}

impl VdsmFacts {
    /// Reads the running system.
    pub fn gather() -> VdsmFacts {
        VdsmFacts::read(
            Path::new("/"),
            crate::host::active_state(UNIT),
            hostinfo::now_unix(),
        )
    }

    /// Reads the files under `root`; `active_state` is systemd's answer for
    /// [`UNIT`].
    pub fn read(root: &Path, active_state: String, now: u64) -> VdsmFacts {
        let under = |p: &str| root.join(p.trim_start_matches('/'));
        let pki_dir = under(PKI_DIR);
        let pki = [vdsm::pki::KEY, vdsm::pki::CERT, vdsm::pki::CA]
            .into_iter()
            .map(|name| (name, found(&pki_dir.join(name))))
            .collect();
        let cert = pki_dir.join(vdsm::pki::CERT);
        let cert_not_after = match std::fs::read(&cert) {
            Ok(pem) => Some(not_after(&pem)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
        };
        let vdsm_id = match std::fs::read_to_string(under(VDSM_ID)) {
            Ok(t) => Ok(Some(
                t.lines().next().unwrap_or_default().trim().to_string(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        VdsmFacts {
            active_state,
            pki,
            cert_not_after,
            vdsm_id,
            status: LinkStatus::read(&under(vdsm::status::STATUS_PATH))
                .map_err(|e| format!("{e:#}")),
            now,
        }
    }

    /// Whether the engine's host deploy left every certificate file (those
    /// that could not be looked at are taken as there).
    fn enrolled(&self) -> bool {
        self.pki.iter().all(|(_, f)| *f != Found::Missing)
    }

    /// Whether it left none of them.
    fn never_enrolled(&self) -> bool {
        self.pki.iter().all(|(_, f)| *f == Found::Missing)
    }
}

fn found(path: &Path) -> Found {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Found::Present,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Missing,
        Err(e) => Found::Unknown(e.to_string()),
    }
}

/// The end of validity of the first certificate of a PEM file.
pub fn not_after(pem: &[u8]) -> Result<i64, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("no PEM certificate in it: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

fn utc(secs: i64) -> String {
    format!("{} UTC", hostinfo::units::UtcTime::from_unix(secs))
}

const ENROL: &str = "enrol the host's certificate again (in the engine: the host in \
                     maintenance, then Installation → Enroll Certificate)";

/// The vdsm group.
pub fn group_of(f: &VdsmFacts) -> Group {
    let mut checks = vec![
        item(
            UNIT,
            f.active_state == "active",
            if f.active_state.is_empty() {
                "unknown to systemd"
            } else {
                &f.active_state
            },
        ),
        certificates(f),
    ];
    checks.extend(validity(f));
    checks.push(vdsm_id(f));
    checks.push(serving(f));
    group(GROUP, checks)
}

fn certificates(f: &VdsmFacts) -> Item {
    let names = |want: fn(&Found) -> bool| {
        f.pki
            .iter()
            .filter(|(_, found)| want(found))
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if f.never_enrolled() {
        return warn_unless(
            "Certificates",
            false,
            format!(
                "not yet enrolled by an engine: the engine's host deploy puts {} in \
                 {PKI_DIR}",
                names(|_| true)
            ),
        );
    }
    if !f.enrolled() {
        return item(
            "Certificates",
            false,
            format!(
                "{} missing from {PKI_DIR} (there: {}): the engine cannot connect; {ENROL}",
                names(|f| *f == Found::Missing),
                names(|f| *f != Found::Missing)
            ),
        );
    }
    let unknown: Vec<String> = f
        .pki
        .iter()
        .filter_map(|(n, found)| match found {
            Found::Unknown(e) => Some(format!("{n}: {e}")),
            _ => None,
        })
        .collect();
    item(
        "Certificates",
        true,
        if unknown.is_empty() {
            format!("{} in {PKI_DIR}", names(|_| true))
        } else {
            format!(
                "in {PKI_DIR} (not looked at: {}; root may)",
                unknown.join(", ")
            )
        },
    )
}

/// The host certificate's validity, when there is one.
fn validity(f: &VdsmFacts) -> Option<Item> {
    const NAME: &str = "Certificate validity";
    let cert = format!("{PKI_DIR}/{}", vdsm::pki::CERT);
    let item = match f.cert_not_after.as_ref()? {
        Err(e) => item(NAME, false, format!("{cert} cannot be read: {e}; {ENROL}")),
        Ok(end) => {
            let now = i64::try_from(f.now).unwrap_or(i64::MAX);
            let days_left = end.saturating_sub(now) / 86_400;
            if *end <= now {
                item(
                    NAME,
                    false,
                    format!(
                        "{cert} expired on {}: the engine cannot connect; {ENROL}",
                        utc(*end)
                    ),
                )
            } else if days_left < CERT_WARN_DAYS as i64 {
                warn_unless(
                    NAME,
                    false,
                    format!(
                        "{cert} expires on {}, in {days_left} days: {ENROL}",
                        utc(*end)
                    ),
                )
            } else {
                item(NAME, true, format!("valid until {}", utc(*end)))
            }
        }
    };
    Some(item)
}

fn vdsm_id(f: &VdsmFacts) -> Item {
    const NAME: &str = "vdsm.id";
    match &f.vdsm_id {
        Ok(Some(id)) if !id.is_empty() => item(NAME, true, format!("{VDSM_ID}: {id}")),
        Ok(Some(_)) => warn_unless(
            NAME,
            false,
            format!("{VDSM_ID} is empty: the engine knows the node by its DMI UUID"),
        ),
        Ok(None) => warn_unless(
            NAME,
            false,
            format!(
                "{VDSM_ID} is missing: the node's registration writes it (nodectl register, \
                 or the console's Registration page)"
            ),
        ),
        Err(e) => item(NAME, false, format!("{VDSM_ID} cannot be read: {e}")),
    }
}

/// Whether the service serves, from its status file.
fn serving(f: &VdsmFacts) -> Item {
    const NAME: &str = "Serving";
    let status = match &f.status {
        Err(e) => return item(NAME, false, e.clone()),
        Ok(None) => {
            return warn_unless(
                NAME,
                false,
                format!(
                    "hvnode-vdsm has written no status ({}){}",
                    vdsm::status::STATUS_PATH,
                    if f.active_state == "active" {
                        ""
                    } else {
                        ": it is not running"
                    }
                ),
            );
        }
        Ok(Some(s)) => s,
    };
    let managed = status.summary(f.now);
    let line = managed.describe();
    match managed {
        Managed::NotServing { .. } if f.never_enrolled() => {
            with_status(NAME, Status::Warning, line)
        }
        Managed::NotServing { .. } => item(
            NAME,
            false,
            format!(
                "{line}, though the certificates are there: journalctl -u hvnode-vdsm \
                 says why"
            ),
        ),
        _ => item(NAME, true, line),
    }
}

#[cfg(test)]
#[path = "engine_link_tests.rs"]
pub(crate) mod tests;
