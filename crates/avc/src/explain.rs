//! A denial in one plain line, and what would allow it where something does.

use serde::Serialize;

use crate::{Denial, context_level};

/// What would allow a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// A boolean of the policy.
    Boolean,
    /// A label on the object.
    Label,
    /// A change of the VM's definition.
    Definition,
    /// Nothing an administrator should change: report it.
    Report,
    /// A local policy module, after checking that the label is right.
    Module,
}

/// What would allow it, in words, and the command where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub kind: FixKind,
    pub text: String,
    pub command: Option<String>,
}

/// A denial explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// `qemu-system-x86 (pid 812, svirt_t) was denied read on file disk.img
    /// (default_t)`.
    pub summary: String,
    pub fix: Fix,
}

/// The domains libvirt runs VMs in (sVirt) and qemu's own.
fn is_vm_domain(t: &str) -> bool {
    t.starts_with("svirt") || t == "qemu_t"
}

/// Object classes that are files of some kind.
fn is_file_class(c: &str) -> bool {
    matches!(
        c,
        "file" | "dir" | "lnk_file" | "blk_file" | "chr_file" | "sock_file" | "fifo_file"
    )
}

/// Types of files that are not meant for VMs' images, where a VM's disk often lies.
const GENERIC_FILE_TYPES: &[&str] = &[
    "default_t",
    "user_home_t",
    "user_home_dir_t",
    "admin_home_t",
    "home_root_t",
    "tmp_t",
    "user_tmp_t",
    "var_t",
    "var_lib_t",
    "usr_t",
    "etc_t",
    "mnt_t",
    "root_t",
    "fixed_disk_device_t",
];

/// A boolean of the policy that lets VMs reach `target` of class `class`.
fn vm_boolean(target: &str, class: &str, perms: &[String]) -> Option<(&'static str, &'static str)> {
    Some(match target {
        "nfs_t" => ("virt_use_nfs", "VM images on NFS"),
        "cifs_t" => ("virt_use_samba", "VM images on SMB/CIFS shares"),
        "fusefs_t" => (
            "virt_use_fusefs",
            "VM images on FUSE file systems (GlusterFS, sshfs)",
        ),
        "usb_device_t" => ("virt_use_usb", "USB devices passed to VMs"),
        "sanlock_t" => ("virt_use_sanlock", "sanlock leases for VMs' disks"),
        _ if class == "process" && perms.iter().any(|p| p == "execmem") => (
            "virt_use_execmem",
            "executable memory in VMs (emulation without KVM)",
        ),
        _ => return None,
    })
}

/// Explains a denial.
pub fn explain(d: &Denial) -> Explanation {
    let source = d.source_type();
    let target = d.target_type();
    let process = match (&d.comm, d.pid) {
        (Some(c), Some(p)) => format!("{c} (pid {p}, {source})"),
        (Some(c), None) => format!("{c} ({source})"),
        (None, Some(p)) => format!("process {p} ({source})"),
        (None, None) => format!("a process in {source}"),
    };
    let object = match (d.path.as_deref(), d.name.as_deref()) {
        (Some(p), _) => format!("{} {p}", d.tclass),
        (None, Some(n)) => format!("{} {n}", d.tclass),
        (None, None) if d.scontext == d.tcontext => "itself".to_string(),
        (None, None) => format!("a {}", d.tclass),
    };
    let logged = if d.permissive {
        " (permissive: only logged, not refused)"
    } else {
        ""
    };
    let summary = format!(
        "{process} was denied {} on {object} ({target}){logged}",
        d.permissions.join(" ")
    );
    Explanation {
        summary,
        fix: fix(d, source, target),
    }
}

fn fix(d: &Denial, source: &str, target: &str) -> Fix {
    let where_ = d
        .path
        .clone()
        .or_else(|| d.name.clone())
        .unwrap_or_else(|| "the file".to_string());
    if matches!(target, "unlabeled_t" | "file_t") {
        return Fix {
            kind: FixKind::Label,
            text: format!(
                "{where_} has no SELinux label (it was made while SELinux was off, or on a file \
                 system without labels): restore the labels the policy gives it"
            ),
            command: d.path.as_ref().map(|p| format!("restorecon -Rv {p}")),
        };
    }
    if source.starts_with("hvnode_") {
        return Fix {
            kind: FixKind::Report,
            text: format!(
                "a denial of hvnode's own service ({source}): nothing on the node should be \
                 changed for it; report it with the diagnostic report"
            ),
            command: None,
        };
    }
    if !is_vm_domain(source) {
        return Fix {
            kind: FixKind::Module,
            text: format!(
                "no boolean is known to allow {source} this; check that {where_} has the label \
                 the policy expects (restorecon -n -v shows a difference), and only then consider \
                 a local policy module"
            ),
            command: Some("audit2allow -a -M local".into()),
        };
    }
    if let Some((boolean, what)) = vm_boolean(target, &d.tclass, &d.permissions) {
        return Fix {
            kind: FixKind::Boolean,
            text: format!("the boolean {boolean} allows {what}"),
            command: Some(format!("setsebool -P {boolean} on")),
        };
    }
    if target.starts_with("svirt_image_t") || target == "svirt_image_t" {
        let (ours, theirs) = (context_level(&d.scontext), context_level(&d.tcontext));
        if ours != theirs {
            return Fix {
                kind: FixKind::Definition,
                text: format!(
                    "{where_} is another VM's disk (its MCS categories {} are not this VM's {}): \
                     sVirt keeps VMs apart. If both VMs must use it, mark the disk <shareable/> \
                     in both definitions, so that libvirt labels it for both",
                    theirs.unwrap_or("?"),
                    ours.unwrap_or("?")
                ),
                command: None,
            };
        }
    }
    if is_file_class(&d.tclass) && GENERIC_FILE_TYPES.contains(&target) {
        let dir = d
            .path
            .as_deref()
            .and_then(|p| p.rsplit_once('/'))
            .map(|(dir, _)| if dir.is_empty() { "/" } else { dir });
        return Fix {
            kind: FixKind::Label,
            text: format!(
                "{where_} is labelled {target}, which VMs may not use: keep VM images in a \
                 storage pool under /var/lib/libvirt/images, or label their folder virt_image_t \
                 (libvirt then gives each running VM its own label)"
            ),
            command: dir.map(|dir| {
                format!(
                    "semanage fcontext -a -t virt_image_t '{dir}(/.*)?' && restorecon -Rv {dir}"
                )
            }),
        };
    }
    Fix {
        kind: FixKind::Module,
        text: format!(
            "no boolean or label is known to allow a VM ({source}) this on {target}: sVirt \
             confines VMs on purpose; check the VM's definition for devices or files it \
             should not need"
        ),
        command: None,
    }
}
