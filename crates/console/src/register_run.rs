//! The Registration page's two steps, run where they may write: by `nodectl register
//! --json`, which the privileged helper starts for an administrator's session, or in
//! this process when no helper holds the session (a console run by hand, as root).
//!
//! Registering writes as root: the engine's CA (`/etc/pki/ovirt-engine`), the node's
//! unique id (`/etc/vdsm`), the engine's key in root's `authorized_keys` and the
//! registration lock (`/run/hvnode`). Through the helper, the web process needs none
//! of those rights: it hands the helper a typed step ([`RegisterStep`]); the helper
//! checks the step ([`check`]) and the session's right to administer the node, and
//! runs nodectl ([`spawn`]); the web process reads the one JSON document nodectl
//! prints ([`read_answer`]), a `RegistrationError` when it failed, and shows it as it
//! would show the error itself.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use helper::{Failure, FailureKind, Held, RegisterStep};
use registration::{
    CaFingerprints, EngineAddr, ErrorKind, ErrorReport, Fingerprint, RegisterOptions, Sysroot,
    Trust,
};
use serde_json::Value;

/// How long each request to the engine may take (a registration makes four).
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The most nodectl's answer may hold (it is a few hundred bytes).
const MAX_ANSWER: u64 = 256 * 1024;

/// The engine's CA as fetched for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub ca: CaFingerprints,
    /// The CA confirmed at the last registration with this engine, when it differs.
    pub previous: Option<CaFingerprints>,
}

/// What a registration did, as the page tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub unique_id: String,
    /// Fingerprint of the engine's SSH key.
    pub engine_ssh_key: String,
    /// Whether the key was added (false: it was there already).
    pub key_added: bool,
    /// The `authorized_keys` file.
    pub key_path: String,
}

/// Why a step did not succeed: nodectl's (or the registration's) own failure, or the
/// helper's refusal to run it (not allowed, a bad field, the helper unreachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    Report(ErrorReport),
    Helper(Failure),
}

impl From<ErrorReport> for StepError {
    fn from(r: ErrorReport) -> Self {
        Self::Report(r)
    }
}

impl From<&registration::Error> for StepError {
    fn from(e: &registration::Error) -> Self {
        Self::Report(e.into())
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Report(r) => r.fmt(f),
            Self::Helper(h) => h.fmt(f),
        }
    }
}

/// Checks a step before nodectl sees it: an engine name or address and a port as
/// [`EngineAddr`] takes them, fingerprints of a form [`Fingerprint`] reads, node
/// names and addresses of at most 253 characters without control characters.
pub fn check(step: &RegisterStep) -> Result<(), Failure> {
    let invalid = |what: String| Failure::new(FailureKind::Invalid, what);
    let (engine, port, fingerprint, names) = match step {
        RegisterStep::FetchCa {
            engine,
            port,
            fingerprint,
        } => (engine, *port, fingerprint.as_ref(), vec![]),
        RegisterStep::Register {
            engine,
            port,
            fingerprint,
            node_name,
            node_address,
        } => (
            engine,
            *port,
            Some(fingerprint),
            vec![("node name", node_name), ("node address", node_address)],
        ),
    };
    EngineAddr::new(engine, port).map_err(|e| invalid(e.to_string()))?;
    if let Some(fp) = fingerprint {
        fp.parse::<Fingerprint>()
            .map_err(|e| invalid(e.to_string()))?;
    }
    for (what, value) in names {
        if let Some(v) = value {
            if v.is_empty() || v.len() > 253 || v.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "{v:?} is not a {what}: give at most 253 characters, without control \
                     characters"
                )));
            }
        }
    }
    Ok(())
}

/// nodectl's arguments for `step` (each option with its value in one argument, so
/// that no value is read as an option).
pub fn args(sysroot: &Path, step: &RegisterStep) -> Vec<String> {
    let mut args = vec![
        "register".to_string(),
        "--json".to_string(),
        format!("--sysroot={}", sysroot.display()),
        format!("--timeout={}", ENGINE_TIMEOUT.as_secs()),
    ];
    match step {
        RegisterStep::FetchCa {
            engine,
            port,
            fingerprint,
        } => {
            args.push("--fetch-ca".into());
            args.push(format!("--engine-fqdn={engine}"));
            args.push(format!("--engine-port={port}"));
            if let Some(fp) = fingerprint {
                args.push(format!("--fingerprint={fp}"));
            }
        }
        RegisterStep::Register {
            engine,
            port,
            fingerprint,
            node_name,
            node_address,
        } => {
            // The page showed the registration it replaces; confirming is the yes.
            args.push("--yes".into());
            args.push(format!("--engine-fqdn={engine}"));
            args.push(format!("--engine-port={port}"));
            args.push(format!("--fingerprint={fingerprint}"));
            if let Some(n) = node_name {
                args.push(format!("--node-name={n}"));
            }
            if let Some(a) = node_address {
                args.push(format!("--node-address={a}"));
            }
        }
    }
    args
}

