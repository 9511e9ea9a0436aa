//! The trial boot's verdict, `nodectl trial` (run at every boot by
//! `hvnode-trial.service`, after `multi-user.target`).
//!
//! An update arms a trial: grub's `next_entry` and `trial_entry` name the
//! new layer, the default (`saved_entry`) stays. grub boots `next_entry`
//! once and clears it, adding [`layers::boot::TRIAL_ARGS`] to the kernel's
//! command line. Then, on the boot that follows:
//!
//! - the layer on trial is running: the health checks are run until they
//!   pass or their time is up. Passed: the layer becomes the default
//!   ([`layers::boot::bless`]). Failed: the verdict is recorded, the trial
//!   ended, and the caller reboots (the unit's `FailureAction=reboot`)
//!   into the default;
//! - another layer is running: the trial boot never reached its verdict
//!   (a panic, the initramfs's emergency shell, a hang past the unit's job
//!   timeout, or a power cut), so it is recorded as failed and ended;
//! - the trial is still to come (`next_entry` still names it), or there is
//!   none: nothing is done.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use layers::LayerName;
use layers::boot::{self, TRIAL_KEY};
use layers::history::{History, TrialRecord};
use layers::status::layer_from_cmdline;

/// What this boot is, for the trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootKind {
    /// No layer is on trial.
    Normal,
    /// A trial is armed and not booted yet.
    Pending(LayerName),
    /// This boot is the trial of the layer.
    Trial(LayerName),
    /// The layer's trial boot happened and this boot runs another layer:
    /// the trial stopped before its verdict.
    Abandoned {
        layer: LayerName,
        running: Option<LayerName>,
    },
}

/// Reads this boot's kind from the kernel command line and grub's
/// environment.
pub fn classify(cmdline: &str, grubenv: &[(String, String)]) -> BootKind {
    let env = |k: &str| boot::env_value(grubenv, k);
    let Some(trial) = env(TRIAL_KEY).and_then(|t| t.parse::<LayerName>().ok()) else {
        return BootKind::Normal;
    };
    if env("next_entry").as_deref() == Some(&trial.to_string()) {
        return BootKind::Pending(trial);
    }
    let running = layer_from_cmdline(cmdline);
    if running.as_ref() == Some(&trial) {
        BootKind::Trial(trial)
    } else {
        BootKind::Abandoned {
            layer: trial,
            running,
        }
    }
}

/// How long the checks of a trial boot may take to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// From the first check to the verdict.
    pub timeout: Duration,
    /// Between two rounds of checks.
    pub interval: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            timeout: Duration::from_secs(crate::config::DEFAULT_TRIAL_CHECK_SECS),
            interval: Duration::from_secs(5),
        }
    }
}

/// What `nodectl trial` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing was on trial on this boot.
    NoTrial(BootKind),
    /// The layer passed and is the default now.
    Passed(TrialRecord),
    /// The layer failed: recorded, the trial ended; the caller reboots.
    Failed(TrialRecord),
    /// An earlier trial boot stopped before its verdict: recorded as failed.
    Abandoned(TrialRecord),
}

