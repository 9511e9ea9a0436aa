//! Tests of `customize`: ISOs made by the builder's own `assemble::iso`.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::*;
use crate::assemble;
use crate::recipe::Recipe;

/// A minisign public key (minisign's own release key).
const PUBLIC_KEY: &str = "untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n";
const FINGERPRINT: &str = "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const KICKSTART: &str = "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img\nautopart --type=thinp\nrootpw --iscrypted $6$salt$hash\nzerombr\nclearpart --all\npoweroff\n";

/// A small ISO made as the build makes it, or `None` (skipped) without
/// the tools.
fn built_iso(d: &Path) -> Option<PathBuf> {
    if !(hvnode_testutil::require_tools(&["xorriso", "grub-mkimage", "mkfs.vfat", "mcopy"])
        && hvnode_testutil::require_path(Path::new("/usr/lib/grub/i386-pc")))
    {
        return None;
    }
    let recipe = Recipe::parse(
        Path::new("r.toml"),
        "name = \"hvnode\"\nversion = \"1.0\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[kernel]\nargs = [\"security=selinux\", \"console=tty0\", \"console=ttyS0,115200\"]\n",
    )
    .unwrap();
    Some(assemble::test_iso(&recipe, d))
}

fn sha256(p: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(p).unwrap()))
}

fn all_changes(d: &Path) -> Changes {
    fs::write(d.join("site.ks"), KICKSTART).unwrap();
    fs::write(d.join("site.pub"), PUBLIC_KEY).unwrap();
    Changes {
        kickstart: Some(d.join("site.ks")),
        kargs_append: vec!["inst.sshd".into(), "net.ifnames=0".into()],
        kargs_delete: vec!["console".into()],
        default_entry: Some(MenuEntry::Live),
        timeout: Some(3),
        trust_keys: vec![d.join("site.pub")],
        engine: Some("engine.example.com:8443".into()),
        engine_fingerprint: Some(FINGERPRINT.into()),
    }
}

#[test]
fn customize_show_and_reset_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(built) = built_iso(d) else { return };
    let pristine = read(&built).unwrap();
    assert!(pristine.customization.is_empty());
    assert_eq!(
        pristine.build_kargs.join(" "),
        "root=live:CDLABEL=HVNODE rd.live.image security=selinux console=tty0 console=ttyS0,115200"
    );
    assert_eq!(pristine.build_timeout, Some(10));

    let custom = d.join("custom.iso");
    customize(&built, &custom, &all_changes(d)).unwrap();
    assert_eq!(
        fs::metadata(&custom).unwrap().len(),
        fs::metadata(&built).unwrap().len()
    );
    assert!(!partial_name(&custom).exists());
    let s = read(&custom).unwrap();
    let r = ShowReport::new(&custom, &s);
    assert!(r.customized);
    assert_eq!(r.default_entry, MenuEntry::Live);
    assert_eq!(r.timeout, Some(3));
    assert_eq!(
        r.kargs.join(" "),
        "root=live:CDLABEL=HVNODE rd.live.image security=selinux inst.sshd net.ifnames=0"
    );
    assert_eq!(r.build_kargs, pristine.build_kargs);
    let ks = r.kickstart.unwrap();
    assert_eq!((ks.name.as_str(), ks.text.as_str()), ("site.ks", KICKSTART));
    assert_eq!(r.trust_keys.len(), 1);
    assert_eq!(r.trust_keys[0].text, PUBLIC_KEY);
    assert_eq!(
        r.engine,
        Some(Engine {
            host: "engine.example.com".into(),
            port: 8443,
            fingerprint: Some(FINGERPRINT.into())
        })
    );

    // grub reads the same settings from its area.
    let file = File::open(&custom).unwrap();
    let iso = Iso::open(&file).unwrap();
    let e = iso.find(AreaKind::Grub.path()).unwrap();
    let bytes = read_at(&file, e, "grub area").unwrap();
    let script = std::str::from_utf8(iso_custom::decode(AreaKind::Grub, &bytes).unwrap()).unwrap();
    assert_eq!(
        script,
        "set default=live\nset timeout=3\nset hvnode_kargs='root=live:CDLABEL=HVNODE rd.live.image security=selinux inst.sshd net.ifnames=0'\n"
    );

    // Reset gives back the build's bytes.
    let back = d.join("back.iso");
    reset(&custom, &back).unwrap();
    assert_eq!(sha256(&back), sha256(&built));
}

