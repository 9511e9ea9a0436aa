//! Secrets out of settings files before they go into a diagnostic report: the
//! value of every setting whose name looks secret becomes [`REMOVED`], and so
//! does the password of a URL (`https://user:PASSWORD@host/`). A file that
//! holds a private key is left out whole.
//!
//! A name looks secret when one of its words (split at `_`, `-`, `.` and
//! camelCase) is a password, passphrase, secret, token, credential or private
//! word, or `key` without a word that makes it something else: `key_id`,
//! `public_key`, `key_type`, `trusted_keys` name no secret. A secret's
//! `_file`, `_path` or `_dir` names where it is kept: an absolute path there is
//! kept (support needs to know which file), anything else removed. When in
//! doubt, a value is removed: a missing value costs support a question, a leaked
//! one costs the node.

use toml::{Table, Value};

/// What a removed value reads as.
pub const REMOVED: &str = "(removed)";

/// Words that make a setting secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pw",
    "pwd",
    "rootpw",
    "secret",
    "token",
    "private",
    "privkey",
    "credential",
    "apikey",
    "psk",
    "cookie",
];

/// Words that make `key` name no secret: an id, a public key, a kind or size.
const KEY_IS_NOT_SECRET_WITH: &[&str] = &[
    "id",
    "public",
    "pub",
    "fingerprint",
    "type",
    "size",
    "bits",
    "length",
    "algorithm",
    "usage",
    "trusted",
    "trust",
];

/// Words that make a secret's setting the place where it is kept.
const PLACE_WORDS: &[&str] = &["file", "path", "dir", "directory"];

/// A settings file with its secrets removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// How many values were removed.
    pub removed: usize,
}

/// The words of a setting's name, lower case, plurals made singular.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut word));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    words.push(word);
    words
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| match w.strip_suffix('s') {
            Some(one) if one.len() > 2 && !w.ends_with("ss") => one.to_string(),
            _ => w,
        })
        .collect()
}

/// What a setting's name says its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Secret,
    /// Where a secret is kept (`password_file`, `key_path`).
    SecretsPlace,
}

fn kind(key: &str) -> Kind {
    let words = words(key);
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let secret =
        has(SECRET_WORDS) || (words.iter().any(|w| w == "key") && !has(KEY_IS_NOT_SECRET_WITH));
    match (secret, has(PLACE_WORDS)) {
        (false, _) => Kind::Plain,
        (true, false) => Kind::Secret,
        (true, true) => Kind::SecretsPlace,
    }
}

/// Whether a setting named `key` holds a secret (its place aside).
pub fn is_secret_key(key: &str) -> bool {
    kind(key) != Kind::Plain
}

/// An absolute path of plain characters, which no secret looks like.
fn is_plain_path(value: &str) -> bool {
    value.starts_with('/')
        && value.len() > 1
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        && !value.contains("//")
}

/// Whether the value of setting `key` is kept as it is.
fn keeps(key: &str, value: &str) -> bool {
    match kind(key) {
        Kind::Plain => true,
        Kind::Secret => false,
        Kind::SecretsPlace => is_plain_path(value.trim().trim_matches(['"', '\''])),
    }
}

/// `value` with the password of any URL in it (`scheme://user:PASSWORD@host`)
/// replaced; the count of those replaced.
fn without_url_passwords(value: &str) -> (String, usize) {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut removed = 0;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| "/?#\"' \t".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(userinfo_end) if authority[..userinfo_end].contains(':') => {
                let colon = authority[..userinfo_end].find(':').unwrap_or(0);
                out.push_str(&authority[..=colon]);
                out.push_str(REMOVED);
                out.push_str(&authority[userinfo_end..]);
                removed += 1;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    (out, removed)
}

/// Whether `text` holds a private key (PEM), which never goes into a report.
pub fn holds_private_key(text: &str) -> bool {
    text.contains("PRIVATE KEY-----") || text.contains("BEGIN OPENSSH PRIVATE")
}

/// Whether a file named `name` is a private key by its name (`*.key`,
/// `*-key.pem`, `*_key`), never read for a report.
pub fn is_key_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".key") || n.ends_with("-key.pem") || n.ends_with("_key") || n.ends_with(".pem.key")
}

/// A TOML file with its secrets removed. A file that does not parse is
/// redacted line by line ([`redact_lines`]): support wants to see a broken
/// file too. The comments and the order of a file that parses are not kept.
pub fn redact_toml(text: &str) -> Redacted {
    let Ok(mut table) = text.parse::<Table>() else {
        return redact_lines(text);
    };
    let mut removed = 0;
    redact_table(&mut table, &mut removed);
    match toml::to_string_pretty(&table) {
        Ok(text) => Redacted { text, removed },
        Err(_) => redact_lines(text),
    }
}

fn redact_table(table: &mut Table, removed: &mut usize) {
    for (key, value) in table.iter_mut() {
        let kept = match value {
            Value::String(s) => keeps(key, s),
            _ => kind(key) == Kind::Plain,
        };
        if !kept {
            *value = Value::String(REMOVED.into());
            *removed += 1;
            continue;
        }
        redact_value(value, removed);
    }
}

fn redact_value(value: &mut Value, removed: &mut usize) {
    match value {
        Value::Table(t) => redact_table(t, removed),
        Value::Array(a) => a.iter_mut().for_each(|v| redact_value(v, removed)),
        Value::String(s) => {
            let (clean, n) = without_url_passwords(s);
            if n > 0 {
                *s = clean;
                *removed += n;
            }
        }
        _ => {}
    }
}

