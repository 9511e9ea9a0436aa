//! Copies xterm.js (installed from the npm registry into `web/node_modules` by
//! `tests/deps.d/console.post.sh`, or found through `HVNODE_XTERM_DIR`) into the build,
//! so that the console binary carries it. Without it the terminal page says how to
//! install it instead of failing the whole build.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=HVNODE_XTERM_DIR");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = env::var_os("HVNODE_XTERM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("web/node_modules/@xterm/xterm"));
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let js = dir.join("lib/xterm.js");
    let css = dir.join("css/xterm.css");
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("package.json").display()
    );
    println!("cargo:rerun-if-changed={}", js.display());
    let copied = copy(&js, &out.join("xterm.js")) && copy(&css, &out.join("xterm.css"));
    if copied {
        println!("cargo:rustc-env=HVNODE_XTERM_BUNDLED=1");
    } else {
        println!(
            "cargo:warning=xterm.js not found at {}: run tests/deps.sh (npm ci in crates/console/web); the terminal page will say so",
            dir.display()
        );
        let stub = "window.Terminal = undefined; /* xterm.js was not bundled */\n";
        let _ = fs::write(out.join("xterm.js"), stub);
        let _ = fs::write(out.join("xterm.css"), "/* xterm.css was not bundled */\n");
    }
}

fn copy(from: &Path, to: &Path) -> bool {
    fs::copy(from, to).is_ok()
}