/// The command that runs `step`: in a transient unit of its own under systemd
/// (outside the helper's sandbox, which may not reach the network or write those
/// files), nodectl itself otherwise. Its standard output is the answer; its error
/// output goes where the helper's does (the journal).
pub fn command(nodectl: &Path, sysroot: &Path, step: &RegisterStep) -> Command {
    let mut cmd = if crate::node_update::under_systemd() {
        let mut c = crate::node_update::transient_unit("hvnode registration from the web console");
        c.arg(nodectl);
        c
    } else {
        Command::new(nodectl)
    };
    cmd.args(args(sysroot, step))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Checks `step` and starts nodectl for it: the read end of its standard output and
/// the process. What the privileged helper does for an administrator's session.
pub fn spawn(
    nodectl: &Path,
    sysroot: &Path,
    step: &RegisterStep,
) -> Result<(OwnedFd, std::process::Child), Failure> {
    check(step)?;
    crate::node_update::spawn_piped(command(nodectl, sysroot, step))
}

/// Reads nodectl's answer from `output` to its end: the body of its JSON document,
/// or the failure it reported.
pub fn read_answer(output: OwnedFd) -> Result<Value, ErrorReport> {
    let mut text = String::new();
    let read = std::fs::File::from(output)
        .take(MAX_ANSWER)
        .read_to_string(&mut text);
    let local = |message: String| ErrorReport {
        error_kind: ErrorKind::Local,
        message,
    };
    read.map_err(|e| local(format!("reading nodectl register's answer: {e}")))?;
    let value: Value = serde_json::from_str(text.trim()).map_err(|e| {
        local(format!(
            "nodectl register gave no answer the console can read ({e}); its messages are in \
             the journal: journalctl -u hvnode-helper"
        ))
    })?;
    if value.get("kind").and_then(Value::as_str) == Some("RegistrationError") {
        let report: Result<ErrorReport, _> = serde_json::from_value(strip_envelope(value));
        return Err(report.unwrap_or_else(|e| local(format!("nodectl's error unreadable: {e}"))));
    }
    Ok(value)
}

/// The body of nodectl's envelope (`apiVersion` and `kind` removed).
fn strip_envelope(mut value: Value) -> Value {
    if let Some(o) = value.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    value
}

fn through_helper(held: &Held, step: RegisterStep) -> Result<Value, StepError> {
    let (output, _pid) = held.register(step).map_err(StepError::Helper)?;
    Ok(read_answer(output)?)
}

fn unexpected(what: &str, value: &Value) -> ErrorReport {
    ErrorReport {
        error_kind: ErrorKind::Local,
        message: format!("nodectl register answered without {what}: {value}"),
    }
}

/// Fetches `engine`'s CA for confirmation (checked against `typed` when given):
/// through the helper when it holds the session (`held`), in this process otherwise.
pub fn fetch_ca(
    held: Option<&Held>,
    sysroot: &Sysroot,
    engine: &EngineAddr,
    typed: Option<&Fingerprint>,
) -> Result<Fetched, StepError> {
    let Some(held) = held else {
        return registration::fetch_ca_to_confirm(sysroot, engine, typed, ENGINE_TIMEOUT)
            .map(|c| Fetched {
                ca: c.ca.fingerprints,
                previous: c.previous,
            })
            .map_err(|e| StepError::from(&e));
    };
    let step = RegisterStep::FetchCa {
        engine: engine.host.clone(),
        port: engine.port,
        fingerprint: typed.map(|f| f.to_string()),
    };
    let value = through_helper(held, step)?;
    let field = |name: &str| -> Result<Option<CaFingerprints>, StepError> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| unexpected(name, &value).into()),
        }
    };
    let ca = field("ca")?.ok_or_else(|| unexpected("the CA", &value))?;
    Ok(Fetched {
        ca,
        previous: field("previous")?,
    })
}

