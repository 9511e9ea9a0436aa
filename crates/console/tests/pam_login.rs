//! Logins through real PAM with real local accounts created for the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{PamService, Server, TestUser, get, login, post_form, session_cookie};

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
    // Once the window has passed the right password works again.
    server
        .clock
        .advance(console::session::WINDOW + Duration::from_secs(1));
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
        let start = std::time::Instant::now();
        let r = common::login_from(from.parse().unwrap(), &server, user, password);
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
