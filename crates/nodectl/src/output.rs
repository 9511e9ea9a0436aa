//! Shapes of `nodectl` output: versioned JSON envelopes and human-readable times.

use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

/// `--json` output: `apiVersion` and `kind`, then the body's fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T: Serialize> {
    pub api_version: &'static str,
    pub kind: &'static str,
    #[serde(flatten)]
    pub body: T,
}

/// Asks `question` on the terminal; anything but yes is no, and so is no
/// terminal at all (a script must say `--yes`).
pub fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(kind: &'static str, body: T) -> anyhow::Result<()> {
    println!("{}", to_json(kind, body)?);
    Ok(())
}

/// `body` as `--json` prints it: pretty JSON in its envelope.
pub fn to_json<T: Serialize>(kind: &'static str, body: T) -> anyhow::Result<String> {
    let envelope = Envelope {
        api_version: registration::API_VERSION,
        kind,
        body,
    };
    Ok(serde_json::to_string_pretty(&envelope)?)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    format!("{} UTC", hostinfo::units::UtcTime::from_unix(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }
}
