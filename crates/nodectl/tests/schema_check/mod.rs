//! Checks JSON output against the schemas in `docs/schemas/` (JSON Schema draft
//! 2020-12), for `nodectl --json` (tests/schemas.rs here) and the console's API
//! (the console's tests/schemas.rs, which includes this file).
//!
//! Three checks on top of validation itself:
//! - every schema is a valid draft 2020-12 schema, and every object in it that
//!   lists `properties` is closed (`additionalProperties: false`) and requires all
//!   of them: serde writes every field, `None` as `null`, so a field that is not
//!   always there is a change of shape too;
//! - [`Schemas::check`] records which parts of the schemas took part in accepting
//!   the output, and [`Schemas::assert_covered`] fails on a declared property that
//!   no checked output had: a field removed from the output, or a test that does
//!   not exercise it;
//! - [`Schemas::rejects`] lets a test show that a wrong shape is refused.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

/// The URI the schemas are registered under, so that their relative `$ref`s
/// (`health-Report.json#/$defs/status`) resolve among themselves.
pub const BASE: &str = "file:///docs/schemas/";

/// The draft every schema declares.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every schema of `docs/schemas/`, ready to validate with.
pub struct Schemas {
    files: Vec<(String, Value)>,
    registry: jsonschema::Registry<'static>,
    /// `file#/pointer` of every subschema that accepted a part of checked output.
    seen: Mutex<BTreeSet<String>>,
}

/// `docs/schemas/` of the workspace.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
}

