//! Limited and administrative access (issue 16, item 6): every session starts limited
//! and may change nothing; administrative access is turned on with the password and
//! only for a user whose sudo rules allow every command as root; every change checks
//! the rights again. Most tests use stand-ins for PAM and sudo; the last ones run the
//! real sudo against a real sudoers drop-in, with real accounts and real PAM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    PamService, Reply, Server, Session, TestUser, client, get, login, post_form, reply, request,
    routes, turn_on_admin,
};
use console::auth::{AuthError, Authenticator};
use console::guard::LIMITED_MAY;
use console::sudo::{AdminPolicy, Sudo};
use tungstenite::client::IntoClientRequest;

/// The password the stand-in accepts for every account.
const RIGHT: &str = "right-password";
/// How long the stand-in takes to refuse a wrong password (PAM's pam_unix: 2 s).
const DELAY: Duration = Duration::from_millis(300);

/// A password check that accepts [`RIGHT`], refuses anything else after [`DELAY`], and
/// counts its calls.
#[derive(Debug, Default)]
struct Fake {
    calls: AtomicUsize,
}

impl Fake {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Authenticator for Fake {
    fn authenticate(&self, _: &str, password: &str) -> Result<(), AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if password == RIGHT {
            Ok(())
        } else {
            std::thread::sleep(DELAY);
            Err(AuthError::BadCredentials)
        }
    }

    fn fail_delay(&self) -> Duration {
        DELAY
    }
}

/// A console with the stand-ins, where root may log in (it is in every admin group,
/// so only the sudo policy's stand-in decides).
fn server() -> (Server, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let server = Server::start_with_auth(fake.clone(), |c| c.disallowed_users = Vec::new());
    (server, fake)
}

fn csrf(s: &Session) -> [(&str, &str); 1] {
    [("X-CSRF-Token", s.csrf.as_str())]
}

/// `POST /api/v1/session/admin` with a JSON body.
fn turn_on_json(server: &Server, s: &Session, password: &str) -> Reply {
    let body = serde_json::json!({ "password": password }).to_string();
    reply(
        client()
            .post(server.url("/api/v1/session/admin"))
            .header("Content-Type", "application/json")
            .header("Cookie", &s.cookie)
            .header("X-CSRF-Token", &s.csrf)
            .send(body),
    )
}

