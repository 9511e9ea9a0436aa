//! The SELinux page and its API read the host's journal (journald runs here: see
//! tests/deps.sh): the mode, and whatever denials the last week holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, get};

#[test]
fn the_page_and_the_api_show_the_mode_and_the_denials() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/selinux/denials"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["kind"], "SelinuxDenialList");
    let mode = j["data"]["mode"].as_str().unwrap().to_string();
    let items = j["data"]["items"].as_array().unwrap();
    let page = get(&server.url("/selinux"), Some(&s), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("SELinux is <b class=\"selinux-mode\">{mode}</b>")),
        "{}",
        page.body
    );
    if items.is_empty() {
        assert!(page.body.contains("id=\"no-denials\""), "{}", page.body);
    } else {
        assert!(page.body.contains("class=\"denial\""), "{}", page.body);
    }
    // The section is in the navigation.
    assert!(page.body.contains("href=\"/selinux\""), "{}", page.body);
}