#[test]
fn customizing_twice_starts_from_the_current_customization() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(built) = built_iso(d) else { return };
    let once = d.join("once.iso");
    customize(&built, &once, &all_changes(d)).unwrap();
    let twice = d.join("twice.iso");
    let notes = customize(
        &once,
        &twice,
        &Changes {
            kargs_delete: vec!["inst.sshd".into(), "quiet".into()],
            kargs_append: vec!["net.ifnames=0".into(), "quiet".into()],
            timeout: Some(10),
            engine_fingerprint: Some(
                "SHA256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210".into(),
            ),
            ..Changes::default()
        },
    )
    .unwrap();
    assert!(
        notes.iter().any(|n| n.contains("quiet: not among")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("net.ifnames=0: already there")),
        "{notes:?}"
    );
    let s = read(&twice).unwrap();
    assert_eq!(
        s.kargs().join(" "),
        "root=live:CDLABEL=HVNODE rd.live.image security=selinux net.ifnames=0 quiet"
    );
    // The build's timeout again: no longer a customisation.
    assert_eq!(s.customization.timeout, None);
    assert_eq!(s.customization.default_entry, Some(MenuEntry::Live));
    assert!(s.customization.kickstart.is_some());
    let e = s.customization.engine.unwrap();
    assert_eq!((e.host.as_str(), e.port), ("engine.example.com", 8443));
    assert!(e.fingerprint.unwrap().starts_with("SHA256:fedcba"));
    // In place, over the input, works too; and reset from there.
    customize(&twice, &twice, &Changes::default()).unwrap();
    reset(&twice, &twice).unwrap();
    assert_eq!(sha256(&twice), sha256(&built));
}

#[test]
fn an_invalid_kickstart_is_refused_with_its_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(built) = built_iso(d) else { return };
    let ks = d.join("bad.ks");
    fs::write(&ks, "rootpw --plaintext x\nautopart --tpye=thinp\n").unwrap();
    let out = d.join("out.iso");
    let e = customize(
        &built,
        &out,
        &Changes {
            kickstart: Some(ks.clone()),
            ..Changes::default()
        },
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&format!("{}:2: error: autopart", ks.display())),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    assert!(!out.exists());
    assert!(!partial_name(&out).exists());
}

#[test]
fn a_kickstart_too_large_for_the_area_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(built) = built_iso(d) else { return };
    let mut text = KICKSTART.to_string();
    text.push_str("%post\n");
    while text.len() < 200_000 {
        text.push_str("echo a line of a long post script to fill the area\n");
    }
    text.push_str("%end\n");
    let ks = d.join("big.ks");
    fs::write(&ks, &text).unwrap();
    let out = d.join("out.iso");
    let e = customize(
        &built,
        &out,
        &Changes {
            kickstart: Some(ks),
            ..Changes::default()
        },
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("ks/custom.area holds") && msg.contains("131072 bytes"),
        "{msg}"
    );
    assert!(!out.exists());
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(built) = built_iso(d) else { return };
    let out = d.join("out.iso");
    fs::write(d.join("bad.pub"), "not a key\n").unwrap();
    for (changes, expect) in [
        (
            Changes {
                engine_fingerprint: Some(FINGERPRINT.into()),
                ..Changes::default()
            },
            "without an engine",
        ),
        (
            Changes {
                engine: Some("engine.example.com:0".into()),
                ..Changes::default()
            },
            "port",
        ),
        (
            Changes {
                engine: Some("e".into()),
                engine_fingerprint: Some("SHA256:abc".into()),
                ..Changes::default()
            },
            "neither SHA256",
        ),
        (
            Changes {
                trust_keys: vec![d.join("bad.pub")],
                ..Changes::default()
            },
            "bad.pub",
        ),
        (
            Changes {
                kargs_append: vec!["a b".into()],
                ..Changes::default()
            },
            "without blanks",
        ),
    ] {
        let msg = format!("{:#}", customize(&built, &out, &changes).unwrap_err());
        assert!(msg.contains(expect), "{expect}: {msg}");
        assert!(!out.exists());
    }
}

#[test]
fn an_iso_without_areas_is_refused_clearly() {
    if !hvnode_testutil::require_tool("xorriso") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("tree/boot/grub")).unwrap();
    fs::write(d.join("tree/boot/grub/grub.cfg"), "set timeout=1\n").unwrap();
    let iso = d.join("old.iso");
    std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-r", "-quiet", "-o"])
        .arg(&iso)
        .arg(d.join("tree"))
        .status()
        .unwrap();
    let msg = format!("{:#}", read(&iso).unwrap_err());
    assert!(msg.contains("has no customisation areas"), "{msg}");
    assert!(msg.contains("Build the image again"), "{msg}");
    let out = d.join("out.iso");
    assert!(customize(&iso, &out, &Changes::default()).is_err());
    assert!(!out.exists());
    // Not an ISO at all.
    fs::write(d.join("zero"), vec![0u8; 64 << 10]).unwrap();
    let msg = format!("{:#}", read(&d.join("zero")).unwrap_err());
    assert!(msg.contains("not an ISO 9660 image"), "{msg}");
}

#[test]
fn grub_set_lines_are_unquoted() {
    let cfg = "set default=0\nset timeout=10\nset hvnode_kargs='a b=c'\\''d'\n";
    assert_eq!(grub_set(cfg, "timeout").as_deref(), Some("10"));
    assert_eq!(grub_set(cfg, KARGS_VAR).as_deref(), Some("a b=c'd"));
    assert_eq!(grub_quote("a b=c'd"), "'a b=c'\\''d'");
    assert_eq!(grub_set(cfg, "nothing"), None);
}
