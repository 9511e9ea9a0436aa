//! Writing a kickstart back out. Parsing what this writes gives the same
//! model (see the property test in `tests/roundtrip.rs`).

use std::fmt::Write;

use crate::commands::Syntax;
use crate::lex::quote;
use crate::model::{Item, Kickstart};

fn line(out: &mut String, name: &str, words: &[String]) {
    out.push_str(name);
    for w in words {
        out.push(' ');
        out.push_str(&quote(w));
    }
    out.push('\n');
}

fn body(out: &mut String, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    out.push_str("%end\n");
}

/// Renders the whole kickstart.
pub fn render(ks: &Kickstart) -> String {
    let mut out = String::new();
    let mut previous_was_command = true;
    for item in &ks.items {
        let is_command = matches!(item.value, Item::Command(_));
        if !is_command || !previous_was_command {
            out.push('\n');
        }
        previous_was_command = is_command;
        match &item.value {
            Item::Command(c) => line(&mut out, c.name(), &c.words()),
            Item::Script(s) => {
                line(&mut out, s.header.invoked_as(), &s.header.to_words());
                body(&mut out, &s.body);
            }
            Item::Packages(p) => {
                line(&mut out, "%packages", &p.header.to_words());
                body(&mut out, &p.lines);
            }
            Item::Certificate(c) => {
                line(&mut out, "%certificate", &c.header.to_words());
                body(&mut out, &c.body);
            }
            Item::Raw(r) => {
                line(&mut out, &r.section, &r.words);
                body(&mut out, &r.body);
            }
        }
    }
    out.trim_start_matches('\n').to_string()
}