/// The health checks of a trial boot: each round answers what is wrong,
/// nothing when the node is healthy.
pub trait Checks {
    fn problems(&mut self) -> Vec<String>;
    /// Waits between two rounds (tests do not).
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Judges this boot (see the module's text) on the boot partition `boot`,
/// recording in `history`; `now` is the time stamp of the record.
pub fn judge(
    boot: &Path,
    history: &History,
    cmdline: &str,
    checks: &mut dyn Checks,
    patience: Patience,
    now: &str,
) -> Result<Verdict> {
    let env = boot::read_env(boot).context("reading grub's environment for the trial")?;
    let kind = classify(cmdline, &env);
    let record = |layer: &LayerName, passed: bool, reason: String| TrialRecord {
        layer: layer.to_string(),
        passed,
        reason,
        at: now.to_string(),
    };
    let default =
        boot::env_value(&env, "saved_entry").unwrap_or_else(|| "grub's first entry".into());
    match kind {
        BootKind::Trial(layer) => {
            let problems = wait_for_health(checks, patience);
            if problems.is_empty() {
                boot::bless(boot, &layer)
                    .with_context(|| format!("making {layer} the default after its trial"))?;
                let r = record(
                    &layer,
                    true,
                    "the health checks passed; it is the default now".into(),
                );
                history.record_trial(r.clone())?;
                Ok(Verdict::Passed(r))
            } else {
                let r = record(
                    &layer,
                    false,
                    format!(
                        "after {} s: {}; the node goes back to {default}",
                        patience.timeout.as_secs(),
                        problems.join("; ")
                    ),
                );
                // The verdict first: should ending the trial fail, the next
                // boot still finds it and does not record a second reason.
                history.record_trial(r.clone())?;
                boot::end_trial(boot)
                    .with_context(|| format!("ending the failed trial of {layer}"))?;
                Ok(Verdict::Failed(r))
            }
        }
        BootKind::Abandoned { layer, running } => {
            let running = running.map_or_else(|| "another system".to_string(), |l| l.to_string());
            let r = record(
                &layer,
                false,
                format!(
                    "its trial boot stopped before the health checks (a kernel panic, the \
                     initramfs's emergency shell, a hang past the trial's time limit, or a \
                     power cut); the node came back to {running}"
                ),
            );
            if !trial_failure_recorded(history, &layer) {
                history.record_trial(r.clone())?;
            }
            boot::end_trial(boot).with_context(|| format!("ending the trial of {layer}"))?;
            Ok(Verdict::Abandoned(r))
        }
        other => Ok(Verdict::NoTrial(other)),
    }
}

/// Whether the latest record of `layer` is a failure that its trial boot
/// wrote itself (it then ended the trial, unless that write was cut).
fn trial_failure_recorded(history: &History, layer: &LayerName) -> bool {
    history
        .trials()
        .ok()
        .and_then(|t| t.into_iter().rev().find(|r| r.layer == layer.to_string()))
        .is_some_and(|r| !r.passed && r.reason.contains("the node goes back to"))
}

/// Runs rounds of checks until one finds nothing or the time is up; the
/// last round's problems.
fn wait_for_health(checks: &mut dyn Checks, patience: Patience) -> Vec<String> {
    let rounds = patience
        .timeout
        .as_millis()
        .checked_div(patience.interval.as_millis())
        .unwrap_or(0)
        + 1;
    let mut problems = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            checks.sleep(patience.interval);
        }
        problems = checks.problems();
        if problems.is_empty() {
            break;
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "hvnode-1.0-0.20261125.0+1";
    const NEW: &str = "hvnode-1.1-0.20261201.0+1";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn cmdline(layer: &str) -> String {
        format!("BOOT_IMAGE=/{layer}/vmlinuz root=/dev/hvnode/{layer} ro hvnode.trial=1")
    }

    #[test]
    fn each_kind_of_boot_is_told_apart() {
        assert_eq!(
            classify(&cmdline(OLD), &env(&[("saved_entry", OLD)])),
            BootKind::Normal
        );
        let armed = env(&[("saved_entry", OLD), ("next_entry", NEW), (TRIAL_KEY, NEW)]);
        assert_eq!(
            classify(&cmdline(OLD), &armed),
            BootKind::Pending(NEW.parse().unwrap())
        );
        // grub cleared next_entry when it booted the trial.
        let booted = env(&[("saved_entry", OLD), ("next_entry", ""), (TRIAL_KEY, NEW)]);
        assert_eq!(
            classify(&cmdline(NEW), &booted),
            BootKind::Trial(NEW.parse().unwrap())
        );
        assert_eq!(
            classify(&cmdline(OLD), &booted),
            BootKind::Abandoned {
                layer: NEW.parse().unwrap(),
                running: Some(OLD.parse().unwrap())
            }
        );
    }

    struct Script {
        rounds: Vec<Vec<String>>,
        asked: usize,
        slept: Duration,
    }

    impl Checks for Script {
        fn problems(&mut self) -> Vec<String> {
            let i = self.asked.min(self.rounds.len() - 1);
            self.asked += 1;
            self.rounds[i].clone()
        }
        fn sleep(&mut self, d: Duration) {
            self.slept += d;
        }
    }

    fn script(rounds: &[&[&str]]) -> Script {
        Script {
            rounds: rounds
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
            asked: 0,
            slept: Duration::ZERO,
        }
    }

    fn node(pairs: &[(&str, &str)]) -> (tempfile::TempDir, History) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("boot/grub")).unwrap();
        let block = boot::env_block(&env(pairs)).unwrap();
        std::fs::write(d.path().join("boot/grub/grubenv"), block).unwrap();
        let h = History::at(&d.path().join("state"));
        (d, h)
    }

