//! `nodectl register`: register with an engine, or show the registration state and
//! what the engine's link (hvnode-vdsm) says of the engine.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use registration::{
    CaFingerprints, Confirmation, EngineAddr, ErrorKind, ErrorReport, Fingerprint, RegisterOptions,
    RegisterOutcome, RegistrationState, StateFile, Sysroot, Trust, ZeroTouchEnd,
};
use serde::Serialize;
use vdsm::status::{Managed, Status as LinkStatus};

use crate::output::{print_json, utc};

/// Options of `nodectl register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Show the registration state, and whether the engine is connected to the
    /// engine's link (hvnode-vdsm), instead of registering.
    #[arg(long, conflicts_with_all = ["engine_fqdn", "fingerprint", "zero_touch"])]
    status: bool,

    /// Register with the engine named by the kernel arguments hvnode.engine= and
    /// hvnode.engine_fingerprint=, or by /etc/hvnode/registration.conf (written from the
    /// kickstart), retrying with backoff until it succeeds (hvnode-register.service).
    #[arg(long, conflicts_with_all = ["engine_fqdn", "fingerprint", "node_name", "node_address"])]
    zero_touch: bool,

    /// Only fetch the engine's CA, without trusting it, and show its fingerprints
    /// (with --fingerprint: check it has that one); the node is then
    /// awaiting-confirmation until a registration with --fingerprint confirms it. The
    /// web console's first step.
    #[arg(long, conflicts_with_all = ["status", "zero_touch", "node_name", "node_address", "yes"])]
    fetch_ca: bool,

    /// The engine's fully qualified name (or address), as its certificate names it.
    #[arg(
        long,
        value_name = "HOST",
        required_unless_present_any = ["status", "zero_touch"]
    )]
    engine_fqdn: Option<String>,

    /// The engine's HTTPS port.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    engine_port: u16,

    /// The engine CA's fingerprint, confirmed in advance: SHA256: followed by hex or
    /// base64, or SHA-1 as colon-separated hex (as vdsm-tool prints it).
    #[arg(long, value_name = "FP")]
    fingerprint: Option<String>,

    /// The name the engine shows for this node (default: its address).
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,

    /// The FQDN or IP address the engine uses to reach this node (default: the
    /// engine's reverse DNS lookup of the request's source).
    #[arg(long, value_name = "ADDR")]
    node_address: Option<String>,

    /// The user the engine logs in as over SSH to deploy the node.
    #[arg(long, value_name = "USER", default_value = "root")]
    ssh_user: String,

    /// The node's SSH port.
    #[arg(long, value_name = "N", default_value_t = 22)]
    ssh_port: u16,

    /// The node's VDSM port.
    #[arg(long, value_name = "N", default_value_t = 54321)]
    vds_port: u16,

    /// Seconds each request to the engine may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,

    /// Answer yes to prompts other than the CA fingerprint (e.g. "register again?").
    #[arg(long, short = 'y')]
    yes: bool,

    /// The root of the node's file system; every file read or written is under it.
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,

    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `nodectl register`. With `--json` a failure is printed on stdout too, as a
/// `RegistrationError` (its kind says what to do next), so that whoever ran nodectl
/// for someone else (the console, through the privileged helper) can show it as
/// nodectl would.
pub fn run(args: &RegisterArgs) -> Result<()> {
    let result = run_args(args);
    if let (true, Err(e)) = (args.json, &result) {
        let report = e
            .chain()
            .find_map(|c| c.downcast_ref::<registration::Error>())
            .map(ErrorReport::from)
            .unwrap_or_else(|| ErrorReport {
                error_kind: ErrorKind::Local,
                message: format!("{e:#}"),
            });
        print_json("RegistrationError", report)?;
    }
    result
}

