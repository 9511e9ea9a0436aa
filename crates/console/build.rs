//! Copies xterm.js (installed from the npm registry into `web/node_modules` by
//! `tests/deps.d/console.post.sh`, or found through `HVNODE_XTERM_DIR`) into the build,
//! so that the console binary carries it. Without it the terminal page says how to
//! install it instead of failing the whole build. The same for noVNC's RFB class, one
//! script that `npm run bundle` (esbuild, run by the same deps script) writes to
//! `web/dist/novnc.js` (or found through `HVNODE_NOVNC_JS`): without it the VM page's
//! graphical console says so.

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
    novnc(&manifest, &out);
}

/// Copies the noVNC bundle, or writes a stub that leaves `window.RFB` undefined.
fn novnc(manifest: &Path, out: &Path) {
    println!("cargo:rerun-if-env-changed=HVNODE_NOVNC_JS");
    let js = env::var_os("HVNODE_NOVNC_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("web/dist/novnc.js"));
    println!("cargo:rerun-if-changed={}", js.display());
    if copy(&js, &out.join("novnc.js")) {
        println!("cargo:rustc-env=HVNODE_NOVNC_BUNDLED=1");
    } else {
        println!(
            "cargo:warning=noVNC not found at {}: run tests/deps.sh (npm ci and npm run bundle in crates/console/web); the VM page's graphical console will say so",
            js.display()
        );
        let stub = "window.RFB = undefined; /* noVNC was not bundled */\n";
        let _ = fs::write(out.join("novnc.js"), stub);
    }
}

fn copy(from: &Path, to: &Path) -> bool {
    fs::copy(from, to).is_ok()
}
