//! Fuzzes the kickstart parser: any bytes, as the top-level file and as an
//! included one, must parse without panicking, and what parses must render
//! and parse again to the same model.
#![no_main]

use std::path::PathBuf;

use kickstart::source::MemLoader;
use kickstart::{parse_str, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut loader = MemLoader::default();
    loader.0.insert(PathBuf::from("inc.ks"), text.to_string());
    loader.0.insert(PathBuf::from("ks.cfg"), text.to_string());
    let first = parse_str("ks.cfg", &text, &loader);
    let _ = kickstart::node::plan(&first.kickstart);
    let rendered = render(&first.kickstart);
    let second = parse_str("ks.cfg", &rendered, &loader);
    assert_eq!(first.kickstart, second.kickstart, "render/parse changed the model:\n{rendered}");
});
