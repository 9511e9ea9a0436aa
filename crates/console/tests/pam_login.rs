//! Logins through real PAM with real local accounts created for the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{PamService, Server, TestUser, get, login, login_from, post_form, session_cookie};

/// Forgets `user`'s failed logins, as an admin would with `faillock --reset`.
fn faillock_reset(user: &str) {
    let out = Command::new("faillock")
        .args(["--user", user, "--reset"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// pam_faillock of the shipped stack locks an account after 5 failures (deny=5): then
/// even the right password is refused, from any client, exactly as a wrong one, until
/// the failures are reset.
#[test]
fn an_account_locked_by_faillock_is_refused_even_with_the_right_password() {
    if !hvnode_testutil::require_tool("faillock") {
        return;
    }
    let pam = PamService::install();
    let user = TestUser::create(Some("hvlck"));
    let group = user.group().to_string();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
    });
    // Five failures, from as many clients so the console's own throttle (per client)
    // lets each reach PAM.
    std::thread::scope(|scope| {
        let attempts: Vec<_> = (1..=5)
            .map(|i| {
                let (server, user) = (&server, &user);
                scope.spawn(move || {
                    login_from(
                        format!("127.0.5.{i}").parse().unwrap(),
                        server,
                        &user.name,
                        "wrong-password",
                    )
                })
            })
            .collect();
        for attempt in attempts {
            assert_eq!(attempt.join().unwrap().status, 401);
        }
    });
    let start = Instant::now();
    let r = login_from(
        "127.0.5.9".parse().unwrap(),
        &server,
        &user.name,
        &user.password,
    );
    let took = start.elapsed();
    assert_eq!(r.status, 401, "locked: {}", r.body);
    assert!(r.body.contains("Wrong user name or password"), "{}", r.body);
    assert!(session_cookie(&r).is_none());
    assert!(
        took >= Duration::from_millis(1200),
        "a locked account takes as long as a wrong password (pam_faildelay): {took:?}"
    );
    // The lock was the reason: reset, the same password works.
    faillock_reset(&user.name);
    let r = login_from(
        "127.0.5.9".parse().unwrap(),
        &server,
        &user.name,
        &user.password,
    );
    assert_eq!(r.status, 303, "after faillock --reset: {}", r.body);
}

/// A session module (pam_exec, run on open_session and close_session) sees each
/// login's PAM session open with the client's address and the console's PAM_TTY, and
/// close at logout.
#[test]
fn a_login_opens_a_pam_session_and_logout_closes_it() {
    login_opens_and_logout_closes_a_pam_session(false);
}

/// The same through the privileged helper on its socket: the web side holds no PAM
/// handle, and closing its connection at logout closes the helper's session.
#[test]
fn through_the_helper_a_login_opens_a_pam_session_and_logout_closes_it() {
    login_opens_and_logout_closes_a_pam_session(true);
}

fn login_opens_and_logout_closes_a_pam_session(through_helper: bool) {
    let pam_exec = [
        "/usr/lib/x86_64-linux-gnu/security/pam_exec.so",
        "/usr/lib64/security/pam_exec.so",
        "/lib/security/pam_exec.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    let Some(pam_exec) = pam_exec else {
        hvnode_testutil::require_path(Path::new("/usr/lib/x86_64-linux-gnu/security/pam_exec.so"));
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("sessions");
    let script = dir.path().join("session-hook");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER $PAM_RHOST $PAM_TTY\" >> {}\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pam = PamService::install_with(&format!(
        "session    required                   {pam_exec} {}\n",
        script.display()
    ));
    let user = TestUser::create(Some("hvses"));
    let group = user.group().to_string();
    let tweak = |c: &mut console::Config| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group.clone()];
    };
    let helper = through_helper.then(|| {
        let mut config = console::Config::default();
        tweak(&mut config);
        common::Helper::start(&config, None)
    });
    let server = match &helper {
        Some(h) => Server::start_with_auth(h.remote(), tweak),
        None => Server::start(tweak),
    };
    let lines = || std::fs::read_to_string(&marker).unwrap_or_default();
    let s = login(&server, &user.name, &user.password).unwrap();
    assert_eq!(
        lines(),
        format!("open_session {} 127.0.0.1 hvnode-console\n", user.name),
        "opened before the login is answered"
    );
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
    let out = post_form(
        &server.url("/logout"),
        Some(&s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert_eq!(out.status, 303);
    // Closed on the session's own thread, after the logout is answered.
    let closed = format!("close_session {} 127.0.0.1 hvnode-console\n", user.name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines().ends_with(&closed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        lines(),
        format!(
            "open_session {} 127.0.0.1 hvnode-console\n{closed}",
            user.name
        )
    );
    // A refused login opens no session.
    assert!(login(&server, &user.name, "wrong-password").is_err());
    assert_eq!(lines().lines().count(), 2, "{}", lines());
    let Some(helper) = helper else {
        return;
    };
    // The helper stopping (systemctl stop, a restart) closes the PAM session it
    // holds before it exits, and the web session it belonged to ends with it.
    let s = login(&server, &user.name, &user.password).unwrap();
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
    helper.stop();
    assert!(lines().ends_with(&closed), "{}", lines());
    assert_eq!(lines().lines().count(), 4, "{}", lines());
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        401,
        "the web session ends with the helper's"
    );
}

#[test]
fn admin_group_member_logs_in_with_the_right_cookie_and_out_again() {
    let pam = PamService::install();
    let user = TestUser::create(Some("hvadm"));
    let group = user.group().to_string();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
    });
    let r = post_form(
        &server.url("/login"),
        None,
        &[],
        &format!(
            "username={}&password={}",
            user.name,
            common::enc(&user.password)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/"));
    let set_cookie = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let s = login(&server, &user.name, &user.password).unwrap();
    let page = get(&server.url("/"), Some(&s), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&user.name), "the user is shown");

    // Logging out ends the session for good.
    let out = post_form(
        &server.url("/logout"),
        Some(&s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        get(&server.url("/api/v1/overview"), Some(&s), &[]).status,
        401
    );
    assert_eq!(get(&server.url("/"), Some(&s), &[]).status, 303);
}

#[test]
fn wrong_password_unknown_user_and_non_admin_are_refused() {
    let pam = PamService::install();
    let user = TestUser::create(None);
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec!["sudo".into(), "wheel".into()];
    });
    // At once: PAM delays each refusal by seconds.
    std::thread::scope(|scope| {
        let attempts: Vec<_> = [
            (user.name.as_str(), "wrong-password", "wrong password"),
            ("no-such-user-hv", "whatever", "unknown user"),
        ]
        .map(|(name, password, why)| {
            (
                why,
                scope.spawn(|| login(&server, name, password).unwrap_err()),
            )
        })
        .into_iter()
        .collect();
        for (why, attempt) in attempts {
            let r = attempt.join().unwrap();
            assert_eq!(r.status, 401, "{why}");
            assert!(
                r.body.contains("Wrong user name or password"),
                "{why}: {}",
                r.body
            );
            assert!(session_cookie(&r).is_none());
        }
    });
    // The right password of an account outside the admin groups is not enough, and
    // the answer does not say it was right.
    let r = login(&server, &user.name, &user.password).unwrap_err();
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong user name or password"), "{}", r.body);
}

