//! Progress of an update: one event per step start, end or failure, and
//! free-form notes. A terminal gets human lines ([`Human`]); `--json` and
//! the console get one JSON object per line ([`JsonLines`]).

use std::io::Write;

use serde::Serialize;

use crate::step::Step;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Start,
    Done,
    Failed,
    /// Undone after a later failure.
    Undone,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The step, or `null` for a note that belongs to none.
    pub step: Option<Step>,
    /// `null` for a note.
    pub state: Option<State>,
    /// What happened, for a person.
    pub message: String,
    /// Machine-readable details (sizes, paths), when there are any.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// Receives the events of an update.
pub trait Progress {
    fn event(&mut self, event: &Event);

    fn step(&mut self, step: Step, state: State, message: &str) {
        self.event(&Event {
            step: Some(step),
            state: Some(state),
            message: message.to_string(),
            details: serde_json::Value::Null,
        });
    }

    fn note(&mut self, step: Option<Step>, message: &str) {
        self.event(&Event {
            step,
            state: None,
            message: message.to_string(),
            details: serde_json::Value::Null,
        });
    }
}

/// JSON lines: `{"step":"base","state":"start","message":"…"}`.
#[derive(Debug)]
pub struct JsonLines<W: Write>(pub W);

impl<W: Write> Progress for JsonLines<W> {
    fn event(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            // Progress is best effort: a closed pipe must not fail the update.
            let _ = writeln!(self.0, "{line}");
            let _ = self.0.flush();
        }
    }
}

/// Lines for a person: `[base] writing the new read-only base… done`.
#[derive(Debug)]
pub struct Human<W: Write>(pub W);

impl<W: Write> Progress for Human<W> {
    fn event(&mut self, event: &Event) {
        let prefix = event.step.map(|s| format!("[{s}] ")).unwrap_or_default();
        let state = match event.state {
            Some(State::Start) => "",
            Some(State::Done) => "done: ",
            Some(State::Failed) => "FAILED: ",
            Some(State::Undone) => "undone: ",
            None => "",
        };
        let _ = writeln!(self.0, "{prefix}{state}{}", event.message);
        let _ = self.0.flush();
    }
}

/// Keeps the events (tests, and callers that render them later).
#[derive(Debug, Default)]
pub struct Recorded(pub Vec<Event>);

impl Progress for Recorded {
    fn event(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_step_and_state() {
        let mut out = JsonLines(Vec::new());
        out.step(Step::EtcMerge, State::Start, "merging /etc");
        out.note(None, "hello");
        let text = String::from_utf8(out.0).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["step"], "etc-merge");
        assert_eq!(lines[0]["state"], "start");
        assert!(lines[1]["step"].is_null() && lines[1]["state"].is_null());
        assert!(lines[0].get("details").is_none());
    }
}
