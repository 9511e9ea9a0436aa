//! `%addon org_hvnode_image --allow-unverified`: the explicit opt-in to an
//! image that neither a signature nor a checksum verifies. Valid syntax
//! for pykickstart (any addon is), read and checked by the node plan,
//! visible as a warning; and the `liveimg` warning says what the installer
//! will do with an image without `--checksum`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use kickstart::node::{self, MEDIUM_IMAGE_URL};
use kickstart::source::MemLoader;
use kickstart::{parse_str, render};

const HTTP: &str = "liveimg --url=http://deploy.example.com/hvnode.squashfs.img\n";

/// The plan of `text` (valid syntax) and its node diagnostics as
/// `LINE:severity:message`.
fn plan_of(text: &str) -> (node::NodePlan, Vec<String>) {
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    assert!(p.is_valid(), "{text}: {:?}", p.diagnostics);
    let (plan, d) = node::plan(&p.kickstart);
    let d = d
        .iter()
        .map(|d| format!("{}:{}:{}", d.loc.line, d.severity, d.message))
        .collect();
    (plan, d)
}

#[test]
fn the_opt_in_is_read_and_shown_as_a_warning() {
    let text = format!("{HTTP}%addon org_hvnode_image --allow-unverified\n%end\n");
    let (plan, d) = plan_of(&text);
    assert!(plan.allow_unverified_image);
    assert!(
        d.iter().any(|d| d.starts_with("2:warning:org_hvnode_image --allow-unverified: an image without a signature or a checksum will be installed unverified")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.starts_with("1:warning:liveimg without --checksum")
                && d.contains("installed unverified (%addon org_hvnode_image --allow-unverified)")),
        "{d:?}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["allow_unverified_image"], true);
    // The section is kept as written.
    let p = parse_str("ks.cfg", &text, &MemLoader::default());
    assert!(render(&p.kickstart).contains("%addon org_hvnode_image --allow-unverified\n%end"));
}

#[test]
fn without_the_opt_in_an_image_without_checksum_is_said_to_be_refused() {
    let (plan, d) = plan_of(HTTP);
    assert!(!plan.allow_unverified_image);
    assert!(
        d.iter().any(|d| d.starts_with("1:warning:liveimg without --checksum: the installer refuses the image unless its signature (the URL + .minisig) verifies with a trusted key")),
        "{d:?}"
    );
    // A local file other than the medium's image is no exception.
    let (_, d) = plan_of("liveimg --url=file:///mnt/usb/hvnode.squashfs.img\n");
    assert!(
        d.iter().any(|d| d.contains("liveimg without --checksum")),
        "{d:?}"
    );
    // The medium's own image (trusted as what booted) and a checksum are.
    for text in [
        format!("liveimg --url={MEDIUM_IMAGE_URL}\n"),
        format!(
            "liveimg --url=http://h/a.img --checksum={}\n",
            "ab".repeat(32)
        ),
    ] {
        let (_, d) = plan_of(&text);
        assert!(!d.iter().any(|d| d.contains("--checksum")), "{text}: {d:?}");
    }
}

#[test]
fn a_misspelt_or_empty_opt_in_is_caught_on_its_line() {
    let (plan, d) = plan_of(&format!(
        "{HTTP}%addon org_hvnode_image --allow-unverifed\n%end\n"
    ));
    assert!(!plan.allow_unverified_image);
    assert!(
        d.iter().any(|d| d.starts_with("2:error:")
            && d.contains("--allow-unverifed")
            && d.contains("did you mean --allow-unverified")),
        "{d:?}"
    );
    let (plan, d) = plan_of(&format!("{HTTP}%addon org_hvnode_image\n%end\n"));
    assert!(!plan.allow_unverified_image);
    assert!(
        d.iter()
            .any(|d| d == "2:warning:org_hvnode_image: no option; the section does nothing"),
        "{d:?}"
    );
    let (_, d) = plan_of(&format!(
        "{HTTP}%addon org_hvnode_image --allow-unverified\nallow-unverified\n%end\n"
    ));
    assert!(
        d.iter()
            .any(|d| d.starts_with("2:warning:") && d.contains("the section body is ignored")),
        "{d:?}"
    );
}

#[test]
fn the_last_section_counts() {
    let (plan, d) = plan_of(&format!(
        "{HTTP}%addon org_hvnode_image --allow-unverified\n%end\n%addon org_hvnode_image\n%end\n"
    ));
    assert!(!plan.allow_unverified_image, "{d:?}");
    assert!(!d.iter().any(|d| d.contains(":error:")), "{d:?}");
}
