//! Whether an account's sudo rules let it do anything as root: the policy behind the
//! console's administrative access ([`crate::admin`]).
//!
//! Being in an admin group (`sudo`, `wheel`) is not enough: sudoers can give a member
//! a few commands only (`%wheel ALL=(root) /usr/bin/systemctl restart foo`), and such a
//! member must not get, through the console, what sudo refuses them (registering the
//! node with an engine of their own puts that engine's key into root's
//! `authorized_keys`; a service action can start `debug-shell.service`). So sudo itself
//! is asked, as root, the question that decides it: may this user run a shell as root?
//! `sudo -n -l -U USER -u root -- /bin/sh` prints the shell's path and exits 0 when the
//! rules allow it, and exits 1 without a word when they do not. A root shell is every
//! command, so rules that list particular commands never allow it; `ALL` does. Rules
//! that allow `ALL` but a few exceptions (`ALL, !/bin/sh`, which sudoers(5) itself
//! calls ineffective) are refused too, on the safe side.

use std::ffi::OsString;
use std::fmt::Debug;
use std::process::Command;

use command::{CommandError, CommandExt};

/// The command sudo is asked about: a root shell is every command.
pub const PROBE: &str = "/bin/sh";

/// Whether an account may administer the node by its sudo policy. The console asks
/// [`Sudo`]; tests put in a stand-in whose answer they change.
pub trait AdminPolicy: Debug + Send + Sync {
    /// Whether `user` may run any command as root now. Blocking: the console calls it
    /// off the async runtime.
    fn allows(&self, user: &str) -> Result<bool, PolicyError>;
}

/// The policy could not be learned; nothing was decided (the console refuses
/// administrative access until it can ask again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// sudo is not installed.
    #[error(
        "asking sudo whether {user} may run any command as root: {source}; install sudo \
         (the hvnode image has it)"
    )]
    Missing { user: String, source: CommandError },
    /// sudo failed for another reason than a refusal (broken sudoers, no permission to
    /// switch to the sudoers owner).
    #[error(
        "asking sudo whether {user} may run any command as root: {source}; check the \
         sudoers files with `visudo -c` as root"
    )]
    Failed { user: String, source: CommandError },
    /// sudo allowed the probe but printed something other than the command's path.
    #[error(
        "asking sudo whether {user} may run any command as root: `{command}` printed \
         {printed:?}, not the path of {PROBE}; report this with sudo's version (`sudo -V`)"
    )]
    Unexpected {
        user: String,
        command: String,
        printed: String,
    },
    /// The privileged helper that asks sudo could not answer
    /// ([`crate::auth::remote`]).
    #[error("asking whether {user} may run any command as root: {message}")]
    Helper { user: String, message: String },
}

/// The host's sudo, run as root (the console's own user).
#[derive(Debug, Clone)]
pub struct Sudo {
    /// The program: `sudo`, found on `PATH`.
    pub program: OsString,
}

impl Default for Sudo {
    fn default() -> Self {
        Self {
            program: "sudo".into(),
        }
    }
}

impl Sudo {
    /// The command that asks sudo whether `user` may run [`PROBE`] as root: `-n` never
    /// prompts, `-l -U` lists another user's rules (root may), `-u root` names the
    /// target, and `--` ends the options so that nothing is taken for one.
    pub fn probe_command(&self, user: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-n", "-l", "-U", user, "-u", "root", "--", PROBE])
            .stdin_closed()
            .c_locale();
        cmd
    }
}

impl AdminPolicy for Sudo {
    fn allows(&self, user: &str) -> Result<bool, PolicyError> {
        // A name sudo would take for an option or a uid (`#0`) is no account's.
        if user.is_empty() || user.starts_with(['-', '#', '%', '+']) || user.contains('\0') {
            return Ok(false);
        }
        // Root needs no sudo: its rules (if any) do not bind it.
        if nix::unistd::User::from_name(user).is_ok_and(|u| u.is_some_and(|u| u.uid.is_root())) {
            return Ok(true);
        }
        let mut cmd = self.probe_command(user);
        let command = command::command_line(&cmd);
        decide(user, &command, cmd.run_capture())
    }
}