#[test]
fn failed_logins_are_throttled_with_retry_after() {
    let pam = PamService::install();
    let user = TestUser::create(Some("hvthr"));
    let group = user.group().to_string();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
    });
    // At once: PAM delays each refusal by seconds. All of them are below the limit,
    // so each reaches PAM and counts.
    std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..console::session::PER_CLIENT)
            .map(|_| scope.spawn(|| login(&server, &user.name, "wrong").unwrap_err()))
            .collect();
        for attempt in attempts {
            assert_eq!(attempt.join().unwrap().status, 401);
        }
    });
    // Now even the right password is refused until the window has passed.
    let r = login(&server, &user.name, &user.password).unwrap_err();
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Once the window has passed the right password works again, once pam_faillock
    // of the shipped stack (deny=5) has forgotten the failures too.
    server
        .clock
        .advance(console::session::WINDOW + Duration::from_secs(1));
    if !hvnode_testutil::require_tool("faillock") {
        return;
    }
    faillock_reset(&user.name);
    login(&server, &user.name, &user.password).unwrap();
}

#[test]
fn idle_sessions_expire() {
    let pam = PamService::install();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.idle_timeout_secs = 1;
    });
    let s = server.session("root");
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
    // One second idle is allowed; the request above counted as activity.
    server.clock.advance(Duration::from_millis(1000));
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
    server.clock.advance(Duration::from_millis(2200));
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        401
    );
    assert_eq!(
        server.state.session_count(),
        0,
        "the expired session is forgotten"
    );
}

