//! Commands F40 knows that hvnode does not act on: their syntax is still
//! checked (as pykickstart does), then they are kept, with a warning, so
//! that rendering gives them back. Removed commands are errors.

use serde::Serialize;

use super::value::parse_int;
use crate::options::{self, Arity, CommandSpec, Finding, NArgs, OptSpec, PosSpec};

/// A command hvnode ignores, kept word for word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredCommand {
    pub name: String,
    pub words: Vec<String>,
    /// What makes two of these the same thing (`repo` name, `raid` device,
    /// `btrfs` mount point), for duplicate detection; derived from `words`.
    #[serde(skip)]
    pub identity: Option<(&'static str, String)>,
}

/// The syntax of an ignored command, compactly: options are `--flag`,
/// `--opt=` (a value), `--opt=#` (a whole number), `--opt=!` (required
/// value), `--opt=?` (value optional); `|` joins aliases. Positionals are
/// `<one>`, `[optional]`, `<many...>`; `*` accepts any words and options.
struct Ignored {
    names: &'static [&'static str],
    conflicts: &'static [&'static str],
    positionals: &'static [&'static str],
    options: &'static [&'static str],
}

const IGNORED: &[Ignored] = &[
    Ignored {
        names: &["authselect", "realm"],
        conflicts: &[],
        positionals: &["*"],
        options: &[],
    },
    Ignored {
        names: &["btrfs"],
        conflicts: &[],
        positionals: &["<mntpoint>", "<partitions...>"],
        options: &[
            "--noformat",
            "--useexisting",
            "--label=",
            "--data=",
            "--metadata=",
            "--subvol",
            "--parent=",
            "--name=",
            "--mkfsoptions=",
        ],
    },
    Ignored {
        names: &["cdrom", "hmc", "mediacheck", "skipx"],
        conflicts: &[],
        positionals: &[],
        options: &[],
    },
    Ignored {
        names: &["driverdisk"],
        conflicts: &[],
        positionals: &["<partition...>"],
        options: &["--source=", "--biospart="],
    },
    Ignored {
        names: &["fcoe"],
        conflicts: &[],
        positionals: &[],
        options: &["--nic=!", "--dcb", "--autovlan"],
    },
    Ignored {
        names: &["harddrive"],
        conflicts: &[],
        positionals: &[],
        options: &["--dir=!", "--partition=!"],
    },
    Ignored {
        names: &["iscsi"],
        conflicts: &[],
        positionals: &[],
        options: &[
            "--target=",
            "--ipaddr=!",
            "--port=#",
            "--user=",
            "--password=",
            "--reverse-user=",
            "--reverse-password=",
            "--iface=",
        ],
    },
    Ignored {
        names: &["iscsiname"],
        conflicts: &[],
        positionals: &["<iqn>"],
        options: &[],
    },
    Ignored {
        names: &["logging"],
        conflicts: &[],
        positionals: &[],
        options: &["--host=", "--port="],
    },
    Ignored {
        names: &["module"],
        conflicts: &[],
        positionals: &[],
        options: &["--name=!", "--stream=", "--disable"],
    },
    Ignored {
        names: &["mount"],
        conflicts: &[
            "autopart",
            "part",
            "partition",
            "raid",
            "volgroup",
            "logvol",
            "reqpart",
        ],
        positionals: &["<device>", "<mntpoint>"],
        options: &["--reformat=?", "--mkfsoptions=", "--mountoptions="],
    },
    Ignored {
        names: &["nfs"],
        conflicts: &[],
        positionals: &[],
        options: &["--server=!", "--dir=!", "--opts="],
    },
    Ignored {
        names: &["ostreecontainer"],
        conflicts: &["ostreesetup"],
        positionals: &[],
        options: &[
            "--stateroot=",
            "--url=!",
            "--transport=",
            "--remote=",
            "--no-signature-verification",
        ],
    },
    Ignored {
        names: &["ostreesetup"],
        conflicts: &["ostreecontainer"],
        positionals: &[],
        options: &["--osname=!", "--remote=", "--url=!", "--ref=!", "--nogpg"],
    },
    Ignored {
        names: &["raid"],
        conflicts: &["autopart", "mount"],
        positionals: &["<mntpoint>", "<partitions...>"],
        options: &[
            "--device=!",
            "--fstype=",
            "--level=",
            "--noformat",
            "--spares=#",
            "--useexisting",
            "--fsoptions=",
            "--fsprofile=",
            "--encrypted",
            "--passphrase=",
            "--escrowcert=",
            "--backuppassphrase",
            "--label=",
            "--cipher=",
            "--mkfsoptions=",
            "--chunksize=#",
            "--luks-version=",
            "--pbkdf=",
            "--pbkdf-memory=#",
            "--pbkdf-time=#",
            "--pbkdf-iterations=#",
        ],
    },
    Ignored {
        names: &["repo"],
        conflicts: &[],
        positionals: &[],
        options: &[
            "--name=!",
            "--baseurl=",
            "--mirrorlist=",
            "--cost=#",
            "--excludepkgs=",
            "--includepkgs=",
            "--proxy=",
            "--noverifyssl",
            "--install",
            "--metalink=",
            "--sslcacert=",
            "--sslclientcert=",
            "--sslclientkey=",
        ],
    },
    Ignored {
        names: &["rescue"],
        conflicts: &[],
        positionals: &[],
        options: &["--nomount", "--romount"],
    },
    Ignored {
        names: &["snapshot"],
        conflicts: &[],
        positionals: &["<origin>"],
        options: &["--name=!", "--when=!"],
    },
    Ignored {
        names: &["sshpw"],
        conflicts: &[],
        positionals: &["<password...>"],
        options: &[
            "--username=!",
            "--iscrypted",
            "--plaintext",
            "--lock",
            "--sshkey",
        ],
    },
    Ignored {
        names: &["updates"],
        conflicts: &[],
        positionals: &["[url]"],
        options: &[],
    },
    Ignored {
        names: &["url"],
        conflicts: &[],
        positionals: &[],
        options: &[
            "--proxy=",
            "--noverifyssl",
            "--mirrorlist=",
            "--url=",
            "--metalink=",
            "--sslcacert=",
            "--sslclientcert=",
            "--sslclientkey=",
        ],
    },
    Ignored {
        names: &["vnc"],
        conflicts: &[],
        positionals: &[],
        options: &["--password=", "--host=", "--port="],
    },
    Ignored {
        names: &["xconfig"],
        conflicts: &[],
        positionals: &[],
        options: &["--defaultdesktop=", "--startxonboot"],
    },
    Ignored {
        names: &["zfcp"],
        conflicts: &[],
        positionals: &[],
        options: &["--devnum=!", "--wwpn=", "--fcplun="],
    },
    Ignored {
        names: &["zipl"],
        conflicts: &[],
        positionals: &[],
        options: &["--secure-boot", "--force-secure-boot", "--no-secure-boot"],
    },
];