/// sudo's answer: allowed when it printed the probe's path (it may print the path it
/// resolved, `/usr/bin/sh` on a merged `/usr`), refused when it failed without a word
/// (sudo(8): "If a command is specified but not allowed by the policy, sudo will exit
/// with a status value of 1"); every other failure says something on stderr and is an
/// error, not a refusal.
pub fn decide(
    user: &str,
    command: &str,
    answer: Result<String, CommandError>,
) -> Result<bool, PolicyError> {
    match answer {
        Ok(printed) => {
            let first = printed.lines().next().unwrap_or("").trim();
            let shell = first.split_whitespace().next().unwrap_or("");
            if shell.starts_with('/') && shell.ends_with("/sh") {
                Ok(true)
            } else {
                Err(PolicyError::Unexpected {
                    user: user.to_string(),
                    command: command.to_string(),
                    printed: command::tail(printed.as_bytes()),
                })
            }
        }
        Err(e) if e.not_found => Err(PolicyError::Missing {
            user: user.to_string(),
            source: e,
        }),
        Err(e) if e.stderr.trim().is_empty() => Ok(false),
        Err(e) => Err(PolicyError::Failed {
            user: user.to_string(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(stderr: &str, not_found: bool) -> CommandError {
        CommandError {
            command_line: "sudo -n -l -U ops -u root -- /bin/sh".into(),
            what: "failed (exit status: 1)".into(),
            stderr: stderr.into(),
            not_found,
        }
    }

    #[test]
    fn sudos_answers_are_read_as_allowed_refused_or_an_error() {
        let cmd = "sudo -n -l -U ops -u root -- /bin/sh";
        for (answer, want) in [
            (Ok("/bin/sh\n".to_string()), Ok(true)),
            (Ok("/usr/bin/sh\n".to_string()), Ok(true)),
            (Err(failure("", false)), Ok(false)),
            (Err(failure("\n", false)), Ok(false)),
        ] {
            assert_eq!(decide("ops", cmd, answer.clone()), want, "{answer:?}");
        }
        let broken = decide(
            "ops",
            cmd,
            Err(failure(
                "sudo: parse error in /etc/sudoers near line 3\nsudo: no valid sudoers \
                 sources found, quitting",
                false,
            )),
        )
        .unwrap_err();
        assert!(matches!(broken, PolicyError::Failed { .. }), "{broken}");
        assert!(broken.to_string().contains("visudo -c"), "{broken}");
        assert!(broken.to_string().contains("parse error"), "{broken}");
        let missing = decide("ops", cmd, Err(failure("", true))).unwrap_err();
        assert!(matches!(missing, PolicyError::Missing { .. }), "{missing}");
        let odd = decide("ops", cmd, Ok("Matching Defaults entries\n".into())).unwrap_err();
        assert!(matches!(odd, PolicyError::Unexpected { .. }), "{odd}");
        assert!(odd.to_string().contains("sudo -V"), "{odd}");
    }

    #[test]
    fn the_probe_asks_about_a_root_shell_without_a_prompt() {
        let cmd = Sudo::default().probe_command("ops");
        assert_eq!(
            command::command_line(&cmd),
            "sudo -n -l -U ops -u root -- /bin/sh"
        );
    }

    #[test]
    fn names_sudo_would_read_otherwise_are_refused_without_asking() {
        let never = Sudo {
            program: "/nonexistent/sudo".into(),
        };
        for name in ["", "-u", "#0", "%wheel", "+netgroup", "a\0b"] {
            assert_eq!(never.allows(name), Ok(false), "{name:?}");
        }
        // Any other name is asked about: here sudo is missing, which is an error.
        assert!(matches!(
            never.allows("ops"),
            Err(PolicyError::Missing { .. })
        ));
    }
}