#[test]
fn broken_pam_service_is_a_clear_error_not_a_login() {
    let server = Server::start(|c| c.pam_service = "hvnode-does-not-exist".into());
    let r = login(&server, "root", "x").unwrap_err();
    // Linux-PAM falls back to /etc/pam.d/other, which denies: either way, no session.
    assert!(
        r.status == 401 || r.status == 503,
        "{} {}",
        r.status,
        r.body
    );
    assert!(session_cookie(&r).is_none());
}

#[test]
fn a_non_admins_right_password_answers_exactly_as_a_wrong_one() {
    let pam = PamService::install();
    let outsider = TestUser::create(None);
    let admin = TestUser::create(Some("hvcmp"));
    let group = admin.group().to_string();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
    });
    let timed = |from: &str, user: &str, password: &str| {
        let start = Instant::now();
        let r = login_from(from.parse().unwrap(), &server, user, password);
        (r, start.elapsed())
    };
    let (right, wrong, admin_wrong) = std::thread::scope(|scope| {
        let right = scope.spawn(|| timed("127.0.4.1", &outsider.name, &outsider.password));
        let wrong = scope.spawn(|| timed("127.0.4.2", &outsider.name, "wrong-password"));
        let admin_wrong = scope.spawn(|| timed("127.0.4.3", &admin.name, "wrong-password"));
        (
            right.join().unwrap(),
            wrong.join().unwrap(),
            admin_wrong.join().unwrap(),
        )
    });
    assert_eq!(right.0.status, 401, "{}", right.0.body);
    assert_eq!(right.0.status, wrong.0.status);
    assert_eq!(right.0.body, wrong.0.body);
    assert!(right.0.body.contains("Wrong user name or password"));
    assert!(session_cookie(&right.0).is_none());
    assert_eq!(admin_wrong.0.status, 401);
    // PAM refuses a wrong password after about 2 s (pam_unix, randomized by libpam);
    // a refusal that did not need PAM takes as long.
    for (what, (_, took)) in [
        ("right password, no admin", &right),
        ("wrong password, no admin", &wrong),
        ("wrong password, admin", &admin_wrong),
    ] {
        assert!(
            (Duration::from_millis(1200)..Duration::from_millis(3500)).contains(took),
            "{what}: {took:?}"
        );
    }
}

/// An expired account, and an account whose password has expired, are refused by PAM's
/// account check (pam_acct_mgmt) after a right password, with the same answer as a
/// wrong password; no session is opened for them.
#[test]
fn expired_accounts_and_passwords_answer_as_a_wrong_password() {
    if !hvnode_testutil::require_tool("chage") {
        return;
    }
    let pam = PamService::install();
    let expired = TestUser::create(Some("hvexa"));
    let stale = TestUser::create(Some("hvexp"));
    let (ga, gp) = (expired.group().to_string(), stale.group().to_string());
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![ga, gp];
    });
    for (user, how) in [(&expired, ["-E", "0"]), (&stale, ["-d", "0"])] {
        let out = Command::new("chage")
            .args(how)
            .arg(&user.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    for (user, what) in [(&expired, "account expired"), (&stale, "password expired")] {
        let r = login(&server, &user.name, &user.password).unwrap_err();
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(
            r.body.contains("Wrong user name or password"),
            "{what}: {}",
            r.body
        );
        assert!(session_cookie(&r).is_none(), "{what}");
    }
    assert_eq!(server.state.session_count(), 0);
}