/// Registers with `options.engine`, trusting its CA only with `fingerprint`: through
/// the helper when it holds the session (`held`), in this process otherwise.
pub fn register(
    held: Option<&Held>,
    sysroot: &Sysroot,
    options: RegisterOptions,
    fingerprint: Fingerprint,
) -> Result<Registered, StepError> {
    let Some(held) = held else {
        return registration::register(sysroot, &options, Trust::Fingerprint(fingerprint))
            .map(|o| Registered {
                unique_id: o.unique_id.id,
                engine_ssh_key: o.engine_ssh_key,
                key_added: o.authorized_key.added,
                key_path: o.authorized_key.path.display().to_string(),
            })
            .map_err(|e| StepError::from(&e));
    };
    let step = RegisterStep::Register {
        engine: options.engine.host.clone(),
        port: options.engine.port,
        fingerprint: fingerprint.to_string(),
        node_name: options.node_name,
        node_address: options.node_address,
    };
    let value = through_helper(held, step)?;
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| unexpected(pointer, &value))
    };
    Ok(Registered {
        unique_id: text("/uniqueId/id")?,
        engine_ssh_key: text("/engineSshKey")?,
        key_added: value
            .pointer("/authorizedKey/added")
            .and_then(Value::as_bool)
            .ok_or_else(|| unexpected("/authorizedKey/added", &value))?,
        key_path: text("/authorizedKey/path")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register_step(name: Option<&str>) -> RegisterStep {
        RegisterStep::Register {
            engine: "engine.example.com".into(),
            port: 8443,
            fingerprint: format!("SHA256:{}", "0f".repeat(32)),
            node_name: name.map(String::from),
            node_address: None,
        }
    }

    #[test]
    fn steps_are_checked_before_nodectl_sees_them() {
        check(&register_step(Some("node-1"))).unwrap();
        check(&RegisterStep::FetchCa {
            engine: "2001:db8::1".into(),
            port: 443,
            fingerprint: None,
        })
        .unwrap();
        for bad in [
            RegisterStep::FetchCa {
                engine: "--sysroot=/tmp".into(),
                port: 443,
                fingerprint: None,
            },
            RegisterStep::FetchCa {
                engine: "engine".into(),
                port: 0,
                fingerprint: None,
            },
            RegisterStep::FetchCa {
                engine: "engine".into(),
                port: 443,
                fingerprint: Some("not-a-fingerprint".into()),
            },
            register_step(Some("a\nb")),
            register_step(Some("")),
            register_step(Some(&"n".repeat(254))),
        ] {
            let e = check(&bad).unwrap_err();
            assert_eq!(e.kind, FailureKind::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn every_value_travels_inside_its_option() {
        let args = args(Path::new("/"), &register_step(Some("-rf")));
        assert_eq!(
            args[..4],
            ["register", "--json", "--sysroot=/", "--timeout=20"]
        );
        assert!(args.contains(&"--yes".to_string()));
        assert!(args.contains(&"--engine-port=8443".to_string()));
        assert!(args.contains(&"--node-name=-rf".to_string()), "{args:?}");
        assert!(args.iter().skip(1).all(|a| a.starts_with("--")), "{args:?}");
    }

    #[test]
    fn answers_and_reported_failures_are_read_back() {
        let answer = |text: &str| {
            let (r, w) = rustix::pipe::pipe().unwrap();
            std::fs::File::from(w).write_all(text.as_bytes()).unwrap();
            read_answer(r)
        };
        use std::io::Write;
        let ok = answer("{\"apiVersion\":\"hvnode.io/v1\",\"kind\":\"EngineCa\",\"ca\":{}}\n");
        assert_eq!(ok.unwrap()["kind"], "EngineCa");
        let e = answer(
            "{\"apiVersion\":\"hvnode.io/v1\",\"kind\":\"RegistrationError\",\
             \"errorKind\":\"unreachable\",\"message\":\"cannot reach engine\"}",
        )
        .unwrap_err();
        assert_eq!(e.error_kind, ErrorKind::Unreachable);
        assert_eq!(e.message, "cannot reach engine");
        let e = answer("").unwrap_err();
        assert_eq!(e.error_kind, ErrorKind::Local);
        assert!(e.message.contains("journalctl"), "{}", e.message);
    }
}