fn is_admin(server: &Server, s: &Session) -> bool {
    let r = get(&server.url("/api/v1/session"), Some(s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["admin"].as_bool().unwrap()
}

fn vm_action(server: &Server, s: &Session, action: &str) -> Reply {
    post_form(
        &server.url(&format!("/api/v1/vms/test/{action}")),
        Some(s),
        &csrf(s),
        "",
    )
}

fn vm_state(server: &Server, s: &Session) -> String {
    let r = get(&server.url("/api/v1/vms/test"), Some(s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["state"].as_str().unwrap().to_string()
}

fn service_action(server: &Server, s: &Session) -> Reply {
    post_form(
        &server.url("/api/v1/services/hvnode-no-such-unit.service/start"),
        Some(s),
        &csrf(s),
        "",
    )
}

fn registration_fetch(server: &Server, s: &Session, engine: &test_engine::TestEngine) -> Reply {
    post_form(
        &server.url("/registration/fetch"),
        Some(s),
        &[],
        &format!(
            "csrf={}&engine={}&port={}",
            common::enc(&s.csrf),
            engine.host(),
            engine.port()
        ),
    )
}

/// Opens the terminal's WebSocket: `Ok` when the upgrade was answered, the status
/// of the refusal otherwise.
fn terminal(server: &Server, s: &Session) -> Result<(), u16> {
    web_socket(server, s, "/terminal/socket")
}

/// Opens the WebSocket at `path`, as [`terminal`] does.
fn web_socket(server: &Server, s: &Session, path: &str) -> Result<(), u16> {
    let mut req = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Cookie", s.cookie.parse().unwrap());
    req.headers_mut()
        .insert("Origin", server.origin().parse().unwrap());
    match tungstenite::connect(req) {
        Ok((mut ws, _)) => {
            let _ = ws.close(None);
            Ok(())
        }
        Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("the WebSocket {path}: {e}"),
    }
}

fn assert_limited_refusal(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("Turn on administrative access"),
        "{what}: {error}"
    );
}

#[test]
fn a_limited_session_may_look_at_everything_and_change_nothing() {
    let (server, fake) = server();
    let engine = test_engine::TestEngine::start();
    let s = server.session("root");
    assert!(!is_admin(&server, &s), "a session starts limited");

    // Every route that changes state, with the right CSRF token and Origin.
    let mut walked = 0;
    for (method, path) in routes() {
        let exempt = LIMITED_MAY
            .iter()
            .any(|(m, p)| *m == method.as_str() && *p == path.as_str());
        if method == "GET" || path == "/login" || exempt {
            continue;
        }
        let headers = [
            ("X-CSRF-Token", s.csrf.as_str()),
            ("Origin", &server.origin()),
        ];
        let r = request(&server, &method, &path, Some(&s), &headers, "confirm=yes");
        assert_limited_refusal(&r, &format!("{method} {path}"));
        walked += 1;
    }
    assert!(walked >= 13, "only {walked} state changes in the router");

    // Each kind, as the attacks of the issue would try them.
    assert_limited_refusal(&registration_fetch(&server, &s, &engine), "registration");
    assert!(
        engine.requests().is_empty(),
        "the engine was asked: {:?}",
        engine.requests()
    );
    assert_limited_refusal(&vm_action(&server, &s, "force-off"), "a VM action");
    assert_eq!(vm_state(&server, &s), "running");
    assert_limited_refusal(&service_action(&server, &s), "a service action");
    let page = post_form(
        &server.url("/services/debug-shell.service/start"),
        Some(&s),
        &[],
        &format!("csrf={}&confirm=yes", common::enc(&s.csrf)),
    );
    assert_limited_refusal(&page, "starting debug-shell.service from the page");
    assert_eq!(terminal(&server, &s), Err(403), "the terminal");
    for console in ["/vms/test/vnc", "/vms/test/serial"] {
        assert_eq!(web_socket(&server, &s, console), Err(403), "{console}");
    }

    // Reading keeps working.
    for (method, path) in routes() {
        if method != "GET"
            || path == "/login"
            || path.ends_with("/stream")
            || path.ends_with("/socket")
            || path.ends_with("/vnc")
            || path.ends_with("/serial")
        {
            continue;
        }
        let r = get(&server.url(&path), Some(&s), &[]);
        assert!(
            r.status == 200 || r.status == 502 || r.status == 503,
            "GET {path}: {} {}",
            r.status,
            r.body
        );
    }
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert!(
        page.body.contains(r#"id="limited-banner""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"class="action-force-off" disabled title="Needs administrative access""#),
        "{}",
        page.body
    );
    let page = get(&server.url("/terminal"), Some(&s), &[]);
    assert!(page.body.contains(r#"id="terminal-limited""#));
    assert!(!page.body.contains("terminal.js"), "no shell is opened");
    assert_eq!(fake.calls(), 0);
    assert!(!is_admin(&server, &s));
}

#[test]
fn the_right_password_turns_administrative_access_on_and_the_same_requests_pass() {
    common::require_root();
    let (server, _) = server();
    let engine = test_engine::TestEngine::start();
    let s = server.session("root");
    assert_limited_refusal(&vm_action(&server, &s, "reboot"), "before");

    let r = turn_on_json(&server, &s, RIGHT);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["kind"], "Session", "{j}");
    assert_eq!(j["data"]["admin"], true, "{j}");
    assert_eq!(j["data"]["user"], "root", "{j}");
    assert!(is_admin(&server, &s));
    assert_eq!(server.policy.asked(), 1, "the sudo policy was asked");

    // The same requests now reach their handlers.
    let r = vm_action(&server, &s, "force-off");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(vm_state(&server, &s), "shut off");
    let r = service_action(&server, &s);
    assert_ne!(r.status, 403, "{}", r.body);
    let r = registration_fetch(&server, &s, &engine);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#"id="reg-fingerprint""#), "{}", r.body);
    assert_eq!(terminal(&server, &s), Ok(()));
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert!(page.body.contains(r#"id="access-mode" data-admin="1""#));
    assert!(!page.body.contains("limited-banner"));

    // Off again, by the API: limited as before.
    let r = request(
        &server,
        "DELETE",
        "/api/v1/session/admin",
        Some(&s),
        &csrf(&s),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["admin"], false);
    assert_limited_refusal(&vm_action(&server, &s, "start"), "after turning it off");

    // The pages' forms: on with the password (the form field), back to the page.
    let r = post_form(
        &server.url("/session/admin"),
        Some(&s),
        &[],
        &format!(
            "csrf={}&password={}&back=%2Fvms",
            common::enc(&s.csrf),
            common::enc(RIGHT)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/vms"));
    assert_eq!(vm_action(&server, &s, "start").status, 200);
    let r = post_form(
        &server.url("/session/admin/off"),
        Some(&s),
        &[],
        &format!(
            "csrf={}&back=https%3A%2F%2Fevil.example",
            common::enc(&s.csrf)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("/"),
        "only to the console's own pages"
    );
    assert!(!is_admin(&server, &s));
    // Another session of the same user was never anything but limited.
    let other = server.session("root");
    assert!(!is_admin(&server, &other));
}

#[test]
fn an_open_terminal_ends_when_administrative_access_is_turned_off_or_revoked() {
    common::require_root();
    let (server, _) = server();
    type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;
    // Opens a shell and waits until it answers.
    let open = |s: &Session| -> Socket {
        let mut req = format!("ws://{}/terminal/socket", server.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Cookie", s.cookie.parse().unwrap());
        req.headers_mut()
            .insert("Origin", server.origin().parse().unwrap());
        let mut ws = tungstenite::connect(req).unwrap().0;
        ws.send(tungstenite::Message::Binary(
            b"echo hv-$((40+2))\n".to_vec().into(),
        ))
        .unwrap();
        let mut seen = String::new();
        while !seen.contains("hv-42") {
            match ws.read() {
                Ok(tungstenite::Message::Binary(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
                Ok(_) => {}
                Err(e) => panic!("the terminal closed before the shell answered: {e} {seen:?}"),
            }
        }
        ws
    };
    let ends_within = |ws: &mut Socket, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(_)) | Err(_) => break,
                Ok(_) => assert!(Instant::now() < deadline, "the shell outlived {what}"),
            }
        }
    };
    let s = server.session("root");
    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 200);
    let mut ws = open(&s);
    let r = request(
        &server,
        "DELETE",
        "/api/v1/session/admin",
        Some(&s),
        &csrf(&s),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    ends_within(&mut ws, "turning administrative access off");

    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 200);
    let mut ws = open(&s);
    server.policy.deny("root");
    server.clock.advance(console::admin::POLICY_CACHE);
    ends_within(&mut ws, "narrowed sudo rules");
    assert!(!is_admin(&server, &s));
}

#[test]
fn a_wrong_password_and_restricted_sudo_rules_get_the_same_403_and_stay_limited() {
    let (server, fake) = server();
    let wrong_session = server.session("root");
    let start = Instant::now();
    let wrong = turn_on_admin(&server, &wrong_session, "wrong-password");
    let wrong_took = start.elapsed();

    // The same account, now with sudo rules that allow only some commands.
    server.policy.deny("root");
    let narrow_session = server.session("root");
    let start = Instant::now();
    let narrow = turn_on_admin(&server, &narrow_session, RIGHT);
    let narrow_took = start.elapsed();

    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(narrow.status, 403, "{}", narrow.body);
    assert_eq!(wrong.body, narrow.body, "the answer does not say which");
    let error = wrong.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("the password is wrong, or root may not administer this node"),
        "{error}"
    );
    // As long as a wrong password takes; the password of the account sudo refuses
    // was never checked.
    for took in [wrong_took, narrow_took] {
        assert!(took >= DELAY.mul_f32(0.9), "{took:?}");
    }
    assert_eq!(fake.calls(), 1, "only the wrong password reached the check");
    for s in [&wrong_session, &narrow_session] {
        assert!(!is_admin(&server, s));
        assert_limited_refusal(&vm_action(&server, s, "force-off"), "still limited");
    }
    // The pages' form answers the same refusal on the page.
    let r = post_form(
        &server.url("/session/admin"),
        Some(&narrow_session),
        &[],
        &format!(
            "csrf={}&password={}&back=%2Fregistration",
            common::enc(&narrow_session.csrf),
            common::enc(RIGHT)
        ),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("administrative access refused"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#"<a href="/registration">Back</a>"#),
        "{}",
        r.body
    );
    assert!(!is_admin(&server, &narrow_session));
}

#[test]
fn narrowed_sudo_rules_end_administrative_access_within_a_minute() {
    let (server, _) = server();
    let s = server.session("root");
    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 200);
    assert_eq!(server.policy.asked(), 1);
    // Many changes within the minute cost one question of sudo.
    for _ in 0..5 {
        assert_eq!(vm_action(&server, &s, "reboot").status, 200);
        server.clock.advance(Duration::from_secs(5));
    }
    assert_eq!(server.policy.asked(), 1, "the answer is kept for a minute");

    server.policy.deny("root");
    server.clock.advance(Duration::from_secs(34));
    assert_eq!(
        vm_action(&server, &s, "reboot").status,
        200,
        "59 s: the last answer still counts"
    );
    server.clock.advance(Duration::from_secs(1));
    let r = vm_action(&server, &s, "reboot");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("sudo no longer lets root run every command as root"),
        "{}",
        r.body
    );
    assert!(!is_admin(&server, &s), "turned off");
    assert_limited_refusal(&vm_action(&server, &s, "reboot"), "afterwards");
    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 403);
}

#[test]
fn a_user_taken_out_of_the_admin_group_loses_administrative_access_at_once() {
    let user = TestUser::create(Some("hvrev"));
    let group = user.group().to_string();
    let groups = vec![group.clone()];
    let server = Server::start(|c| c.admin_groups = groups);
    let s = server.admin_session(&user.name);
    assert_eq!(vm_action(&server, &s, "reboot").status, 200);

    common::run(Command::new("gpasswd").args(["-d", &user.name, &group]));
    let r = vm_action(&server, &s, "reboot");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains(&format!(
            "{} is no longer root or in an admin group ({group})",
            user.name
        )),
        "{}",
        r.body
    );
    assert!(!is_admin(&server, &s));
}

#[test]
fn turning_administrative_access_on_needs_the_csrf_token_and_is_throttled_with_logins() {
    let (server, fake) = server();
    let s = server.session("root");
    let other = server.session("root");
    let url = server.url("/api/v1/session/admin");
    let body = format!("password={}", common::enc(RIGHT));
    for (what, headers) in [
        ("no token", vec![]),
        (
            "another session's token",
            vec![("X-CSRF-Token", other.csrf.as_str())],
        ),
        (
            "a foreign page",
            vec![
                ("X-CSRF-Token", s.csrf.as_str()),
                ("Origin", "https://evil.example"),
            ],
        ),
    ] {
        let r = post_form(&url, Some(&s), &headers, &body);
        assert_eq!(r.status, 403, "{what}: {}", r.body);
    }
    let r = post_form(&server.url("/session/admin"), Some(&s), &[], &body);
    assert_eq!(
        r.status, 403,
        "the page's form without its token: {}",
        r.body
    );
    assert_eq!(post_form(&url, None, &[], &body).status, 401);
    assert_eq!(fake.calls(), 0, "no password was checked");
    assert!(!is_admin(&server, &s));

    // Twelve guesses at once from one client: only the login throttle's five reach
    // the password check, the rest are told to wait.
    let answers: Vec<Reply> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let (server, s) = (&server, &s);
                scope.spawn(move || turn_on_admin(server, s, &format!("guess-{i}")))
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let refused = answers.iter().filter(|r| r.status == 403).count();
    let throttled: Vec<&Reply> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused, console::session::PER_CLIENT, "{answers:?}");
    assert_eq!(throttled.len(), 12 - console::session::PER_CLIENT);
    assert_eq!(fake.calls(), console::session::PER_CLIENT);
    let retry: u64 = throttled[0].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The right password waits too, and so does a login: one count for both.
    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 429);
    let r = common::login_from("127.0.0.1".parse().unwrap(), &server, "root", RIGHT);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(!is_admin(&server, &s));
    server
        .clock
        .advance(console::session::WINDOW + Duration::from_secs(1));
    assert_eq!(turn_on_admin(&server, &s, RIGHT).status, 200);
    assert!(is_admin(&server, &s));
}

// The real sudo, real sudoers rules, real accounts and PAM.

static DROP_INS: AtomicUsize = AtomicUsize::new(0);

/// Rules in `/etc/sudoers.d`, checked with `visudo -c` before they are put there;
/// removed when dropped. The name has no dot: sudo skips such files.
struct SudoersDropIn {
    path: PathBuf,
}

impl SudoersDropIn {
    fn install(rules: &str) -> Self {
        let n = DROP_INS.fetch_add(1, Ordering::SeqCst);
        let path = PathBuf::from(format!(
            "/etc/sudoers.d/hvnode-test-{}-{n}",
            std::process::id()
        ));
        let d = Self { path };
        d.write(rules);
        d
    }

    fn write(&self, rules: &str) {
        use std::os::unix::fs::PermissionsExt;
        let scratch = self.path.with_file_name(format!(
            "{}~",
            self.path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&scratch, rules).unwrap();
        std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o440)).unwrap();
        let out = Command::new("visudo")
            .arg("-cf")
            .arg(&scratch)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "visudo -cf: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&scratch, &self.path).unwrap();
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Root, sudo and visudo, or a skip (a failure in CI).
fn have_sudo() -> bool {
    hvnode_testutil::require_root() && hvnode_testutil::require_tools(&["sudo", "visudo"])
}

/// Two members of admin groups: `full` may run everything as root, `narrow` one
/// command only.
fn full_and_narrow() -> (TestUser, TestUser, SudoersDropIn) {
    let full = TestUser::create(Some("hvsf"));
    let narrow = TestUser::create(Some("hvsn"));
    let rules = format!(
        "{} ALL=(ALL:ALL) ALL\n{} ALL=(root) /usr/bin/systemctl restart hvnode-test.service\n",
        full.name, narrow.name
    );
    (full, narrow, SudoersDropIn::install(&rules))
}

#[test]
fn sudo_itself_allows_a_full_member_and_refuses_one_with_only_some_commands() {
    if !have_sudo() {
        return;
    }
    let (full, narrow, rules) = full_and_narrow();
    let sudo = Sudo::default();
    assert_eq!(sudo.allows(&full.name), Ok(true));
    assert_eq!(sudo.allows(&narrow.name), Ok(false));
    assert_eq!(sudo.allows("root"), Ok(true));
    // The rules change: sudo answers anew (the console asks again after a minute).
    rules.write(&format!(
        "{} ALL=(root) /usr/bin/journalctl\n{} ALL=(ALL) NOPASSWD: ALL\n",
        full.name, narrow.name
    ));
    assert_eq!(sudo.allows(&full.name), Ok(false));
    assert_eq!(sudo.allows(&narrow.name), Ok(true));
    drop(rules);
    assert_eq!(sudo.allows(&narrow.name), Ok(false), "no rules, no access");
}

#[test]
fn through_pam_and_sudo_only_the_full_member_gets_administrative_access() {
    if !have_sudo() {
        return;
    }
    let pam = PamService::install();
    let (full, narrow, rules) = full_and_narrow();
    let groups = vec![full.group().to_string(), narrow.group().to_string()];
    let server = Server::start_with_policy(Arc::new(Sudo::default()), |c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = groups;
    });
    let full_s = login(&server, &full.name, &full.password).unwrap();
    let narrow_s = login(&server, &narrow.name, &narrow.password).unwrap();
    assert!(!is_admin(&server, &full_s) && !is_admin(&server, &narrow_s));

    // At once: PAM takes 2 s to refuse, and so does a refusal by sudo's rules.
    let (right, wrong, full_wrong) = std::thread::scope(|scope| {
        let right = scope.spawn(|| turn_on_admin(&server, &narrow_s, &narrow.password));
        let wrong = scope.spawn(|| turn_on_admin(&server, &narrow_s, "wrong-password"));
        let full_wrong = scope.spawn(|| turn_on_admin(&server, &full_s, "wrong-password"));
        (
            right.join().unwrap(),
            wrong.join().unwrap(),
            full_wrong.join().unwrap(),
        )
    });
    assert_eq!(right.status, 403, "{}", right.body);
    assert_eq!(right.body, wrong.body, "the answer does not say which");
    assert_eq!(full_wrong.status, 403, "{}", full_wrong.body);
    assert!(!is_admin(&server, &narrow_s) && !is_admin(&server, &full_s));
    assert_limited_refusal(&vm_action(&server, &narrow_s, "reboot"), "narrow");

    let r = turn_on_admin(&server, &full_s, &full.password);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(is_admin(&server, &full_s));
    assert_eq!(vm_action(&server, &full_s, "reboot").status, 200);

    // The full member's rules are narrowed: gone within the minute.
    rules.write(&format!(
        "{} ALL=(root) /usr/bin/systemctl restart hvnode-test.service\n",
        full.name
    ));
    server.clock.advance(console::admin::POLICY_CACHE);
    let r = vm_action(&server, &full_s, "reboot");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("sudo no longer lets"), "{}", r.body);
    assert!(!is_admin(&server, &full_s));
}

/// The privileged helper's unit (which asks sudo for the console) takes away most
/// capabilities and sets `NoNewPrivileges`; sudo must still answer within them (it
/// switches to the sudoers files' owner to read them, which needs CAP_SETUID and
/// CAP_SETGID).
#[test]
fn sudo_answers_within_the_helpers_unit_limits() {
    if !(have_sudo() && hvnode_testutil::require_tool("setpriv")) {
        return;
    }
    let unit = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../systemd/hvnode-helper.service"),
    )
    .unwrap();
    let caps: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .flat_map(str::split_whitespace)
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(!caps.is_empty(), "the unit sets no CapabilityBoundingSet");
    assert!(unit.lines().any(|l| l == "NoNewPrivileges=yes"));
    let (full, narrow, _rules) = full_and_narrow();
    let ask = |user: &str| {
        let out = Command::new("setpriv")
            .arg("--no-new-privs")
            .arg(format!("--bounding-set=-all,{}", caps.join(",")))
            .args(["--inh-caps=-all", "--"])
            .arg("sudo")
            .args([
                "-n",
                "-l",
                "-U",
                user,
                "-u",
                "root",
                "--",
                console::sudo::PROBE,
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = ask(&full.name);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("/sh"), "{stdout}");
    let (code, stdout, stderr) = ask(&narrow.name);
    assert_eq!((code, stderr.as_str()), (Some(1), ""), "{stdout}");
}

/// Through the privileged helper, the helper itself decides: a session the web side
/// let turn on administrative access (its stand-in policy says yes to everyone) still
/// changes nothing unless the helper finds, with the real sudo, that its user may run
/// every command as root; the full member's VM action is made.
#[test]
fn through_the_helper_only_a_full_sudoer_changes_anything_whatever_the_web_side_says() {
    if !have_sudo() {
        return;
    }
    let pam = PamService::install();
    let (full, narrow, _rules) = full_and_narrow();
    let groups = vec![full.group().to_string(), narrow.group().to_string()];
    let tweak = |c: &mut console::Config| {
        c.pam_service = pam.name.clone();
        c.admin_groups = groups.clone();
    };
    let mut config = console::Config::default();
    tweak(&mut config);
    let helper = common::Helper::unstarted();
    let server = Server::start_with_auth(helper.remote(), tweak);
    // The helper makes its VM changes on the server's own test driver.
    helper.serve(&config, Some(server.state.libvirt.clone()));

    let full_s = login(&server, &full.name, &full.password).unwrap();
    let narrow_s = login(&server, &narrow.name, &narrow.password).unwrap();
    for (s, user) in [(&full_s, &full), (&narrow_s, &narrow)] {
        let r = turn_on_admin(&server, s, &user.password);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = vm_action(&server, &narrow_s, "force-off");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("may not administer this node"),
        "{}",
        r.body
    );
    assert_eq!(vm_state(&server, &full_s), "running");
    let r = vm_action(&server, &full_s, "force-off");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(vm_state(&server, &full_s), "shut off");
    // A unit action goes the same way (this unit does not exist: systemctl says so).
    let r = service_action(&server, &narrow_s);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = service_action(&server, &full_s);
    assert_ne!(r.status, 403, "{}", r.body);
    // And the layer actions (this host runs from no layered root: a conflict).
    for path in [
        "/api/v1/node/layers/hvnode-1.0-1+1/boot-next",
        "/api/v1/node/rollback",
    ] {
        let r = post_form(&server.url(path), Some(&narrow_s), &csrf(&narrow_s), "");
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        let r = post_form(&server.url(path), Some(&full_s), &csrf(&full_s), "");
        assert_ne!(r.status, 403, "{path}: {}", r.body);
    }
}

/// The `nodectl` cargo built beside this test (`target/<profile>/nodectl`), which the
/// workspace's test run builds; missing, the test is skipped (a failure under CI).
fn built_nodectl() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let nodectl = exe.parent()?.parent()?.join("nodectl");
    hvnode_testutil::require_path(&nodectl).then_some(nodectl)
}

/// Issue 16, item 6, for registration: registering writes as root (the engine's CA,
/// root's `authorized_keys`, the unique id). Through the helper it is `nodectl
/// register`, started by the helper for a full administrator's session; a member
/// whose sudo rules are narrow is refused before the engine is asked.
#[test]
fn through_the_helper_registration_runs_nodectl_for_a_full_administrator_only() {
    if !have_sudo() {
        return;
    }
    let Some(built) = built_nodectl() else {
        return;
    };
    let tree = tempfile::tempdir().unwrap();
    let root = registration::Sysroot::new(tree.path());
    for (path, text) in [
        ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        (
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER \
             root@node\n",
        ),
        (
            "/sys/class/dmi/id/product_uuid",
            "4C4C4544-0042-3510-8052-B4C04F4A4D32\n",
        ),
    ] {
        let p = root.path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let pam = PamService::install();
    let (full, narrow, _rules) = full_and_narrow();
    let groups = vec![full.group().to_string(), narrow.group().to_string()];
    let sysroot = tree.path().to_path_buf();
    let tweak = |c: &mut console::Config| {
        c.pam_service = pam.name.clone();
        c.admin_groups = groups.clone();
        c.sysroot = sysroot.clone();
    };
    let mut config = console::Config::default();
    tweak(&mut config);
    let helper = common::Helper::unstarted();
    let server = Server::start_with_auth(helper.remote(), tweak);
    // The helper's nodectl is put in place after a first attempt, which then shows
    // that the step was the helper's to run.
    let bin = tempfile::tempdir().unwrap();
    let nodectl = bin.path().join("nodectl");
    let helpers_nodectl = nodectl.clone();
    helper.serve_with(&config, |b| b.nodectl = helpers_nodectl);

    let full_s = login(&server, &full.name, &full.password).unwrap();
    let narrow_s = login(&server, &narrow.name, &narrow.password).unwrap();
    for (s, user) in [(&full_s, &full), (&narrow_s, &narrow)] {
        let r = turn_on_admin(&server, s, &user.password);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let engine = test_engine::TestEngine::start();
    let port = engine.port().to_string();
    let form = |s: &Session, fields: &[(&str, &str)]| {
        let mut body = format!("csrf={}", common::enc(&s.csrf));
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", common::enc(v)));
        }
        body
    };
    let fetch = |s: &Session| {
        let body = form(s, &[("engine", "127.0.0.1"), ("port", &port)]);
        post_form(&server.url("/registration/fetch"), Some(s), &[], &body)
    };

    let r = fetch(&narrow_s);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = fetch(&full_s);
    assert!(
        r.body.contains("is nodectl installed"),
        "the helper ran the step: {}",
        r.body
    );
    assert!(engine.commands().is_empty(), "{:?}", engine.commands());

    std::os::unix::fs::symlink(&built, &nodectl).unwrap();
    let r = fetch(&full_s);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&engine.ca_sha256_hex()), "{}", r.body);
    assert_eq!(engine.commands(), ["get-pki-trust"]);
    let state = registration::load_state(&root).unwrap().status;
    assert_eq!(state.name(), "awaiting-confirmation");

    // A wrong fingerprint is refused as nodectl refuses it, with its kind's advice.
    let wrong = format!("SHA256:{}", "00".repeat(32));
    let body = form(
        &full_s,
        &[
            ("engine", "127.0.0.1"),
            ("port", &port),
            ("fingerprint", &wrong),
        ],
    );
    let r = post_form(
        &server.url("/registration/register"),
        Some(&full_s),
        &[],
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("Compare with the fingerprint"),
        "{}",
        r.body
    );

    let body = form(
        &full_s,
        &[
            ("engine", "127.0.0.1"),
            ("port", &port),
            ("fingerprint", &engine.ca_sha256_hex()),
            ("node_name", "node one"),
        ],
    );
    let r = post_form(
        &server.url("/registration/register"),
        Some(&full_s),
        &[],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Registered with engine 127.0.0.1:"),
        "{}",
        r.body
    );
    let state = registration::load_state(&root).unwrap().status;
    assert_eq!(state.name(), "registered");
    assert!(
        std::fs::read_to_string(root.path("/root/.ssh/authorized_keys"))
            .unwrap()
            .contains(&engine.ssh_key())
    );
    let hosts = engine.hosts();
    let host = hosts.values().next().expect("the engine knows the node");
    assert_eq!(host.param("name"), Some("node one"));
}
