//! Property tests: parse → render → parse gives the same model, for
//! kickstarts generated from the commands' own option tables with values
//! full of quotes, spaces, `#` and backslashes; and no input panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use kickstart::commands::{typed_names, typed_spec};
use kickstart::options::{Arity, NArgs};
use kickstart::source::MemLoader;
use kickstart::{parse_str, render};
use proptest::prelude::*;

/// Values that stress quoting.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./:_-]{1,12}",
        "[0-9]{1,5}",
        "[ -~]{0,16}",
        Just(String::new()),
        Just("a b # c".to_string()),
        Just("\"quoted\" \\ back".to_string()),
        Just("-dash".to_string()),
        Just("x=y,z".to_string()),
    ]
}

/// Shell single-quoting, independent of the crate's own quoting so that a
/// bug there cannot hide itself.
fn sq(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\"'\"'"))
}

/// One command line built from the command's option table.
fn command_line() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = typed_names().collect();
    (
        prop::sample::select(names),
        prop::collection::vec((any::<prop::sample::Index>(), value()), 0..6),
        prop::collection::vec(value(), 0..3),
    )
        .prop_map(|(name, opts, positionals)| {
            let spec = typed_spec(name).expect("typed command has a spec");
            let mut words = vec![name.to_string()];
            for (idx, v) in opts {
                if spec.options.is_empty() {
                    break;
                }
                let o = idx.get(&spec.options);
                let opt_name = idx.get(o.names);
                match o.arity {
                    Arity::Flag => words.push(opt_name.to_string()),
                    Arity::Value | Arity::MaybeValue => {
                        words.push(format!("{opt_name}={}", sq(&v)))
                    }
                }
            }
            let max = spec
                .positionals
                .iter()
                .map(|p| if p.nargs == NArgs::Many { 3 } else { 1 })
                .sum::<usize>();
            words.extend(positionals.into_iter().take(max).map(|p| sq(&p)));
            words.join(" ")
        })
}

fn body_line() -> impl Strategy<Value = String> {
    "[a-z][ -~]{0,20}"
}

fn section() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "%pre",
            "%pre-install",
            "%post",
            "%onerror",
            "%packages",
            "%anaconda",
        ]),
        prop::collection::vec(body_line(), 1..4),
        prop::bool::ANY,
    )
        .prop_map(|(name, body, erroronfail)| {
            let header = if erroronfail && name.starts_with("%p") && name != "%packages" {
                format!("{name} --erroronfail --interpreter=\"/bin/sh\"")
            } else {
                name.to_string()
            };
            format!("{header}\n{}\n%end", body.join("\n"))
        })
}

fn kickstart() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(command_line(), 0..12),
        prop::collection::vec(section(), 0..3),
    )
        .prop_map(|(cmds, sections)| format!("{}\n{}\n", cmds.join("\n"), sections.join("\n")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_render_parse_is_stable(text in kickstart()) {
        let loader = MemLoader::default();
        let first = parse_str("ks.cfg", &text, &loader);
        let rendered = render(&first.kickstart);
        let second = parse_str("ks.cfg", &rendered, &loader);
        prop_assert_eq!(&first.kickstart, &second.kickstart, "rendered:\n{}", rendered);
        // Rendering is a fixed point after one round.
        prop_assert_eq!(render(&second.kickstart), rendered);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        let p = parse_str("ks.cfg", &text, &MemLoader::default());
        let _ = render(&p.kickstart);
        let _ = kickstart::node::plan(&p.kickstart);
    }

    #[test]
    fn arbitrary_lines_of_kickstart_words_never_panic(
        lines in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    Just("%post".to_string()), Just("%end".to_string()), Just("%packages".to_string()),
                    Just("%include".to_string()), Just("%ksappend".to_string()), Just("autopart".to_string()),
                    Just("--type".to_string()), Just("\"".to_string()), Just("#".to_string()), Just("part".to_string()),
                    Just("logvol".to_string()), Just("--".to_string()), Just("-".to_string()), value(),
                ],
                0..6,
            ).prop_map(|w| w.join(" ")),
            0..20,
        )
    ) {
        let text = lines.join("\n");
        let p = parse_str("ks.cfg", &text, &MemLoader::default());
        let rendered = render(&p.kickstart);
        let _ = parse_str("ks.cfg", &rendered, &MemLoader::default());
    }
}

/// Parses, renders and parses again: the model must not change.
fn assert_round_trip(text: &str) {
    let loader = MemLoader::default();
    let first = parse_str("ks.cfg", text, &loader);
    let rendered = render(&first.kickstart);
    let second = parse_str("ks.cfg", &rendered, &loader);
    assert_eq!(first.kickstart, second.kickstart, "rendered:\n{rendered:?}");
}

/// Carriage returns at the end of a line are its line ending (a kickstart
/// saved on Windows), however many there are: kept in a script's body, each
/// render and parse took one more away (found by fuzzing).
#[test]
fn carriage_returns_ending_a_script_line_are_its_line_ending() {
    let text = "%pre --nochroot\nec\r\r\r\r\necho d\n%end\n%onerror --log\necho e\n%end\n";
    assert_round_trip(text);
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    let rendered = render(&p.kickstart);
    assert!(rendered.contains("\nec\necho d\n"), "{rendered:?}");
}

/// Lines of carriage returns only, in an add-on's body after blank lines,
/// are blank lines (found by fuzzing).
#[test]
fn lines_of_carriage_returns_in_an_addon_are_blank() {
    assert_round_trip(
        "%addon org_hvnode_register --engine=engine.example.com\n\n\n\r\r\r\n\n\x0b\n\nx\n%end\n",
    );
    assert_round_trip("%addon com_example_other\n\r\r\n\r\nkey = value\r\r\n%end\n");
}

/// `%end#note` inside `%packages` is a line of the section, not its end (as in
/// pykickstart), and no package name starts with '%': the line is an error,
/// not a package "%end" that would end the section when written back (found by
/// fuzzing).
#[test]
fn a_packages_line_starting_with_percent_is_an_error_not_a_package() {
    let text = "%packages\n@core\n%end# hvnode\nvim\n%end\nrootpw --lock\n";
    assert_round_trip(text);
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    let errors: Vec<String> = p.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("%end# is not a package name")),
        "{errors:?}"
    );
    let rendered = render(&p.kickstart);
    assert!(rendered.contains("@core\nvim\n%end\n"), "{rendered:?}");
}