fn run_args(args: &RegisterArgs) -> Result<()> {
    let sysroot = Sysroot::new(&args.sysroot);
    if args.status {
        return status(&sysroot, args.json);
    }
    if args.zero_touch {
        return zero_touch(&sysroot, args);
    }
    let host = args.engine_fqdn.as_deref().unwrap_or_default();
    if host.matches(':').count() == 1 {
        bail!("--engine-fqdn takes a name or address only; give the port with --engine-port");
    }
    let engine = EngineAddr::new(host, args.engine_port)?;
    let fingerprint: Option<Fingerprint> = args
        .fingerprint
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("reading --fingerprint")?;
    if args.fetch_ca {
        return fetch_ca(&sysroot, &engine, fingerprint.as_ref(), args);
    }

    let current = current_state(&sysroot)?;
    let interactive = std::io::stdin().is_terminal();
    if let Some(registration) = current.status.registration() {
        if !args.yes {
            let question = format!(
                "This node is already {} (engine {}). Register again?",
                current.status.name(),
                registration.engine
            );
            if !interactive {
                bail!(
                    "this node is already {} with engine {}; pass --yes to register again",
                    current.status.name(),
                    registration.engine
                );
            }
            if !ask_yes_no(&question)? {
                bail!("not registering again");
            }
        }
    }

    let same_engine_confirmed =
        current.status.engine() == Some(&engine) && current.status.confirmed_ca().is_some();
    let mut ask = |c: &Confirmation<'_>| confirm_interactively(c).unwrap_or(false);
    let trust = match fingerprint {
        Some(fp) => Trust::Fingerprint(fp),
        None if interactive => Trust::Ask(&mut ask),
        None if same_engine_confirmed => Trust::Confirmed,
        None => bail!(
            "the engine's CA fingerprint must be confirmed and there is no terminal to ask \
             on: pass --fingerprint with the fingerprint of the engine's CA (on the engine: \
             openssl x509 -in /etc/pki/ovirt-engine/ca.pem -noout -fingerprint -sha256)"
        ),
    };

    let mut options = RegisterOptions::new(engine.clone());
    options.node_name = args.node_name.clone();
    options.node_address = args.node_address.clone();
    options.ssh_user = args.ssh_user.clone();
    options.ssh_port = args.ssh_port;
    options.vds_port = args.vds_port;
    options.timeout = Duration::from_secs(args.timeout.max(1));

    eprintln!("Registering with engine {engine}…");
    let outcome = registration::register(&sysroot, &options, trust)
        .with_context(|| format!("registering with engine {engine}"))?;
    if args.json {
        print_json("RegistrationResult", &outcome)
    } else {
        print_outcome(&outcome);
        Ok(())
    }
}

/// `--fetch-ca`: the engine's CA, fetched without trusting it, for someone to compare.
fn fetch_ca(
    sysroot: &Sysroot,
    engine: &EngineAddr,
    expected: Option<&Fingerprint>,
    args: &RegisterArgs,
) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let fetched = registration::fetch_ca_to_confirm(sysroot, engine, expected, timeout)
        .with_context(|| format!("fetching the CA of engine {engine}"))?;
    if args.json {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct EngineCa<'a> {
            engine: &'a EngineAddr,
            ca: &'a CaFingerprints,
            sha256_base64: String,
            previous: Option<&'a CaFingerprints>,
        }
        return print_json(
            "EngineCa",
            EngineCa {
                engine,
                ca: &fetched.ca.fingerprints,
                sha256_base64: fetched.ca.fingerprints.sha256_base64(),
                previous: fetched.previous.as_ref(),
            },
        );
    }
    let ca = &fetched.ca.fingerprints;
    println!("The engine {engine} presents this CA certificate (not trusted yet):");
    println!("  SHA-256: {}", ca.sha256);
    println!("           {}", ca.sha256_base64());
    println!("  SHA-1:   {}", ca.sha1);
    if let Some(previous) = &fetched.previous {
        println!(
            "WARNING: this is not the CA confirmed at the last registration with this \
             engine ({}).",
            previous.sha256
        );
    }
    println!(
        "Compare it with the engine's own, then register: nodectl register --engine-fqdn \
         {} --engine-port {} --fingerprint {}",
        engine.host, engine.port, ca.sha256
    );
    Ok(())
}

/// The persisted state, with `registered` promoted (and saved) as `managed` once the
/// engine's host certificate is there.
fn current_state(sysroot: &Sysroot) -> Result<StateFile> {
    Ok(registration::current_state(sysroot)?)
}

/// `--zero-touch`: register with the configured engine, waiting between attempts.
fn zero_touch(sysroot: &Sysroot, args: &RegisterArgs) -> Result<()> {
    let Some(config) =
        registration::zero_touch_config(sysroot).context("reading the zero-touch settings")?
    else {
        eprintln!(
            "No engine configured (kernel argument hvnode.engine= or {}); nothing to do.",
            registration::ZERO_TOUCH_CONFIG_PATH
        );
        return status(sysroot, args.json);
    };
    let source = serde_json::to_string(&config.source).unwrap_or_default();
    eprintln!(
        "Zero-touch registration with engine {} (from {})…",
        config.engine,
        source.trim_matches('"')
    );
    let mut wait = |delay: Duration, error: &registration::Error| {
        eprintln!(
            "Attempt failed: {error}. Next attempt in {} s.",
            delay.as_secs()
        );
        std::thread::sleep(delay);
        true
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let end = registration::register_until_done(sysroot, &config, timeout, &mut wait)
        .with_context(|| format!("registering with engine {}", config.engine))?;
    if let ZeroTouchEnd::AwaitingConfirmation(_) = end {
        eprintln!(
            "No CA fingerprint configured: the engine's CA waits for an administrator to \
             confirm it (nodectl register on a terminal, or the console)."
        );
    }
    status(sysroot, args.json)
}

fn status(sysroot: &Sysroot, json: bool) -> Result<()> {
    let file = current_state(sysroot)?;
    // What the engine's link says of the engine (hvnode-vdsm's status file).
    let link = LinkStatus::read(&sysroot.path(vdsm::status::STATUS_PATH));
    let now = registration::now_unix();
    if json {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Status<'a> {
            updated_at: u64,
            status: &'a RegistrationState,
            vdsm: vdsm::status::Report,
        }
        return print_json(
            "Registration",
            Status {
                updated_at: file.updated_at,
                status: &file.status,
                vdsm: vdsm::status::Report::new(link, now),
            },
        );
    }
    print_state(&file.status);
    print_link(&link, now);
    Ok(())
}

