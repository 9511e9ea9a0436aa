//! Keys: the secret key a build signs with ([`SignKey`]) and the public
//! keys a node trusts ([`TrustedKeys`]), both in minisign's file formats;
//! detached signatures ([`Signature`]) and their check against a trusted
//! key while the signed file is read ([`SignatureCheck`]).

use std::fmt;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::{BundleError, WriteError};
use crate::{SIGN_KEY_ENV, SIGN_KEY_PASSWORD_ENV, signature_path};

/// minisign's key id: the 8-byte key number as a little-endian integer in
/// upper-case hex, as `minisign` prints it.
fn key_id(keynum: &[u8]) -> String {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(keynum) {
        *d = *s;
    }
    format!("{:016X}", u64::from_le_bytes(b))
}

/// A decrypted minisign secret key.
pub struct SignKey {
    path: PathBuf,
    key: minisign::SecretKey,
    public: minisign::PublicKey,
    key_id: String,
}

impl fmt::Debug for SignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignKey")
            .field("path", &self.path)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SignKey {
    /// Reads the minisign secret key file `path` (`minisign -G` makes one;
    /// with `-W` it is unencrypted). An encrypted key needs `password`;
    /// nothing is ever asked on the terminal.
    pub fn load(path: &Path, password: Option<&str>) -> Result<SignKey, WriteError> {
        let text =
            fs::read_to_string(path).map_err(WriteError::io("reading the secret key", path))?;
        let sk_box =
            minisign::SecretKeyBox::from_string(&text).map_err(|e| WriteError::BadKey {
                key: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let unencrypted = minisign::SecretKey::from_unencrypted_box(sk_box.clone())
            .map_err(|e| (e, without_checksum(&text)));
        let key = match unencrypted {
            Ok(k) | Err((_, Some(k))) => k,
            Err((unencrypted, None)) => match password {
                // `from_box` with no password would prompt on the terminal.
                None => {
                    return Err(WriteError::KeyNeedsPassword {
                        key: path.to_path_buf(),
                        env: SIGN_KEY_PASSWORD_ENV,
                        detail: unencrypted.to_string(),
                    });
                }
                Some(p) => {
                    minisign::SecretKey::from_box(sk_box, Some(p.to_string())).map_err(|e| {
                        WriteError::BadKey {
                            key: path.to_path_buf(),
                            reason: e.to_string(),
                        }
                    })?
                }
            },
        };
        let bad = |e: minisign::PError| WriteError::BadKey {
            key: path.to_path_buf(),
            reason: e.to_string(),
        };
        let public = minisign::PublicKey::from_secret_key(&key).map_err(bad)?;
        // A signature the key's own public key checks: the key is whole.
        minisign::sign(Some(&public), &key, &b""[..], None, None).map_err(bad)?;
        Ok(SignKey {
            path: path.to_path_buf(),
            key_id: key_id(key.keynum()),
            key,
            public,
        })
    }

    /// The key named by `HVNODE_SIGN_KEY`, with the password in
    /// `HVNODE_SIGN_KEY_PASSWORD` if set; `None` when the first is unset
    /// or empty.
    pub fn from_env() -> Result<Option<SignKey>, WriteError> {
        let Some(path) = std::env::var_os(SIGN_KEY_ENV).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let password = std::env::var(SIGN_KEY_PASSWORD_ENV).ok();
        SignKey::load(Path::new(&path), password.as_deref()).map(Some)
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key id, as `minisign` prints it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key file's text (what goes into a node's trusted keys).
    pub fn public_key_file(&self) -> String {
        match self.public.to_box() {
            Ok(b) => b.into_string(),
            Err(_) => String::new(),
        }
    }

    /// Signs `bundle` (pre-hashed, as `minisign -S` does) and writes
    /// `bundle.minisig` beside it. The trusted comment carries `timestamp`
    /// and the file name, as `minisign -S` writes them.
    pub fn sign_bundle(&self, bundle: &Path, timestamp: u64) -> Result<PathBuf, WriteError> {
        let text = self.signature_of(bundle, bundle, timestamp)?;
        let sig = signature_path(bundle);
        fsutil::write_atomic(&sig, text.as_bytes(), fsutil::Options::default()).map_err(|e| {
            WriteError::Io {
                doing: "writing the signature",
                path: sig.clone(),
                source: e.source,
            }
        })?;
        Ok(sig)
    }

    /// The text of a signature of the file `data`, which is to be named
    /// `bundle` (its file name goes into the trusted comment).
    pub(crate) fn signature_of(
        &self,
        data: &Path,
        bundle: &Path,
        timestamp: u64,
    ) -> Result<String, WriteError> {
        let file =
            fs::File::open(data).map_err(WriteError::io("reading the update bundle", data))?;
        let name = bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let trusted = format!("timestamp:{timestamp}\tfile:{name}\thashed");
        let untrusted = format!("signature from hvnode secret key {}", self.key_id);
        let sig = minisign::sign(
            Some(&self.public),
            &self.key,
            BufReader::with_capacity(1 << 20, file),
            Some(&trusted),
            Some(&untrusted),
        )
        .map_err(|e| WriteError::Sign {
            bundle: bundle.to_path_buf(),
            key: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(sig.into_string())
    }
}

/// An unencrypted secret key as `minisign -G -W` writes it: its checksum
/// is left zero, which the minisign crate takes for a corrupted key.
/// `None` for any other key.
fn without_checksum(text: &str) -> Option<minisign::SecretKey> {
    use ct_codecs::{Base64, Decoder};
    // sig_alg, kdf_alg, chk_alg, salt, opslimit, memlimit, keynum, key, chk
    const LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
    let line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .nth(1)?;
    let bytes = Base64::decode_to_vec(line, None).ok()?;
    let unencrypted =
        bytes.len() == LEN && bytes[2..4] == [0, 0] && bytes[LEN - 32..].iter().all(|b| *b == 0);
    if !unencrypted {
        return None;
    }
    minisign::SecretKey::from_bytes(&bytes).ok()
}

/// One trusted public key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The `.pub` file it was read from.
    pub file: PathBuf,
    /// Its key id, as `minisign` prints it.
    pub key_id: String,
    pub(crate) key: minisign_verify::PublicKey,
}

/// Every minisign public key (`*.pub`) of a directory.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    pub dir: PathBuf,
    pub keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Reads every `*.pub` file of `dir`, in name order. A missing `dir`
    /// holds no keys; a `.pub` file that is not a minisign public key is an
    /// error (rather than a key silently ignored).
    pub fn load(dir: &Path) -> Result<TrustedKeys, BundleError> {
        let mut files = Vec::new();
        match fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BundleError::io("reading the trusted keys in", dir)(e)),
            Ok(entries) => {
                for e in entries {
                    let path = e
                        .map_err(BundleError::io("reading the trusted keys in", dir))?
                        .path();
                    if path.extension().is_some_and(|x| x == "pub") {
                        files.push(path);
                    }
                }
            }
        }
        files.sort();
        let keys = files
            .into_iter()
            .map(|f| read_public_key(&f))
            .collect::<Result<_, _>>()?;
        Ok(TrustedKeys {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    /// The key with id `key_id`.
    pub fn find(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }
}

/// A `minisign -G` public key file (a comment line and the key), or the
/// key's base64 line alone (what `minisign -P` takes).
pub fn read_public_key(file: &Path) -> Result<TrustedKey, BundleError> {
    let bad = |reason: String| BundleError::BadKeyFile {
        file: file.to_path_buf(),
        reason,
    };
    let text =
        fs::read_to_string(file).map_err(BundleError::io("reading the trusted key", file))?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let b64 = match lines.as_slice() {
        [key] => *key,
        [comment, key] if comment.starts_with("untrusted comment:") => *key,
        _ => {
            return Err(bad(
                "expected an \"untrusted comment:\" line and the key's base64 line".into(),
            ));
        }
    };
    let parsed = minisign::PublicKey::from_base64(b64).map_err(|e| bad(e.to_string()))?;
    let key = minisign_verify::PublicKey::from_base64(b64).map_err(|e| bad(e.to_string()))?;
    Ok(TrustedKey {
        file: file.to_path_buf(),
        key_id: key_id(parsed.keynum()),
        key,
    })
}

/// Why the text of a `.minisig` file is not a signature this project
/// accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFormatError {
    /// Not minisign's format at all.
    #[error("not a minisign signature ({0})")]
    NotMinisign(String),
    /// A legacy signature (not pre-hashed: minisign's `-l`), which cannot
    /// be checked while a large file streams by.
    #[error("a legacy minisign signature (not pre-hashed), which is refused")]
    Legacy,
}

/// A detached minisign signature (`FILE.minisig`), parsed: pre-hashed (as
/// `minisign -S` signs by default), naming the key it was made with.
#[derive(Clone)]
pub struct Signature {
    key_id: String,
    pub(crate) signature: minisign_verify::Signature,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("key_id", &self.key_id)
            .field("trusted_comment", &self.trusted_comment())
            .finish_non_exhaustive()
    }
}

impl Signature {
    /// Parses the text of a `.minisig` file.
    pub fn parse(text: &str) -> Result<Signature, SignatureFormatError> {
        let sig_box = minisign::SignatureBox::from_string(text)
            .map_err(|e| SignatureFormatError::NotMinisign(e.to_string()))?;
        if !sig_box.is_prehashed() {
            return Err(SignatureFormatError::Legacy);
        }
        let signature = minisign_verify::Signature::decode(text)
            .map_err(|e| SignatureFormatError::NotMinisign(e.to_string()))?;
        Ok(Signature {
            key_id: key_id(sig_box.keynum()),
            signature,
        })
    }

    /// The id of the key that made it, as `minisign` prints it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Its trusted comment (signed with the file).
    pub fn trusted_comment(&self) -> &str {
        self.signature.trusted_comment()
    }
}

impl TrustedKey {
    /// Starts checking `signature`, made by this key, against the bytes of
    /// the signed file, given to [`SignatureCheck::update`] as they are
    /// read. `None` when the signature names another key.
    pub fn check<'a>(&'a self, signature: &'a Signature) -> Option<SignatureCheck<'a>> {
        self.key
            .verify_stream(&signature.signature)
            .ok()
            .map(|verifier| SignatureCheck { verifier })
    }
}

/// A signature being checked while the signed file streams by.
pub struct SignatureCheck<'a> {
    verifier: minisign_verify::StreamVerifier<'a>,
}

impl fmt::Debug for SignatureCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureCheck").finish_non_exhaustive()
    }
}

impl SignatureCheck<'_> {
    /// The next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.verifier.update(bytes);
    }

    /// Whether the signature matches every byte given, in order, and its
    /// trusted comment.
    pub fn matches(&mut self) -> bool {
        self.verifier.finalize().is_ok()
    }
}

/// Reads `bundle`'s `.minisig`; a missing one is [`BundleError::Unsigned`].
pub(crate) fn bundle_signature(bundle: &Path, keys: &Path) -> Result<Signature, BundleError> {
    let path = signature_path(bundle);
    let text = match fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::Unsigned {
                bundle: bundle.to_path_buf(),
                signature: path,
                keys: keys.to_path_buf(),
            });
        }
        r => r.map_err(BundleError::io("reading the signature", &path))?,
    };
    Signature::parse(&text).map_err(|e| match e {
        SignatureFormatError::NotMinisign(reason) => BundleError::BadSignatureFile {
            bundle: bundle.to_path_buf(),
            signature: path,
            reason,
        },
        SignatureFormatError::Legacy => BundleError::LegacySignature {
            bundle: bundle.to_path_buf(),
            signature: path,
        },
    })
}
