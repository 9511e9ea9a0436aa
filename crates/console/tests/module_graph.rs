//! The console's modules import each other in one direction: the router at the
//! top, then the features (pages, API, terminal, registration, layer actions),
//! then the views, then the state, guard and facts they share; never the other
//! way round. Read from the sources, so a new import that closes a circle fails
//! here.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

/// Each top-level module of `src` → the modules of this crate it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut g = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut uses = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap()];
                uses.extend(
                    list.split(',')
                        .map(|m| m.trim().split("::").next().unwrap().trim().to_string()),
                );
            } else {
                let m: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                uses.insert(m);
            }
        }
        uses.retain(|m| !m.is_empty() && *m != name);
        g.insert(name, uses);
    }
    g
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(g.len() > 20, "{g:?}");
    // Depth-first search for a cycle, printing it when found.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("modules import each other in a circle: {}", {
                let mut c = path[at..].to_vec();
                c.push(m.to_string());
                c.join(" → ")
            });
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for n in g.get(m).into_iter().flatten() {
            visit(n, g, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(m, &g, &mut Vec::new(), &mut done);
    }
}

#[test]
fn shared_modules_import_no_feature() {
    let g = graph();
    let features = [
        "router",
        "pages",
        "api",
        "views",
        "terminal",
        "register",
        "login",
        "layer_actions",
        "node_layers",
        "access",
    ];
    for shared in [
        "state", "guard", "auth", "facts", "session", "error", "admin", "sudo",
    ] {
        let bad: Vec<&String> = g[shared]
            .iter()
            .filter(|m| features.contains(&m.as_str()))
            .collect();
        assert!(bad.is_empty(), "{shared} imports {bad:?}");
    }
    for m in g
        .keys()
        .filter(|m| *m != "router" && *m != "lib" && *m != "server")
    {
        assert!(!g[m].contains("router"), "{m} imports the router");
    }
}