/// The engine's link: whether the engine is connected, when it last asked, the
/// cluster levels offered.
fn print_link(link: &Result<Option<LinkStatus>>, now: u64) {
    println!("managed:  {}", Managed::of(link, now).describe());
    let Ok(Some(s)) = link else {
        return;
    };
    let last = s
        .last_request
        .map(|t| format!(", the last at {}", utc(t)))
        .unwrap_or_default();
    println!(
        "requests: {} since hvnode-vdsm started ({}){last}",
        s.requests,
        utc(s.started)
    );
    if !s.cluster_levels.is_empty() {
        let used = match &s.engine_cluster_level {
            Some(l) => format!("the engine uses {l}"),
            None => "which the engine uses is not known".to_string(),
        };
        println!("levels:   {} offered ({used})", s.cluster_levels.join(", "));
    }
}

fn print_state(state: &RegistrationState) {
    println!("state:    {}", state.name());
    println!("summary:  {}", state.summary());
    if let Some(engine) = state.engine() {
        println!("engine:   {engine}");
    }
    if let Some(ca) = state.confirmed_ca() {
        println!("CA:       {}", ca.sha256);
        println!("          SHA-1 {}", ca.sha1);
    }
    match state {
        RegistrationState::Registered(r)
        | RegistrationState::Managed {
            registration: r, ..
        } => {
            println!("uniqueId: {}", r.unique_id);
            println!("sshUser:  {} (port {})", r.ssh_user, r.ssh_port);
            if let Some(fp) = &r.ssh_key_fingerprint {
                println!("host key: {fp}");
            }
            println!("since:    {}", utc(r.registered_at));
            if let RegistrationState::Managed { managed_since, .. } = state {
                println!("deployed: {}", utc(*managed_since));
            }
        }
        RegistrationState::Failed {
            attempts,
            next_retry_at,
            error_kind,
            ..
        } => {
            println!("attempts: {attempts}");
            println!(
                "error:    {}",
                serde_json::to_string(error_kind).unwrap_or_default()
            );
            println!("retry at: {}", utc(*next_retry_at));
        }
        RegistrationState::TrustFetched { ca, .. }
        | RegistrationState::AwaitingConfirmation { ca, .. } => {
            println!("fetched:  {}", ca.sha256);
            println!("          SHA-1 {}", ca.sha1);
        }
        RegistrationState::Unregistered => {}
    }
}

fn print_outcome(outcome: &RegisterOutcome) {
    let Some(r) = outcome.state.registration() else {
        return;
    };
    match outcome.state {
        RegistrationState::Managed { .. } => {
            println!("Registered: managed by engine {}.", r.engine)
        }
        _ => println!(
            "Registered with engine {}; it lists this node as Pending Approval.",
            r.engine
        ),
    }
    println!(
        "  uniqueId:       {} (from {})",
        r.unique_id,
        serde_json::to_string(&outcome.unique_id.source)
            .unwrap_or_default()
            .trim_matches('"')
    );
    println!(
        "  engine CA:      {} (confirmed by {})",
        r.ca.sha256, outcome.ca_confirmed_by
    );
    println!(
        "  engine SSH key: {} {} {}",
        outcome.engine_ssh_key,
        if outcome.authorized_key.added {
            "added to"
        } else {
            "already in"
        },
        outcome.authorized_key.path.display()
    );
    match &r.ssh_key_fingerprint {
        Some(fp) => println!("  host key:       {fp}"),
        None => println!("  host key:       none yet (the engine will trust it on first use)"),
    }
    if matches!(outcome.state, RegistrationState::Registered(_)) {
        println!("Next: approve the host in the engine; it then deploys the node over SSH.");
    }
}

/// Shows the CA fingerprints on stderr and asks on the terminal.
fn confirm_interactively(c: &Confirmation<'_>) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "The engine {} presented this CA certificate:",
        c.engine
    )?;
    writeln!(err, "  SHA-256: {}", c.ca.sha256)?;
    writeln!(err, "           {}", c.ca.sha256_base64())?;
    writeln!(err, "  SHA-1:   {}", c.ca.sha1)?;
    if let Some(previous) = c.previous {
        writeln!(
            err,
            "WARNING: this is not the CA confirmed at the last registration with this \
             engine ({}).",
            previous.sha256
        )?;
    }
    writeln!(
        err,
        "Compare with the engine's own: openssl x509 -in /etc/pki/ovirt-engine/ca.pem \
         -noout -fingerprint -sha256"
    )?;
    drop(err);
    ask_yes_no("Trust this CA and register?")
}

fn ask_yes_no(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
