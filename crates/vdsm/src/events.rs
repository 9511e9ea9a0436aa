//! Events on `jms.queue.events`, as vdsm sends them: a JSON-RPC notification (no
//! `id`) whose method is `|virt|VM_status|VMID`, whose params hold the VM's
//! statistics under its id and the `notify_time` they were taken at. The engine
//! subscribes to the queue and, while events come, polls the VMs' statistics less
//! often; an event is how it learns at once that a VM came up or went down.
//!
//! libvirt is read on its read-only socket, so the VMs' states are looked at every
//! [`WATCH_EVERY`] (a state per running domain, no XML) and a change is published to
//! every connection; [`Watcher`] is that comparison, apart from libvirt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::vms::Vms;

/// How often the VMs' states are looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Events kept for a connection that is slow to take them; an older one is dropped
/// for it (the engine's next poll of the statistics covers what it missed).
pub const BACKLOG: usize = 256;

/// One event, sent as a JSON-RPC notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

impl Event {
    /// `|virt|VM_status|VMID` with the VM's `stats` taken at `notify_time` (ms).
    pub fn vm_status(vm_id: &str, stats: Value, notify_time: u64) -> Self {
        let mut params = serde_json::Map::new();
        params.insert(vm_id.to_string(), stats);
        params.insert("notify_time".into(), json!(notify_time));
        Self {
            method: format!("|virt|VM_status|{vm_id}"),
            params: Value::Object(params),
        }
    }

    /// The notification as it goes on the wire.
    pub fn to_json(&self) -> Value {
        json!({"jsonrpc": "2.0", "method": self.method, "params": self.params})
    }
}

/// What changed between two looks at the running VMs (id → vdsm status).
#[derive(Debug, Default)]
pub struct Watcher {
    seen: Option<BTreeMap<String, &'static str>>,
}

/// A change [`Watcher::step`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Running with this status, new or changed since the last look.
    Status(String),
    /// No longer running.
    Gone(String),
}

impl Watcher {
    /// The changes since the last look; none at the first (the engine learns the
    /// VMs that run when it connects from its first poll, not from events).
    pub fn step(&mut self, now: BTreeMap<String, &'static str>) -> Vec<Change> {
        let Some(before) = self.seen.replace(now.clone()) else {
            return Vec::new();
        };
        let mut changes: Vec<Change> = now
            .iter()
            .filter(|(id, status)| before.get(*id) != Some(status))
            .map(|(id, _)| Change::Status(id.clone()))
            .collect();
        changes.extend(
            before
                .keys()
                .filter(|id| !now.contains_key(*id))
                .map(|id| Change::Gone(id.clone())),
        );
        changes
    }
}

/// The statistics of a VM that is no longer running, as vdsm reports a VM that went
/// Down: exit code 0 and the reason it can tell (libvirt's read-only view does not
/// say whether it was shut down, destroyed or crashed).
pub fn gone_stats(vm_id: &str) -> Value {
    json!({
        "vmId": vm_id,
        "status": "Down",
        "exitCode": 0,
        "exitReason": 0,
        "exitMessage": "The VM is no longer running on the host",
    })
}

/// Watches the VMs of `vms` every `every` on a thread of its own, publishing each
/// change; returns the channel connections subscribe to.
pub fn watch(vms: Arc<Vms>, every: Duration) -> broadcast::Sender<Event> {
    let (tx, _) = broadcast::channel(BACKLOG);
    let sender = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("hvnode-vdsm-events".into())
        .spawn(move || {
            let mut watcher = Watcher::default();
            loop {
                match vms.statuses() {
                    Ok(now) => {
                        let changes = watcher.step(now);
                        if !changes.is_empty() {
                            publish(&vms, &sender, &changes);
                        }
                    }
                    Err(e) => tracing::debug!("looking at the VMs for events: {}", e.message),
                }
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no thread to watch the VMs ({e}): no VM_status events");
    }
    tx
}

fn publish(vms: &Vms, sender: &broadcast::Sender<Event>, changes: &[Change]) {
    let notify_time = vms.clock_ms();
    let stats = vms.stats_by_id().unwrap_or_default();
    for change in changes {
        let (id, stats) = match change {
            Change::Status(id) => match stats.get(id) {
                Some(s) => (id, s.clone()),
                // Gone again between the two looks: the next look reports it.
                None => continue,
            },
            Change::Gone(id) => (id, gone_stats(id)),
        };
        tracing::info!(vm = %id, status = %stats["status"], "VM status event");
        // No receiver (no engine connected) is not an error.
        let _ = sender.send(Event::vm_status(id, stats, notify_time));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(vms: &[(&str, &'static str)]) -> BTreeMap<String, &'static str> {
        vms.iter().map(|(i, s)| (i.to_string(), *s)).collect()
    }

    #[test]
    fn a_change_of_status_is_an_event_and_the_first_look_is_not() {
        let mut w = Watcher::default();
        assert_eq!(w.step(look(&[("a", "Up")])), []);
        assert_eq!(w.step(look(&[("a", "Up")])), []);
        assert_eq!(
            w.step(look(&[("a", "Paused"), ("b", "Up")])),
            [Change::Status("a".into()), Change::Status("b".into())]
        );
        assert_eq!(w.step(look(&[("b", "Up")])), [Change::Gone("a".into())]);
        assert_eq!(w.step(look(&[])), [Change::Gone("b".into())]);
    }

    #[test]
    fn an_event_is_a_notification_as_vdsm_sends_it() {
        let e = Event::vm_status("u-1", json!({"vmId": "u-1", "status": "Up"}), 42);
        assert_eq!(
            e.to_json(),
            json!({
                "jsonrpc": "2.0",
                "method": "|virt|VM_status|u-1",
                "params": {"u-1": {"vmId": "u-1", "status": "Up"}, "notify_time": 42}
            })
        );
        assert_eq!(gone_stats("u-1")["status"], "Down");
    }
}