impl Schemas {
    /// Reads, lints and registers every `*.json` of `docs/schemas/`.
    pub fn load() -> Self {
        let mut names: Vec<String> = std::fs::read_dir(dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no schema in {}", dir().display());
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for name in names {
            let text = std::fs::read_to_string(dir().join(&name)).unwrap();
            let schema: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("docs/schemas/{name} is not JSON: {e}"));
            if let Err(e) = jsonschema::meta::validate(&schema) {
                problems.push(format!("{name}: not a valid JSON Schema: {e}"));
            }
            lint(&name, &schema, &mut problems);
            files.push((name, schema));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        let registry = jsonschema::Registry::new()
            .extend(
                files
                    .iter()
                    .map(|(name, schema)| (format!("{BASE}{name}"), schema.clone())),
            )
            .unwrap()
            .prepare()
            .unwrap();
        Self {
            files,
            registry,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The names of the schema files, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.files.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn validator(&self, file: &str) -> jsonschema::Validator {
        assert!(
            self.files.iter().any(|(n, _)| n == file),
            "there is no docs/schemas/{file}"
        );
        jsonschema::options()
            .with_registry(&self.registry)
            .build(&serde_json::json!({ "$ref": format!("{BASE}{file}") }))
            .unwrap_or_else(|e| panic!("docs/schemas/{file}: {e}"))
    }

    /// The errors `file` finds in `instance`, one line each (empty: valid).
    pub fn errors(&self, file: &str, instance: &Value) -> Vec<String> {
        self.validator(file)
            .iter_errors(instance)
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect()
    }

    /// Fails unless `instance` is valid under `file`; records the properties it had.
    #[track_caller]
    pub fn check(&self, file: &str, instance: &Value) {
        let errors = self.errors(file, instance);
        assert!(
            errors.is_empty(),
            "docs/schemas/{file} does not describe this output: change the schema with \
             the output (docs/schemas/README.md says how)\n  {}\noutput: {}",
            errors.join("\n  "),
            serde_json::to_string_pretty(instance).unwrap()
        );
        // Every subschema that took part in the verdict, down the valid units only
        // (a property of a `oneOf` branch that did not match was not seen).
        let validator = self.validator(file);
        let evaluation = validator.evaluate(instance);
        let mut seen = self.seen.lock().unwrap();
        let mut units = vec![evaluation.root()];
        while let Some(unit) = units.pop() {
            if !unit.valid() {
                continue;
            }
            if let Some(location) = percent_decode(unit.schema_location()).strip_prefix(BASE) {
                seen.insert(location.to_string());
            }
            units.extend(unit.children());
        }
    }

    /// Fails unless `file` rejects `instance`; gives back the errors.
    #[track_caller]
    pub fn rejects(&self, file: &str, instance: &Value) -> Vec<String> {
        let errors = self.errors(file, instance);
        assert!(
            !errors.is_empty(),
            "docs/schemas/{file} accepts a wrong shape: {}",
            serde_json::to_string_pretty(instance).unwrap()
        );
        errors
    }

    /// Fails if a property that a schema of `files` declares was in none of the
    /// output checked so far.
    #[track_caller]
    pub fn assert_covered(&self, files: &[&str]) {
        let seen = self.seen.lock().unwrap();
        let mut missing = Vec::new();
        for (name, schema) in self
            .files
            .iter()
            .filter(|(n, _)| files.contains(&n.as_str()))
        {
            let mut declared = Vec::new();
            properties(schema, &format!("{name}#"), &mut declared);
            missing.extend(declared.into_iter().filter(|p| {
                let below = format!("{p}/");
                !seen.contains(p)
                    && !seen
                        .range(below.clone()..)
                        .next()
                        .is_some_and(|s| s.starts_with(&below))
            }));
        }
        assert!(
            missing.is_empty(),
            "no output checked had these properties of the schemas: the output lost them \
             (remove them from the schema) or the tests do not produce them (add a case):\n  {}",
            missing.join("\n  ")
        );
    }
}

/// One JSON Pointer segment.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Undoes the percent-encoding of a URI (the `$` of `$defs` may come encoded).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The keywords whose value is a schema, a list of schemas, or a map of them.
const SUBSCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
];
const SUBSCHEMA_LISTS: &[&str] = &["oneOf", "anyOf", "allOf", "prefixItems"];
const SUBSCHEMA_MAPS: &[&str] = &["$defs", "properties", "patternProperties"];

/// Calls `f` with every subschema of `schema` and its JSON Pointer.
fn walk(schema: &Value, pointer: &str, f: &mut dyn FnMut(&serde_json::Map<String, Value>, &str)) {
    let Value::Object(o) = schema else {
        return;
    };
    f(o, pointer);
    for k in SUBSCHEMA {
        if let Some(s) = o.get(*k) {
            walk(s, &format!("{pointer}/{k}"), f);
        }
    }
    for k in SUBSCHEMA_LISTS {
        for (i, s) in o
            .get(*k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            walk(s, &format!("{pointer}/{k}/{i}"), f);
        }
    }
    for k in SUBSCHEMA_MAPS {
        for (name, s) in o.get(*k).and_then(Value::as_object).into_iter().flatten() {
            walk(s, &format!("{pointer}/{}/{}", escape(k), escape(name)), f);
        }
    }
}

/// `prefix/pointer/properties/name` of every property `schema` declares.
fn properties(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    walk(schema, prefix, &mut |o, pointer| {
        for name in o
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            out.push(format!("{pointer}/properties/{}", escape(name)));
        }
    });
}

/// The house rules of `docs/schemas/README.md` that a meta-schema does not check.
fn lint(name: &str, schema: &Value, problems: &mut Vec<String>) {
    if schema.get("$schema").and_then(Value::as_str) != Some(DRAFT) {
        problems.push(format!("{name}: \"$schema\" must be {DRAFT:?}"));
    }
    for key in ["title", "description"] {
        if !schema.get(key).is_some_and(Value::is_string) {
            problems.push(format!("{name}: no {key}"));
        }
    }
    if schema.get("$id").is_some() {
        problems.push(format!(
            "{name}: no \"$id\": the schemas refer to each other by file name"
        ));
    }
    walk(schema, "#", &mut |o, pointer| {
        let Some(props) = o.get("properties").and_then(Value::as_object) else {
            return;
        };
        if o.get("type").and_then(Value::as_str) != Some("object") {
            problems.push(format!("{name}{pointer}: \"type\": \"object\" missing"));
        }
        if o.get("additionalProperties") != Some(&Value::Bool(false)) {
            problems.push(format!(
                "{name}{pointer}: \"additionalProperties\": false missing (a new field must \
                 change the schema)"
            ));
        }
        let required: BTreeSet<&str> = o
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let declared: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        if required != declared {
            problems.push(format!(
                "{name}{pointer}: \"required\" must list every property (serde writes them \
                 all): missing {:?}, unknown {:?}",
                declared.difference(&required).collect::<Vec<_>>(),
                required.difference(&declared).collect::<Vec<_>>()
            ));
        }
    });
}
