//! The steps of an update, in order, and the failpoints that make one of
//! them fail on purpose (to prove that a failure there leaves the node as
//! it was).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The environment variable naming the step that must fail
/// (`HVNODE_UPDATE_FAILPOINT=etc-merge`), or at which the update stops dead
/// as if killed, taking nothing back (`etc-merge:crash`). Inert unless set.
pub const FAILPOINT_ENV: &str = "HVNODE_UPDATE_FAILPOINT";

/// One step of `nodectl update`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Check the signature and the manifest, extract the bundle into the
    /// store's scratch space.
    Verify,
    /// Mount the image read-only and read its identity and kernel.
    Open,
    /// Free space in the store and in `/boot`.
    Space,
    /// The new read-only base.
    Base,
    /// The new writable layer.
    Layer,
    /// The three-way `/etc` merge into the new layer.
    EtcMerge,
    /// Paths new in the image's `/var` added to the node's `/var`.
    Var,
    /// The new layer's `/etc` labelled by the new image's SELinux policy.
    Labels,
    /// The kernel and initramfs under `/boot/<layer>/`.
    Kernel,
    /// The new layer's boot entry in `grub.cfg`.
    BootEntry,
    /// grub's `next_entry`: the new layer is tried once.
    Trial,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 11] = [
        Step::Verify,
        Step::Open,
        Step::Space,
        Step::Base,
        Step::Layer,
        Step::EtcMerge,
        Step::Var,
        Step::Labels,
        Step::Kernel,
        Step::BootEntry,
        Step::Trial,
    ];

    /// The step's name in progress lines and failpoints.
    pub fn name(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::Open => "open",
            Step::Space => "space",
            Step::Base => "base",
            Step::Layer => "layer",
            Step::EtcMerge => "etc-merge",
            Step::Var => "var",
            Step::Labels => "labels",
            Step::Kernel => "kernel",
            Step::BootEntry => "boot-entry",
            Step::Trial => "trial",
        }
    }

    /// What the step does, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Verify => "checking and extracting the bundle",
            Step::Open => "opening the new image",
            Step::Space => "checking free space",
            Step::Base => "writing the new read-only base",
            Step::Layer => "making the new writable layer",
            Step::EtcMerge => "merging /etc",
            Step::Var => "adding the image's new /var paths",
            Step::Labels => "labelling the new /etc by the new SELinux policy",
            Step::Kernel => "installing the kernel and initramfs",
            Step::BootEntry => "adding the boot entry",
            Step::Trial => "arming the trial boot",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an update step (one of: {names})", names = step_names())]
pub struct UnknownStep(pub String);

fn step_names() -> String {
    Step::ALL.map(Step::name).join(", ")
}

impl FromStr for Step {
    type Err = UnknownStep;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|step| step.name() == s)
            .ok_or_else(|| UnknownStep(s.to_string()))
    }
}

/// The failure a failpoint injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failpoint {FAILPOINT_ENV}={step} reached: the step fails on purpose")]
pub struct Injected {
    pub step: Step,
    /// The update stops dead (as if killed) instead of failing.
    pub crash: bool,
}

/// Which step, if any, must fail once its work is done (so that its own
/// undo is exercised too), and whether it stops dead instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failpoint(pub Option<Step>, pub bool);

impl Failpoint {
    /// A failure at `step`.
    pub fn fail(step: Step) -> Failpoint {
        Failpoint(Some(step), false)
    }

    /// A stop at `step`, as if the process were killed there.
    pub fn crash(step: Step) -> Failpoint {
        Failpoint(Some(step), true)
    }

    /// From [`FAILPOINT_ENV`]; unset or empty is none, a name that is no
    /// step is an error (a typo must not pass for a test that ran).
    pub fn from_env() -> Result<Failpoint, UnknownStep> {
        match std::env::var(FAILPOINT_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let v = v.trim();
                match v.strip_suffix(":crash") {
                    Some(step) => Ok(Failpoint::crash(step.parse()?)),
                    None => Ok(Failpoint::fail(v.parse()?)),
                }
            }
            _ => Ok(Failpoint::default()),
        }
    }

    /// Fails when `step` is the failpoint.
    pub fn check(self, step: Step) -> Result<(), Injected> {
        match self.0 {
            Some(s) if s == step => Err(Injected {
                step,
                crash: self.1,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_typos_are_refused() {
        for s in Step::ALL {
            assert_eq!(s.name().parse::<Step>(), Ok(s));
        }
        let e = "etc_merge".parse::<Step>().unwrap_err();
        assert!(e.to_string().contains("etc-merge"), "{e}");
    }

    #[test]
    fn a_failpoint_fires_only_at_its_step() {
        let fp = Failpoint::fail(Step::Kernel);
        assert!(fp.check(Step::Base).is_ok());
        assert_eq!(
            fp.check(Step::Kernel),
            Err(Injected {
                step: Step::Kernel,
                crash: false
            })
        );
        assert!(Failpoint::default().check(Step::Kernel).is_ok());
        let crash = Failpoint::crash(Step::Kernel);
        assert!(crash.check(Step::Kernel).is_err_and(|i| i.crash));
    }
}
