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
    if !c.free_form {
        let (parsed, f) = options::parse(name, &c.spec, words);
        findings.extend(f);
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
    })
}
