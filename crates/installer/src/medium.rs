//! What a boot medium customised by `hvnode iso customize` adds to an
//! install, besides its kickstart ([`crate::source`]): the engine to
//! register with, as if the kickstart had `%addon org_hvnode_register`
//! (the kickstart's own addon wins), and trusted keys, which verify the
//! image being installed and go into the node's `/etc/hvnode/trusted.d`
//! ([`crate::target::write_trusted_keys`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use iso_custom::{Engine, TrustKey};
use kickstart::addon::REGISTER_ADDON;
use kickstart::sections::RawSection;
use kickstart::{Item, Kickstart, Loc, Located};

/// Adds `%addon org_hvnode_register` for `engine` to `ks` unless it has
/// one; whether it did.
pub fn add_registration(ks: &mut Kickstart, engine: &Engine) -> bool {
    if ks.addons(REGISTER_ADDON).next().is_some() {
        return false;
    }
    let mut words = vec![
        REGISTER_ADDON.to_string(),
        format!("--engine={}", engine.address()),
    ];
    if let Some(fp) = &engine.fingerprint {
        words.push(format!("--fingerprint={fp}"));
    }
    ks.items.push(Located {
        loc: Loc::new(iso_custom::AreaKind::Installer.path(), 1),
        value: Item::Raw(RawSection {
            section: "%addon".into(),
            words,
            body: Vec::new(),
        }),
    });
    true
}

/// A folder under `work` holding the `*.pub` keys of `live` (the live
/// system's trusted keys) and `extra`: what the image is verified with.
pub fn trusted_keys_dir(live: &Path, extra: &[TrustKey], work: &Path) -> Result<PathBuf> {
    let dir = work.join("trusted.d");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Ok(entries) = fs::read_dir(live) {
        for e in entries {
            let p = e
                .with_context(|| format!("reading {}", live.display()))?
                .path();
            if let (Some(name), true) = (p.file_name(), p.extension().is_some_and(|x| x == "pub")) {
                fs::copy(&p, dir.join(name))
                    .with_context(|| format!("copying the trusted key {}", p.display()))?;
            }
        }
    }
    for k in extra {
        let p = dir.join(k.file_name());
        fs::write(&p, &k.text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KS: &str = "rootpw --lock\nautopart --type=thinp\n";

    fn engine() -> Engine {
        Engine {
            host: "engine.example.com".into(),
            port: 8443,
            fingerprint: Some(
                "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            ),
        }
    }

    #[test]
    fn the_medium_engine_registers_unless_the_kickstart_says_otherwise() {
        let loader = kickstart::source::FsLoader;
        let mut ks = kickstart::parse_str("ks.cfg", KS, &loader).kickstart;
        assert!(add_registration(&mut ks, &engine()));
        let (plan, diags) = kickstart::node::plan(&ks);
        assert!(!diags.has_errors(), "{diags:?}");
        let r = plan.registration.unwrap();
        assert_eq!(
            (r.engine_host.as_str(), r.engine_port),
            ("engine.example.com", 8443)
        );
        assert!(r.fingerprint.unwrap().starts_with("SHA256:0123"));
        // The effective kickstart (kept on the node) shows it.
        assert!(
            kickstart::render(&ks)
                .contains("%addon org_hvnode_register --engine=engine.example.com:8443")
        );

        let own = format!("{KS}%addon org_hvnode_register --engine=mine.example.com\n%end\n");
        let mut ks = kickstart::parse_str("ks.cfg", &own, &loader).kickstart;
        assert!(!add_registration(&mut ks, &engine()));
        let (plan, _) = kickstart::node::plan(&ks);
        assert_eq!(plan.registration.unwrap().engine_host, "mine.example.com");
    }

    #[test]
    fn the_image_is_checked_with_the_live_and_the_medium_keys() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("live");
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join("hvnode-A.pub"), "a\n").unwrap();
        fs::write(live.join("README"), "not a key\n").unwrap();
        let extra = [TrustKey {
            key_id: "B".into(),
            text: "b\n".into(),
        }];
        let dir = trusted_keys_dir(&live, &extra, &d.path().join("work")).unwrap();
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["hvnode-A.pub", "iso-B.pub"]);
    }
}