/// A `key=value` (or `key: value`, `key value`, `export KEY=value`) file with
/// its secrets removed, line by line; comments are redacted as settings are
/// (a commented-out password is still a password).
pub fn redact_lines(text: &str) -> Redacted {
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let (line, n) = redact_line(body);
        removed += n;
        out.push_str(&line);
        out.push_str(newline);
    }
    Redacted { text: out, removed }
}

fn redact_line(line: &str) -> (String, usize) {
    let lead_len = line.len()
        - line
            .trim_start_matches(|c: char| c.is_whitespace() || c == '#' || c == ';')
            .len();
    let (lead, rest) = line.split_at(lead_len);
    let (export, rest) = match rest.strip_prefix("export ") {
        Some(r) => ("export ", r),
        None => ("", rest),
    };
    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
        .unwrap_or(rest.len());
    let (key, after) = rest.split_at(key_len);
    let sep_len = after.len()
        - after
            .trim_start_matches(|c: char| c.is_whitespace() || c == '=' || c == ':')
            .len();
    let (sep, value) = after.split_at(sep_len);
    if key.is_empty() || sep.is_empty() || value.is_empty() || keeps(key, value) {
        return without_url_passwords(line);
    }
    (format!("{lead}{export}{key}{sep}{REMOVED}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_names_that_only_look_so() {
        for key in [
            "password",
            "root_password",
            "rootpw",
            "db-pass",
            "PASSWD",
            "passphrase",
            "client_secret",
            "secrets",
            "token",
            "apiToken",
            "api_key",
            "apiKey",
            "key",
            "private",
            "private_key",
            "privateKey",
            "ssh_key",
            "host_keys",
            "credentials",
            "session_cookie",
            "wifi_psk",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "key_id",
            "keyid",
            "public_key",
            "pubkey",
            "key_type",
            "key_size",
            "trusted_keys",
            "keyboard",
            "keymap",
            "passthrough",
            "engine_fingerprint",
            "listen",
            "admin_groups",
            "helper_socket",
            "sysroot",
            "address",
            "compass",
        ] {
            assert!(!is_secret_key(key), "{key} should not be secret");
        }
    }

    #[test]
    fn toml_secrets_are_removed_in_tables_arrays_and_inline_tables() {
        let text = r#"
# the agent
listen = "[::]:9090"
password = "hunter2"
key_id = "ABCD1234"
tls_key_file = "/etc/hvnode/ws-certs.d/0-self-signed.key"
token_file = "c2VjcmV0"
engine_url = "https://admin:s3cr3t@engine.example.com/ovirt-engine"
[registration]
engine = "engine.example.com"
auth = { user = "admin", password = "p4ss" }
[[mirrors]]
url = "https://mirror.example.com/"
api_key = "k3y"
[secret]
anything = "x"
"#;
        let r = redact_toml(text);
        for gone in ["hunter2", "c2VjcmV0", "s3cr3t", "p4ss", "k3y", "anything"] {
            assert!(!r.text.contains(gone), "{gone} left in:\n{}", r.text);
        }
        for kept in [
            "[::]:9090",
            "ABCD1234",
            "/etc/hvnode/ws-certs.d/0-self-signed.key",
            "https://admin:(removed)@engine.example.com/ovirt-engine",
            "engine.example.com",
            "https://mirror.example.com/",
        ] {
            assert!(r.text.contains(kept), "{kept} missing from:\n{}", r.text);
        }
        assert_eq!(r.removed, 6, "{}", r.text);
        // What comes out is TOML still.
        let t: Table = r.text.parse().unwrap();
        assert_eq!(t["password"].as_str(), Some(REMOVED));
    }

    #[test]
    fn a_broken_toml_file_is_redacted_line_by_line() {
        let r = redact_toml("listen = \"[::]:9090\"\npassword = \"unterminated\n[oops\n");
        assert_eq!(
            r.text,
            "listen = \"[::]:9090\"\npassword = (removed)\n[oops\n"
        );
        assert_eq!(r.removed, 1);
    }

    #[test]
    fn conf_lines_keep_their_shape_and_comments_are_redacted_too() {
        let text = "engine=engine.example.com\n\
                    engine_fingerprint=SHA256:abcd\n\
                    # password=old-one\n\
                    export API_TOKEN=\"xyz\"\n\
                    Password: hunter2\n\
                    secret   plain words\n\
                    key_file=/etc/pki/vdsm/keys/vdsmkey.pem\n\
                    key_file=not a path\n\
                    url=https://u:pw@host:443/x\n\
                    plain line without value\n\
                    node_name=node1";
        let r = redact_lines(text);
        assert_eq!(
            r.text,
            "engine=engine.example.com\n\
             engine_fingerprint=SHA256:abcd\n\
             # password=(removed)\n\
             export API_TOKEN=(removed)\n\
             Password: (removed)\n\
             secret   (removed)\n\
             key_file=/etc/pki/vdsm/keys/vdsmkey.pem\n\
             key_file=(removed)\n\
             url=https://u:(removed)@host:443/x\n\
             plain line without value\n\
             node_name=node1"
        );
        assert_eq!(r.removed, 6);
    }

    #[test]
    fn private_keys_are_known_by_name_and_by_content() {
        for name in ["ws.key", "vdsm-key.pem", "ssh_host_ed25519_key", "X.KEY"] {
            assert!(is_key_file(name), "{name}");
        }
        for name in ["agent.toml", "hvnode-ABCD.pub", "ws.cert", "keys.conf"] {
            assert!(!is_key_file(name), "{name}");
        }
        assert!(holds_private_key(
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
        ));
        assert!(holds_private_key("-----BEGIN EC PRIVATE KEY-----"));
        assert!(!holds_private_key("-----BEGIN CERTIFICATE-----"));
    }
}