/// Commands F40 has removed: using one is an error.
pub const REMOVED: &[&str] = &[
    "auth",
    "authconfig",
    "autostep",
    "device",
    "deviceprobe",
    "dmraid",
    "install",
    "method",
    "multipath",
];

/// Commands F40 deprecates: pykickstart's validator rejects them.
pub const DEPRECATED: &[&str] = &["nvdimm"];

/// Every name of an ignored command.
pub fn ignored_names() -> impl Iterator<Item = &'static str> {
    IGNORED.iter().flat_map(|i| i.names.iter().copied())
}

/// For the ignored command written as `name`: that name and the commands
/// it conflicts with.
pub fn ignored_group(name: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    IGNORED.iter().find_map(|i| {
        i.names
            .iter()
            .find(|n| **n == name)
            .map(|n| (std::slice::from_ref(n), i.conflicts))
    })
}

/// Splits `--a|--b=#` into its names (leaked once per process: the table
/// is static) and its kind.
fn option_spec(text: &'static str) -> (OptSpec, bool) {
    let (names, kind) = match text.split_once('=') {
        Some((n, k)) => (n, Some(k)),
        None => (text, None),
    };
    let names: Vec<&'static str> = names.split('|').collect();
    let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    let spec = match kind {
        None => OptSpec::new(names, Arity::Flag),
        Some("?") => OptSpec::new(names, Arity::MaybeValue),
        Some("!") => OptSpec::new(names, Arity::Value).required(),
        Some(_) => OptSpec::new(names, Arity::Value),
    };
    (spec, kind == Some("#"))
}

struct Compiled {
    spec: CommandSpec,
    ints: Vec<bool>,
    free_form: bool,
}

fn compile(i: &Ignored) -> Compiled {
    let (options, ints): (Vec<_>, Vec<_>) = i.options.iter().map(|o| option_spec(o)).unzip();
    let positionals = i
        .positionals
        .iter()
        .filter(|p| **p != "*")
        .map(|p| {
            let name = p.trim_matches(|c| "<>[].".contains(c));
            let nargs = if p.ends_with("...>") {
                NArgs::Many
            } else if p.starts_with('[') {
                NArgs::Optional
            } else {
                NArgs::One
            };
            PosSpec {
                name: Box::leak(name.to_string().into_boxed_str()),
                nargs,
            }
        })
        .collect();
    Compiled {
        spec: CommandSpec {
            positionals,
            options,
        },
        ints,
        free_form: i.positionals.contains(&"*"),
    }
}

fn compiled() -> &'static [(&'static Ignored, Compiled)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static Ignored, Compiled)>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| IGNORED.iter().map(|i| (i, compile(i))).collect())
}

