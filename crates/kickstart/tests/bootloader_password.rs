//! `bootloader --password`: kept for the installer (plain or a grub PBKDF2
//! hash), a bad `--iscrypted` value refused on its file and line, and the
//! plain text never in the plan's JSON nor in a diagnostic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};

use kickstart::grub_password::BootPassword;
use kickstart::source::MemLoader;
use kickstart::{node, parse_str};

const HASH: &str = "grub.pbkdf2.sha512.10000.5B1693EE3721657F6AB764DD747BE7912CCBD37D0513E5A923513F2F9B4F15F7F2E0818E7314E6E6B23FFBA74FBC54DD6C1847F4159CD4CF30648167F0F263C0.2B3A02B6BB67545C7F292312EBAE01D70DC5C48CE10747DE55BDE19E799091693AA8F6D949EF21822020B02B913673159E3EF83F0BC64CDBA5E9EE8E7AFA03EA";

fn plan_of(text: &str) -> node::NodePlan {
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    assert!(p.is_valid(), "{text}: {:?}", p.diagnostics);
    node::plan(&p.kickstart).0
}

#[test]
fn the_password_is_kept_plain_or_hashed() {
    let plain = plan_of("bootloader --append=quiet --password=grub-secret\n");
    assert_eq!(plain.bootloader_append.as_deref(), Some("quiet"));
    assert_eq!(
        plain.bootloader_password,
        Some(BootPassword::Plain("grub-secret".into()))
    );
    let crypted = plan_of(&format!("bootloader --iscrypted --password={HASH}\n"));
    assert_eq!(
        crypted.bootloader_password,
        Some(BootPassword::Pbkdf2(HASH.into()))
    );
    // --md5pass is --password=… --iscrypted, and wins over --password.
    let md5 = plan_of(&format!(
        "bootloader --password=grub-secret --md5pass={HASH}\n"
    ));
    assert_eq!(
        md5.bootloader_password,
        Some(BootPassword::Pbkdf2(HASH.into()))
    );
    // The last bootloader line is the one that counts, as for --append.
    let last = plan_of("bootloader --password=a\nbootloader --append=quiet\n");
    assert_eq!(last.bootloader_password, None);
    assert_eq!(
        plan_of("bootloader --password=\n").bootloader_password,
        None
    );
    assert_eq!(
        plan_of("bootloader --iscrypted\n").bootloader_password,
        None
    );
}

#[test]
fn the_plan_shows_what_kind_of_password_never_the_password() {
    let plan = plan_of("bootloader --password=grub-secret\n");
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("\"bootloader_password\":\"plain\""), "{json}");
    assert!(!json.contains("grub-secret"), "{json}");
    let debug = format!("{plan:?}");
    assert!(!debug.contains("grub-secret"), "{debug}");
    let none = serde_json::to_string(&plan_of("autopart --type=thinp\n")).unwrap();
    assert!(none.contains("\"bootloader_password\":null"), "{none}");
}

#[test]
fn a_bad_crypted_password_is_refused_on_its_file_and_line() {
    let loader = MemLoader(
        [
            (
                PathBuf::from("/ks/main.ks"),
                "text\n%include disk.ks\nrootpw --lock\n".to_string(),
            ),
            (
                PathBuf::from("/ks/disk.ks"),
                "# disks and boot loader\nautopart --type=thinp\nbootloader --iscrypted --password=grub-secret\n".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    );
    let p = kickstart::parse_file(Path::new("/ks/main.ks"), &loader);
    assert!(!p.is_valid());
    let d: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(
            "/ks/disk.ks:3: error: bootloader: the value of --password with --iscrypted is not a grub PBKDF2 hash (grub.pbkdf2.sha512.ITERATIONS.SALT.HASH, as grub-mkpasswd-pbkdf2 prints it): it does not begin with grub.pbkdf2.sha512.;"
        ),
        "{d:?}"
    );
    // The value may be a plain password given with --iscrypted by mistake:
    // it is not repeated.
    assert!(!d[0].contains("grub-secret"), "{d:?}");

    let p = parse_str(
        "ks.cfg",
        &format!(
            "text\n\nbootloader --md5pass={}\n",
            &HASH[..HASH.len() - 100]
        ),
        &MemLoader::default(),
    );
    let d: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(
            "ks.cfg:3: error: bootloader: the value of --md5pass is not a grub PBKDF2 hash"
        ),
        "{d:?}"
    );
    assert!(
        d[0].contains("the hash has 14 bytes, fewer than 16"),
        "{d:?}"
    );
}

#[test]
fn the_menu_timeout_is_kept_and_checked() {
    assert_eq!(
        plan_of("bootloader --timeout=1\n").bootloader_timeout,
        Some(1)
    );
    assert_eq!(
        plan_of("bootloader --timeout=0\n").bootloader_timeout,
        Some(0)
    );
    assert_eq!(
        plan_of("bootloader --append=quiet\n").bootloader_timeout,
        None
    );
    let p = parse_str("ks.cfg", "bootloader --timeout=-1\n", &MemLoader::default());
    assert!(!p.is_valid());
    let shown = format!("{:?}", p.diagnostics);
    assert!(
        shown.contains("--timeout") && shown.contains("0 to 600"),
        "{shown}"
    );
}
