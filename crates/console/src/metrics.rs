//! The 1-second sampler and its 5-minute history, drawn as SVG polylines.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;

/// Points kept: five minutes at one per second.
pub const HISTORY: usize = 300;

/// One sample of the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Point {
    /// Seconds since the Unix epoch.
    pub t: u64,
    pub cpu_percent: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
}

/// The history and the subscribers to new points.
#[derive(Debug)]
pub struct Metrics {
    history: Mutex<VecDeque<Point>>,
    live: broadcast::Sender<Point>,
    /// Each interface's received and sent bytes per second at the last sample.
    interfaces: Mutex<Vec<(String, f64, f64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(16).0,
            interfaces: Mutex::new(Vec::new()),
        }
    }
}

impl Metrics {
    pub fn set_interface_rates(&self, rates: Vec<(String, f64, f64)>) {
        if let Ok(mut i) = self.interfaces.lock() {
            *i = rates;
        }
    }

    /// Received and sent bytes per second of `name` at the last sample.
    pub fn interface_rate(&self, name: &str) -> Option<(f64, f64)> {
        let i = self.interfaces.lock().ok()?;
        i.iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, rx, tx)| (*rx, *tx))
    }

    pub fn push(&self, p: Point) {
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(p);
        }
        // Nobody listening is fine.
        let _ = self.live.send(p);
    }

    pub fn history(&self) -> Vec<Point> {
        self.history
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Point> {
        self.live.subscribe()
    }
}

use hostinfo::now_unix;

/// How often the sampler samples: the history keeps one point per period.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// Samples the host every [`SAMPLE_PERIOD`] into `metrics` until the runtime stops.
pub fn spawn_sampler(metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    spawn_sampler_every(metrics, SAMPLE_PERIOD)
}

/// Samples the host every `period` into `metrics` until the runtime stops (the
/// first point comes one period after the start: a rate needs two readings).
pub fn spawn_sampler_every(metrics: Arc<Metrics>, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last: Option<(Instant, hostinfo::Counters)> = None;
        let mut warned = false;
        loop {
            tick.tick().await;
            let now = Instant::now();
            let counters = match hostinfo::read_counters() {
                Ok(c) => c,
                Err(e) => {
                    if !warned {
                        tracing::warn!("sampler: {e}");
                        warned = true;
                    }
                    continue;
                }
            };
            let mem = std::fs::read_to_string("/proc/meminfo")
                .map(|t| hostinfo::system::parse_meminfo(&t))
                .unwrap_or_default();
            if let Some((then, before)) = &last {
                let secs = now.duration_since(*then).as_secs_f64();
                let r = hostinfo::rates(before, &counters, secs);
                metrics.set_interface_rates(hostinfo::interface_rates(before, &counters, secs));
                metrics.push(Point {
                    t: now_unix(),
                    cpu_percent: r.cpu_percent,
                    mem_used: mem.used(),
                    mem_total: mem.total,
                    net_rx_bps: r.net_rx_bps,
                    net_tx_bps: r.net_tx_bps,
                    disk_read_bps: r.disk_read_bps,
                    disk_write_bps: r.disk_write_bps,
                });
            }
            last = Some((now, counters));
        }
    })
}

/// Width of a graph in SVG units: one unit per second of history.
pub const GRAPH_WIDTH: usize = HISTORY;
/// Height of a graph in SVG units.
pub const GRAPH_HEIGHT: f64 = 100.0;

/// The `points` of a polyline for `values` (oldest first), right-aligned so the newest
/// value is at the right edge, scaled so that `max` is the top.
pub fn polyline(values: &[f64], max: f64) -> String {
    let max = if max > 0.0 { max } else { 1.0 };
    let offset = GRAPH_WIDTH.saturating_sub(values.len());
    let mut out = String::with_capacity(values.len() * 10);
    for (i, v) in values.iter().enumerate() {
        let y = GRAPH_HEIGHT - (v.clamp(0.0, max) / max * GRAPH_HEIGHT);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{},{:.1}", offset + i, y));
    }
    out
}

/// A scale top for byte rates: the next "nice" value above the maximum.
pub fn nice_max(values: &[f64]) -> f64 {
    let m = values.iter().copied().fold(0.0_f64, f64::max);
    let mut top = 1024.0;
    while top < m {
        top *= 2.0;
    }
    top
}

pub use hostinfo::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_five_minutes() {
        let m = Metrics::default();
        for t in 0..(HISTORY as u64 + 10) {
            m.push(Point {
                t,
                ..Point::default()
            });
        }
        let h = m.history();
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h[0].t, 10);
        let mut rx = m.subscribe();
        m.push(Point {
            t: 999,
            ..Point::default()
        });
        assert_eq!(rx.try_recv().map(|p| p.t).ok(), Some(999));
    }

    #[test]
    fn polyline_is_right_aligned_and_scaled() {
        assert_eq!(
            polyline(&[0.0, 50.0, 100.0], 100.0),
            "297,100.0 298,50.0 299,0.0"
        );
        assert_eq!(polyline(&[200.0], 100.0), "299,0.0", "clamped to the top");
        assert_eq!(polyline(&[], 100.0), "");
        assert_eq!(polyline(&[1.0], 0.0), "299,0.0");
    }

    #[test]
    fn scales_and_units() {
        assert_eq!(nice_max(&[]), 1024.0);
        assert_eq!(nice_max(&[3000.0]), 4096.0);
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