/// Parses an ignored command; `None` when `name` is not one.
pub fn parse_ignored(
    name: &str,
    words: &[String],
    findings: &mut Vec<Finding>,
) -> Option<IgnoredCommand> {
    let (_, c) = compiled().iter().find(|(i, _)| i.names.contains(&name))?;
    let mut identity = None;
    if !c.free_form {
        let (parsed, f) = options::parse(name, &c.spec, words);
        let syntax_ok = !f.iter().any(|f| f.severity == crate::diag::Severity::Error);
        findings.extend(f);
        if syntax_ok {
            let view = View {
                spec: &c.spec,
                parsed: &parsed,
            };
            identity = semantics(name, &view, findings);
        }
        for (index, o) in c.spec.options.iter().enumerate() {
            if !c.ints[index] {
                continue;
            }
            for v in parsed.given(index).unwrap_or_default().iter().flatten() {
                if parse_int(v).is_none() {
                    findings.push(Finding::error(format!(
                        "{name}: {}: invalid number {v:?} (a whole number is needed)",
                        o.name()
                    )));
                }
            }
        }
    }
    findings.push(Finding::warning(format!(
        "{name}: hvnode installs from its own image and ignores this command"
    )));
    Some(IgnoredCommand {
        name: name.to_string(),
        words: words.to_vec(),
        identity,
    })
}

/// Read access to an ignored command's parsed options by name.
struct View<'a> {
    spec: &'a CommandSpec,
    parsed: &'a options::Parsed,
}

impl View<'_> {
    fn opt(&self, name: &str) -> Option<&str> {
        let i = self
            .spec
            .options
            .iter()
            .position(|o| o.names.contains(&name))?;
        let given = self.parsed.given(i)?;
        Some(given.last().and_then(|v| v.as_deref()).unwrap_or_default())
    }
    fn has(&self, name: &str) -> bool {
        self.opt(name).is_some()
    }
    fn pos(&self, i: usize) -> &[String] {
        self.parsed
            .positionals
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// The checks pykickstart makes on commands hvnode otherwise ignores;
/// returns the command's identity for duplicate detection.
fn semantics(name: &str, v: &View<'_>, f: &mut Vec<Finding>) -> Option<(&'static str, String)> {
    let mut err = |m: String| f.push(Finding::error(format!("{name}: {m}")));
    match name {
        "url" => {
            let given: Vec<&str> = ["--mirrorlist", "--url", "--metalink"]
                .into_iter()
                .filter(|o| v.has(o))
                .collect();
            match given.len() {
                0 => err("give one of --url, --mirrorlist or --metalink".into()),
                1 => {}
                _ => err(format!("only one of {} may be given", given.join(", "))),
            }
            None
        }
        "repo" => {
            let given: Vec<&str> = ["--mirrorlist", "--baseurl", "--metalink"]
                .into_iter()
                .filter(|o| v.has(o))
                .collect();
            if given.len() > 1 {
                err(format!("only one of {} may be given", given.join(", ")));
            }
            v.opt("--name").map(|n| ("repo", n.to_string()))
        }
        "mount" => {
            let mntpoint = v.pos(1).first().map(String::as_str).unwrap_or_default();
            if !mntpoint.starts_with('/') && !mntpoint.eq_ignore_ascii_case("none") {
                err(format!(
                    "invalid mount point {mntpoint:?} (an absolute path or none)"
                ));
            }
            if v.has("--mkfsoptions") && !v.has("--reformat") {
                err("--mkfsoptions needs --reformat".into());
            }
            None
        }
        "raid" => {
            let preexisting = v.has("--useexisting") || v.has("--noformat");
            let members = v.pos(1);
            let device = v.opt("--device").unwrap_or_default();
            let device = device.strip_prefix("md").unwrap_or(device).to_string();
            if let Some(level) = v.opt("--level") {
                let l = level.to_ascii_uppercase();
                let l = l.strip_prefix("RAID").unwrap_or(&l);
                if !["0", "1", "4", "5", "6", "10"].contains(&l) {
                    err(format!("invalid RAID level {level:?}"));
                }
            }
            if members.is_empty() && !preexisting {
                err("give the member partitions (raid.ID)".into());
            } else if !members.is_empty() && preexisting {
                err("members cannot be given for an existing RAID device".into());
            }
            if !preexisting && !v.has("--level") {
                err("a new RAID device needs --level".into());
            }
            if preexisting && device.is_empty() {
                err("an existing RAID device needs --device".into());
            }
            Some(("RAID device", device))
        }
        "btrfs" => {
            let mntpoint = v.pos(0).first().cloned().unwrap_or_default();
            let devices = v.pos(1);
            let subvol = v.has("--subvol");
            if devices.is_empty() && !subvol {
                err("give the member partitions, or --subvol".into());
            }
            if subvol && devices.is_empty() {
                err("--subvol needs its parent volume".into());
            }
            if subvol && v.opt("--name").unwrap_or_default().is_empty() {
                err("--subvol needs --name".into());
            }
            for o in ["--data", "--metadata"] {
                if let Some(level) = v.opt(o) {
                    let l = level.to_ascii_lowercase();
                    if !["raid0", "0", "raid1", "1", "raid10", "10", "single"].contains(&l.as_str())
                    {
                        err(format!("{o}: invalid btrfs level {level:?}"));
                    }
                }
            }
            if (v.has("--noformat") || v.has("--useexisting")) && v.has("--mkfsoptions") {
                err("--mkfsoptions has no effect with --noformat or --useexisting".into());
            }
            Some(("btrfs volume with mount point", mntpoint))
        }
        _ => None,
    }
}
