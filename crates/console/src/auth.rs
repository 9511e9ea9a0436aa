//! Password checks through PAM and the admin-group rule.

use std::ffi::CString;

use nix::unistd::{Group, User, getgrouplist};
use pam_client::conv_mock::Conversation;
use pam_client::{Context, Flag};

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password (PAM does not tell which, neither do we).
    #[error("wrong user name or password")]
    BadCredentials,
    /// The password was right but the account may not use the console.
    #[error("{0} is not root and not in an admin group ({1})")]
    NotAdmin(String, String),
    /// The account is locked or expired (PAM's account management said no).
    #[error("account {0} may not log in: {1}")]
    AccountRefused(String, String),
    /// PAM could not be used at all (missing service file, broken module).
    #[error("PAM service {0}: {1}")]
    Pam(String, String),
}

/// Checks `user`'s `password` with PAM service `service` and that the user is root or
/// a member of one of `admin_groups`. Blocking: call from a blocking thread.
pub fn authenticate(
    service: &str,
    user: &str,
    password: &str,
    admin_groups: &[String],
) -> Result<(), AuthError> {
    if user.is_empty() || password.is_empty() || user.contains('\0') || password.contains('\0') {
        return Err(AuthError::BadCredentials);
    }
    let conv = Conversation::with_credentials(user, password);
    let mut ctx = Context::new(service, Some(user), conv)
        .map_err(|e| AuthError::Pam(service.to_string(), e.to_string()))?;
    ctx.authenticate(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|_| AuthError::BadCredentials)?;
    ctx.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| AuthError::AccountRefused(user.to_string(), e.to_string()))?;
    if is_admin(user, admin_groups) {
        Ok(())
    } else {
        Err(AuthError::NotAdmin(
            user.to_string(),
            admin_groups.join(", "),
        ))
    }
}

/// Whether `user` is root or a member of one of `admin_groups` (primary or
/// supplementary).
pub fn is_admin(user: &str, admin_groups: &[String]) -> bool {
    let Ok(Some(account)) = User::from_name(user) else {
        return false;
    };
    if account.uid.is_root() {
        return true;
    }
    let Ok(name) = CString::new(user) else {
        return false;
    };
    let Ok(gids) = getgrouplist(&name, account.gid) else {
        return false;
    };
    gids.into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten())
        .any(|g| admin_groups.contains(&g.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_admin_and_unknown_users_are_not() {
        assert!(is_admin("root", &[]));
        assert!(!is_admin("no-such-user-hvnode", &["root".into()]));
    }

    #[test]
    fn empty_or_nul_credentials_never_reach_pam() {
        for (u, p) in [("", "x"), ("root", ""), ("ro\0ot", "x"), ("root", "a\0b")] {
            assert_eq!(
                authenticate("no-such-service", u, p, &[]),
                Err(AuthError::BadCredentials)
            );
        }
    }
}
