//! The boot loader password of `bootloader --password`, as Anaconda sets
//! it: grub's superuser `root` with a PBKDF2 hash in `/boot/grub/user.cfg`
//! (see [`layers::boot::USER_CFG`]), which the menu reads. A plain password
//! is hashed here, as `grub-mkpasswd-pbkdf2` would (PBKDF2-HMAC-SHA512,
//! 10000 iterations, a random 64-byte salt, a 64-byte hash, upper-case
//! hex); only the hash is ever written.

use std::path::Path;

use anyhow::Result;
use kickstart::grub_password::{BootPassword, PBKDF2_PREFIX};
use sha2::Sha512;

use crate::Log;

/// What grub-mkpasswd-pbkdf2 uses by default.
pub const ITERATIONS: u32 = 10_000;
pub const SALT_BYTES: usize = 64;
pub const HASH_BYTES: usize = 64;

/// `grub.pbkdf2.sha512.ITERATIONS.SALT.HASH` of `password` with `salt`.
pub fn pbkdf2_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut hash = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut hash);
    format!(
        "{PBKDF2_PREFIX}{iterations}.{}.{}",
        hex::encode_upper(salt),
        hex::encode_upper(hash)
    )
}

/// The grub PBKDF2 hash of a plain password, with a new random salt.
pub fn pbkdf2(password: &str) -> Result<String> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| {
        anyhow::anyhow!(
            "drawing a random salt for the boot loader password: {e}; the system's random \
             number source is not available (check that /dev/urandom exists), then install again"
        )
    })?;
    Ok(pbkdf2_with_salt(password, &salt, ITERATIONS))
}

/// The hash to write: a plain password hashed, a hash as given (the
/// kickstart parser checked its form).
pub fn grub_hash(password: &BootPassword) -> Result<String> {
    match password {
        BootPassword::Plain(p) => pbkdf2(p),
        BootPassword::Pbkdf2(h) => Ok(h.clone()),
    }
}

/// Writes the installed system's `boot/grub/user.cfg` (mode 0600) for
/// `password`.
pub fn install(boot: &Path, password: &BootPassword, log: &Log) -> Result<()> {
    let hash = grub_hash(password)?;
    layers::boot::write_user_cfg(boot, &hash)?;
    log.line(&format!(
        "boot loader password set in /boot/{}: editing a boot entry or opening grub's \
         shell asks for user root and that password; booting asks for nothing",
        layers::boot::USER_CFG
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    use super::*;
    use kickstart::grub_password::parse_pbkdf2;

    /// Whether `hash` (grub's form) is the hash of `password`: recomputed
    /// with its own salt, iteration count and length.
    fn verifies(password: &str, hash: &str) -> bool {
        let h = parse_pbkdf2(hash).unwrap();
        let mut out = vec![0u8; h.hash.len()];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &h.salt, h.iterations, &mut out);
        out == h.hash
    }

    #[test]
    fn a_known_vector() {
        // PBKDF2-HMAC-SHA512 of "password" with salt "salt", 1 iteration
        // (the inputs of RFC 6070's first vector; the value Python's
        // hashlib.pbkdf2_hmac("sha512", …) gives for them).
        let h = pbkdf2_with_salt("password", b"salt", 1);
        assert_eq!(
            h,
            "grub.pbkdf2.sha512.1.73616C74.867F70CF1ADE02CFF3752599A3A53DC4AF34C7A669815AE5D513554E1C8CF252C02D470A285A0501BAD999BFE943C08F050235D7D68B1DA55E63F73B60A57FCE"
        );
    }

    #[test]
    fn a_plain_password_is_hashed_the_way_grub_makes_and_reads_it() {
        let h = pbkdf2("grub-secret").unwrap();
        let parsed = parse_pbkdf2(&h).unwrap();
        assert_eq!(parsed.iterations, ITERATIONS);
        assert_eq!(
            (parsed.salt.len(), parsed.hash.len()),
            (SALT_BYTES, HASH_BYTES)
        );
        // Upper-case hex, as grub-mkpasswd-pbkdf2 prints it.
        assert_eq!(
            h,
            h.to_uppercase()
                .replace("GRUB.PBKDF2.SHA", "grub.pbkdf2.sha")
        );
        assert!(verifies("grub-secret", &h));
        assert!(!verifies("grub-Secret", &h));
        // A new salt every time.
        assert_ne!(pbkdf2("grub-secret").unwrap(), h);
        assert_eq!(
            grub_hash(&BootPassword::Pbkdf2(h.clone())).unwrap(),
            h,
            "a hash is written as given"
        );
    }

    #[test]
    fn hashes_match_grub_mkpasswd_pbkdf2() {
        if !hvnode_testutil::require_tool("grub-mkpasswd-pbkdf2") {
            return;
        }
        let mut child = Command::new("grub-mkpasswd-pbkdf2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"grub-secret\ngrub-secret\n").unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let grubs = text
            .split_whitespace()
            .find(|w| w.starts_with(PBKDF2_PREFIX))
            .unwrap_or_else(|| panic!("no hash in {text:?}"));
        // Ours, with grub's salt, is grub's hash to the character: same
        // algorithm, same parameters, same text.
        let salt = parse_pbkdf2(grubs).unwrap().salt;
        assert_eq!(pbkdf2_with_salt("grub-secret", &salt, ITERATIONS), grubs);
        // And the reverse: grub's parameters are ours.
        let ours = parse_pbkdf2(&pbkdf2("grub-secret").unwrap()).unwrap();
        let theirs = parse_pbkdf2(grubs).unwrap();
        assert_eq!(
            (ours.iterations, ours.salt.len(), ours.hash.len()),
            (theirs.iterations, theirs.salt.len(), theirs.hash.len())
        );
    }

    #[test]
    fn user_cfg_is_root_only_and_holds_no_plain_text() {
        let d = tempfile::tempdir().unwrap();
        let log = Log::create(&d.path().join("install.log")).unwrap();
        let boot = d.path().join("boot");
        install(&boot, &BootPassword::Plain("grub-secret".into()), &log).unwrap();
        let path = boot.join(layers::boot::USER_CFG);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("grub-secret"), "{text}");
        let hash = text
            .strip_prefix("GRUB2_PASSWORD=")
            .and_then(|t| t.strip_suffix('\n'))
            .unwrap();
        assert!(verifies("grub-secret", hash), "{text}");
        // Nor does the log hold it.
        let logged = std::fs::read_to_string(log.path()).unwrap();
        assert!(logged.contains("boot loader password set"), "{logged}");
        assert!(!logged.contains("grub-secret"), "{logged}");
        // A given hash is written as it is.
        install(&boot, &BootPassword::Pbkdf2(hash.to_string()), &log).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