    const PATIENCE: Patience = Patience {
        timeout: Duration::from_secs(60),
        interval: Duration::from_secs(5),
    };

    #[test]
    fn a_healthy_trial_becomes_the_default() {
        let (d, h) = node(&[("saved_entry", OLD), (TRIAL_KEY, NEW)]);
        let b = d.path().join("boot");
        // Services still starting at first, then healthy.
        let mut s = script(&[&["hvnode-agent: not answering on port 9090"], &[]]);
        let v = judge(&b, &h, &cmdline(NEW), &mut s, PATIENCE, "t").unwrap();
        assert!(matches!(v, Verdict::Passed(_)), "{v:?}");
        assert_eq!(s.asked, 2);
        assert_eq!(boot::read_env(&b).unwrap(), env(&[("saved_entry", NEW)]));
        assert!(h.failed_layers().unwrap().is_empty());
        assert!(h.trials().unwrap()[0].passed);
    }

    #[test]
    fn an_unhealthy_trial_is_recorded_and_ended_with_the_default_kept() {
        let (d, h) = node(&[("saved_entry", OLD), (TRIAL_KEY, NEW)]);
        let b = d.path().join("boot");
        let mut s = script(&[&["hvnode-agent.service: failed"]]);
        let v = judge(&b, &h, &cmdline(NEW), &mut s, PATIENCE, "t").unwrap();
        let Verdict::Failed(r) = v else {
            panic!("{v:?}")
        };
        assert!(
            r.reason.contains("hvnode-agent.service: failed") && r.reason.contains(OLD),
            "{}",
            r.reason
        );
        // Every round was tried, a pause between each.
        assert_eq!(s.asked, 13);
        assert_eq!(s.slept, Duration::from_secs(60));
        assert_eq!(boot::read_env(&b).unwrap(), env(&[("saved_entry", OLD)]));
        assert_eq!(h.failed_layers().unwrap().keys().collect::<Vec<_>>(), [NEW]);
        // The fallback boot then finds no trial: nothing more is recorded.
        let v = judge(&b, &h, &cmdline(OLD), &mut s, PATIENCE, "t").unwrap();
        assert_eq!(v, Verdict::NoTrial(BootKind::Normal));
        assert_eq!(h.trials().unwrap().len(), 1);
    }

    #[test]
    fn a_trial_that_never_reached_its_checks_is_failed_by_the_next_boot() {
        let (d, h) = node(&[("saved_entry", OLD), (TRIAL_KEY, NEW)]);
        let b = d.path().join("boot");
        let mut s = script(&[&[]]);
        let v = judge(&b, &h, &cmdline(OLD), &mut s, PATIENCE, "t").unwrap();
        let Verdict::Abandoned(r) = v else {
            panic!("{v:?}")
        };
        assert!(
            r.reason.contains("stopped before the health checks"),
            "{r:?}"
        );
        assert_eq!(s.asked, 0, "no checks on the fallback boot");
        assert_eq!(boot::read_env(&b).unwrap(), env(&[("saved_entry", OLD)]));
        assert_eq!(h.failed_layers().unwrap()[NEW].reason, r.reason);
    }

    #[test]
    fn a_pending_trial_is_left_alone() {
        let pairs = [("saved_entry", OLD), ("next_entry", NEW), (TRIAL_KEY, NEW)];
        let (d, h) = node(&pairs);
        let b = d.path().join("boot");
        let v = judge(&b, &h, &cmdline(OLD), &mut script(&[&[]]), PATIENCE, "t").unwrap();
        assert_eq!(v, Verdict::NoTrial(BootKind::Pending(NEW.parse().unwrap())));
        assert_eq!(boot::read_env(&b).unwrap(), env(&pairs));
        assert!(h.trials().unwrap().is_empty());
    }
}
