//! Stage progress: a spinner with the elapsed time on a terminal, a plain
//! line every few seconds otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a long stage says it is still running when not on a terminal.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Reports the stages of one build.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    done: usize,
    terminal: bool,
    /// (stage, seconds) of every finished stage, for the build report.
    pub timings: Vec<(String, f64)>,
}

/// A running stage; finishing (or dropping) it reports the time taken.
#[derive(Debug)]
pub struct Stage {
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
    note: Arc<Mutex<String>>,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            timings: Vec::new(),
        }
    }

    /// Starts stage `name`.
    pub fn stage(&mut self, name: &str) -> Stage {
        self.done += 1;
        let label = format!("[{}/{}] {name}", self.done, self.total);
        let stop = Arc::new(AtomicBool::new(false));
        let note = Arc::new(Mutex::new(String::new()));
        let (bar, heartbeat) = if self.terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            (Some(bar), None)
        } else {
            eprintln!("{label} ...");
            let stop = stop.clone();
            let note = note.clone();
            let started = Instant::now();
            let handle = std::thread::spawn(move || {
                let mut next = HEARTBEAT;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    if started.elapsed() >= next {
                        let n = note.lock().map(|n| n.clone()).unwrap_or_default();
                        eprintln!("{label}: {} s {n}", started.elapsed().as_secs());
                        next += HEARTBEAT;
                    }
                }
            });
            (None, Some(handle))
        };
        Stage {
            name: name.to_string(),
            started: Instant::now(),
            bar,
            stop,
            heartbeat,
            note,
        }
    }

    /// Ends a stage, recording its time; `how` says what happened ("cached").
    pub fn finish(&mut self, mut stage: Stage, how: &str) {
        let secs = stage.started.elapsed().as_secs_f64();
        stage.end();
        eprintln!("    {} {how} in {secs:.1} s", stage.name);
        self.timings.push((stage.name.clone(), secs));
    }
}

impl Stage {
    /// A short note shown next to the stage (what it is doing now).
    pub fn note(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
        if let Ok(mut n) = self.note.lock() {
            *n = text.to_string();
        }
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.end();
    }
}
