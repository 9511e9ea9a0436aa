//! Two builds of the same recipe from the same package cache give
//! byte-identical artifacts: every file `SHA256SUMS` lists (the squashfs
//! root image, the ISO, the PXE tree, the update bundle, `manifest.json`)
//! and `SHA256SUMS` itself.
//!
//! The first build is the one in `HVNODE_IMAGE_DIR` (made by
//! `tests/run-tests.sh`); this test builds again with every stage cache
//! ignored, with the first build's epoch, and compares. Skipped without
//! `HVNODE_IMAGE_DIR`; a failure then in CI (`CI=true`, or
//! `HVNODE_REQUIRE_IMAGE=1` as `tests/run-tests.sh` sets; see `hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| (path.to_string(), sum.to_string()))
        .collect()
}

#[test]
fn reproducible_rebuild_gives_identical_artifacts() {
    let Some(first) = hvnode_testutil::require_env(
        "HVNODE_IMAGE_DIR",
        "build the image with `make image`; tests/run-tests.sh does",
    )
    .map(PathBuf::from) else {
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let cache = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/hvnode"));
    // The same time stamp as the first build (commits may have come since).
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("manifest.json")).unwrap()).unwrap();
    let epoch = manifest["buildEpoch"]
        .as_i64()
        .expect("buildEpoch in manifest.json");
    let second = cache.join("repro-out");
    let _ = std::fs::remove_dir_all(&second);
    let report = image_build::build(&image_build::Options {
        recipe: workspace.join("image/hvnode.toml"),
        out: second.clone(),
        cache_dir: cache.join("image"),
        workspace,
        rebuild: true,
        epoch: Some(epoch),
        sign_key: None,
        wait_for_cache: true,
    })
    .unwrap();
    for (stage, secs) in &report.stages {
        eprintln!("rebuild: {stage} {secs:.1} s");
    }
    let a = checksums(&first);
    let b = checksums(&second);
    for kind in [".squashfs.img", ".iso", ".update.tar", "manifest.json"] {
        assert!(
            a.keys().any(|p| p.ends_with(kind)),
            "{kind} is listed in SHA256SUMS and compared"
        );
    }
    let differ: Vec<&String> = a.keys().filter(|k| a.get(*k) != b.get(*k)).collect();
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same artifacts"
    );
    assert!(
        differ.is_empty(),
        "artifacts that differ between two builds: {differ:?}"
    );
    assert!(
        std::fs::read(first.join("SHA256SUMS")).unwrap()
            == std::fs::read(second.join("SHA256SUMS")).unwrap(),
        "SHA256SUMS differs"
    );
    for (path, sum) in &a {
        eprintln!("identical: {sum}  {path}");
    }
    eprintln!("reproducible: {} artifacts identical", a.len());
    std::fs::remove_dir_all(&second).unwrap();
}
