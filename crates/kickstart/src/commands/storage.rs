//! Commands about the installation source and the disks.

use super::value::ks_enum;
use super::{Check, ks_command};
use crate::grub_password::{BootPassword, PBKDF2_PREFIX, parse_pbkdf2};
use crate::options::Finding;

ks_command! {
    /// `liveimg`: install from a disk or filesystem image (hvnode's squashfs).
    Liveimg ["liveimg"] conflicts []
    positional {}
    options {
        /// Where the image is: `http(s)://`, `ftp://` or `file://`.
        url: String = ["--url"] required,
        proxy: Option<String> = ["--proxy"],
        noverifyssl: bool = ["--noverifyssl"],
        /// sha256 of the image, checked before anything is written.
        checksum: Option<String> = ["--checksum"],
    }
}

impl Check for Liveimg {
    fn check(&self, f: &mut Vec<Finding>) {
        if let Some(sum) = &self.checksum
            && (sum.len() != 64 || !sum.chars().all(|c| c.is_ascii_hexdigit()))
        {
            f.push(Finding::warning(format!(
                "liveimg: --checksum {sum:?} is not a sha256 (64 hex digits); the installer will refuse it"
            )));
        }
    }
}

ks_enum! {
    fold_case
    /// `autopart --type`.
    pub enum AutopartType {
        Lvm = "lvm",
        Btrfs = "btrfs",
        Plain = "plain",
        /// Another word for plain.
        Partition = "partition",
        Thinp = "thinp",
    }
}

ks_command! {
    /// `autopart`: let the installer lay out the disks.
    Autopart ["autopart"] conflicts ["partition", "raid", "volgroup", "logvol", "reqpart"]
    positional {}
    options {
        encrypted: bool = ["--encrypted"],
        passphrase: Option<String> = ["--passphrase"],
        escrowcert: Option<String> = ["--escrowcert"],
        backuppassphrase: bool = ["--backuppassphrase"],
        /// The same as `--type=plain`.
        nolvm: bool = ["--nolvm"],
        r#type: Option<AutopartType> = ["--type"],
        cipher: Option<String> = ["--cipher"],
        fstype: Option<String> = ["--fstype"],
        nohome: bool = ["--nohome"],
        noboot: bool = ["--noboot"],
        noswap: bool = ["--noswap"],
        luks_version: Option<String> = ["--luks-version"],
        pbkdf: Option<String> = ["--pbkdf"],
        pbkdf_memory: Option<i64> = ["--pbkdf-memory"],
        pbkdf_time: Option<i64> = ["--pbkdf-time"],
        pbkdf_iterations: Option<i64> = ["--pbkdf-iterations"],
        hibernation: bool = ["--hibernation"],
    }
}

impl Autopart {
    /// The scheme asked for; `--nolvm` means plain, and the default is LVM.
    pub fn scheme(&self) -> AutopartType {
        match (self.r#type, self.nolvm) {
            (Some(AutopartType::Partition), _) => AutopartType::Plain,
            (Some(t), _) => t,
            (None, true) => AutopartType::Plain,
            (None, false) => AutopartType::Lvm,
        }
    }
}

impl Check for Autopart {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.fstype.as_deref() == Some("btrfs") {
            f.push(Finding::error(
                "autopart: --fstype=btrfs is not a valid file system type here; use --type=btrfs",
            ));
        }
        if self.noswap && self.hibernation {
            f.push(Finding::error(
                "autopart: --noswap and --hibernation cannot be used together",
            ));
        }
        if self.fstype.is_some() && self.scheme() == AutopartType::Btrfs {
            f.push(Finding::error(
                "autopart: --fstype cannot be used with --type=btrfs",
            ));
        }
        pbkdf_check("autopart", self.pbkdf_time, self.pbkdf_iterations, f);
    }
}

ks_command! {
    /// `clearpart`: which partitions to remove before partitioning.
    Clearpart ["clearpart"] conflicts []
    positional {}
    options {
        all: bool = ["--all"],
        initlabel: bool = ["--initlabel"],
        linux: bool = ["--linux"],
        none: bool = ["--none"],
        disklabel: Option<String> = ["--disklabel"],
        drives: Vec<String> = ["--drives"],
        list: Vec<String> = ["--list"],
        cdl: bool = ["--cdl"],
    }
}

impl Check for Clearpart {}

ks_command! {
    /// `zerombr`: initialise invalid partition tables without asking.
    Zerombr ["zerombr"] conflicts []
    positional {}
    options {}
}

impl Check for Zerombr {}

ks_command! {
    /// `ignoredisk`: the disks the installer may (not) touch.
    Ignoredisk ["ignoredisk"] conflicts []
    positional {}
    options {
        drives: Vec<String> = ["--drives"],
        only_use: Vec<String> = ["--only-use"],
    }
}

impl Check for Ignoredisk {
    fn check(&self, f: &mut Vec<Finding>) {
        match (self.drives.is_empty(), self.only_use.is_empty()) {
            (false, false) => f.push(Finding::error(
                "ignoredisk: --drives and --only-use cannot be used together",
            )),
            (true, true) => f.push(Finding::error(
                "ignoredisk: one of --drives or --only-use must be given",
            )),
            _ => {}
        }
    }
}

ks_command! {
    /// `part` / `partition`: one partition.
    Partition ["part", "partition"] conflicts ["autopart", "mount"]
    positional {
        /// Mount point, `swap`, `pv.ID`, `raid.ID`, `btrfs.ID`, `biosboot`, `None`.
        mntpoint: String,
    }
    options {
        asprimary: bool = ["--asprimary"],
        fstype: Option<String> = ["--fstype", "--type"],
        grow: bool = ["--grow"],
        maxsize: Option<i64> = ["--maxsize"],
        noformat: bool = ["--noformat"],
        onbiosdisk: Option<String> = ["--onbiosdisk"],
        ondisk: Option<String> = ["--ondisk", "--ondrive"],
        onpart: Option<String> = ["--onpart", "--usepart"],
        recommended: bool = ["--recommended"],
        /// Size in MiB.
        size: Option<i64> = ["--size"],
        fsoptions: Option<String> = ["--fsoptions"],
        label: Option<String> = ["--label"],
        fsprofile: Option<String> = ["--fsprofile"],
        encrypted: bool = ["--encrypted"],
        passphrase: Option<String> = ["--passphrase"],
        escrowcert: Option<String> = ["--escrowcert"],
        backuppassphrase: bool = ["--backuppassphrase"],
        resize: bool = ["--resize"],
        hibernation: bool = ["--hibernation"],
        cipher: Option<String> = ["--cipher"],
        mkfsoptions: Option<String> = ["--mkfsoptions"],
        luks_version: Option<String> = ["--luks-version"],
        pbkdf: Option<String> = ["--pbkdf"],
        pbkdf_memory: Option<i64> = ["--pbkdf-memory"],
        pbkdf_time: Option<i64> = ["--pbkdf-time"],
        pbkdf_iterations: Option<i64> = ["--pbkdf-iterations"],
    }
}

impl Check for Partition {
    fn normalize(&mut self) {
        self.mntpoint = super::normpath(&self.mntpoint);
    }
    fn check(&self, f: &mut Vec<Finding>) {
        if self.resize && self.onpart.is_none() {
            f.push(Finding::error(
                "part: --resize can only be used with --onpart",
            ));
        }
        if self.resize && self.size.is_none() {
            f.push(Finding::error(
                "part: --resize needs --size for the new size",
            ));
        }
        if self.mkfsoptions.is_some() && self.noformat {
            f.push(Finding::error(
                "part: --mkfsoptions has no effect with --noformat",
            ));
        }
        if self.fstype.as_deref() == Some("tmpfs")
            && (self.grow || self.maxsize.is_some_and(|m| m != 0))
        {
            f.push(Finding::error(
                "part: --fstype=tmpfs cannot be used with --grow or --maxsize",
            ));
        }
        if self.mkfsoptions.is_some() && self.fsprofile.is_some() {
            f.push(Finding::error(
                "part: --mkfsoptions and --fsprofile cannot be used together",
            ));
        }
        pbkdf_check("part", self.pbkdf_time, self.pbkdf_iterations, f);
    }
}

ks_command! {
    /// `reqpart`: the platform's required partitions (biosboot, EFI system, /boot).
    Reqpart ["reqpart"] conflicts ["autopart", "mount"]
    positional {}
    options {
        add_boot: bool = ["--add-boot"],
    }
}

impl Check for Reqpart {}

ks_command! {
    /// `volgroup`: an LVM volume group over physical volumes.
    Volgroup ["volgroup"] conflicts ["autopart", "mount"]
    positional {
        vgname: String,
        /// The `pv.ID` partitions it spans.
        partitions: Vec<String>,
    }
    options {
        noformat: bool = ["--noformat"],
        useexisting: bool = ["--useexisting"],
        reserved_space: Option<i64> = ["--reserved-space"],
        reserved_percent: Option<i64> = ["--reserved-percent"],
        pesize: Option<i64> = ["--pesize"],
    }
}

impl Check for Volgroup {
    fn check(&self, f: &mut Vec<Finding>) {
        let preexisting = self.noformat || self.useexisting;
        if self.vgname.is_empty() {
            f.push(Finding::error("volgroup: give the volume group a name"));
        } else if !preexisting && self.partitions.is_empty() {
            f.push(Finding::error(format!(
                "volgroup {}: name the physical volumes (pv.ID) it spans, or use --useexisting",
                self.vgname
            )));
        } else if preexisting && !self.partitions.is_empty() {
            f.push(Finding::error(format!(
                "volgroup {}: members cannot be given for an existing volume group",
                self.vgname
            )));
        }
        if self.reserved_space.is_some_and(|s| s < 0) {
            f.push(Finding::error(
                "volgroup: --reserved-space must be a positive number",
            ));
        }
        if let Some(p) = self.reserved_percent
            && !(1..100).contains(&p)
        {
            f.push(Finding::error(format!(
                "volgroup: --reserved-percent must be between 1 and 99 (given {p})"
            )));
        }
    }
}

ks_command! {
    /// `logvol`: an LVM logical volume, thin volume or thin pool.
    Logvol ["logvol"] conflicts ["autopart", "mount"]
    positional {
        mntpoint: String,
    }
    options {
        fstype: Option<String> = ["--fstype"],
        grow: bool = ["--grow"],
        maxsize: Option<i64> = ["--maxsize"],
        name: String = ["--name"] required,
        noformat: bool = ["--noformat"],
        percent: Option<i64> = ["--percent"],
        recommended: bool = ["--recommended"],
        /// Size in MiB.
        size: Option<i64> = ["--size"],
        useexisting: bool = ["--useexisting"],
        vgname: String = ["--vgname"] required,
        fsoptions: Option<String> = ["--fsoptions"],
        fsprofile: Option<String> = ["--fsprofile"],
        encrypted: bool = ["--encrypted"],
        passphrase: Option<String> = ["--passphrase"],
        escrowcert: Option<String> = ["--escrowcert"],
        backuppassphrase: bool = ["--backuppassphrase"],
        label: Option<String> = ["--label"],
        resize: bool = ["--resize"],
        hibernation: bool = ["--hibernation"],
        cipher: Option<String> = ["--cipher"],
        /// This LV is a thin pool.
        thinpool: bool = ["--thinpool"],
        /// This LV is a thin volume in `--poolname`.
        thin: bool = ["--thin"],
        poolname: Option<String> = ["--poolname"],
        chunksize: Option<i64> = ["--chunksize"],
        metadatasize: Option<i64> = ["--metadatasize"],
        profile: Option<String> = ["--profile"],
        cachesize: Option<i64> = ["--cachesize"],
        cachemode: Option<String> = ["--cachemode"],
        cachepvs: Vec<String> = ["--cachepvs"],
        mkfsoptions: Option<String> = ["--mkfsoptions"],
        luks_version: Option<String> = ["--luks-version"],
        pbkdf: Option<String> = ["--pbkdf"],
        pbkdf_memory: Option<i64> = ["--pbkdf-memory"],
        pbkdf_time: Option<i64> = ["--pbkdf-time"],
        pbkdf_iterations: Option<i64> = ["--pbkdf-iterations"],
    }
}

impl Check for Logvol {
    fn normalize(&mut self) {
        self.mntpoint = super::normpath(&self.mntpoint);
    }
    fn check(&self, f: &mut Vec<Finding>) {
        let mut err = |m: &str| f.push(Finding::error(format!("logvol {}: {m}", self.name)));
        let preexisting = self.noformat || self.useexisting;
        if self.resize && !self.useexisting {
            err("--resize can only be used with --useexisting");
        }
        if self.resize && self.size.is_none() {
            err("--resize needs --size for the new size");
        }
        if self.thin && self.thinpool {
            err("--thin and --thinpool cannot both be given");
        }
        if self.thin && self.poolname.is_none() {
            err("--thin needs --poolname to name the pool");
        }
        if (self.chunksize.is_some() || self.metadatasize.is_some()) && !self.thinpool {
            err("--chunksize and --metadatasize are for thin pools only");
        }
        if !preexisting
            && self.percent.is_none()
            && self.size.is_none()
            && !self.recommended
            && !self.hibernation
        {
            err(
                "no size given; use one of --size, --percent, --useexisting, --noformat or --hibernation",
            );
        }
        if self.percent.is_some_and(|p| !(0..=100).contains(&p)) {
            err("--percent must be between 0 and 100");
        }
        if self.size.is_some() && self.percent.is_some() {
            err("--size and --percent cannot both be given");
        }
        if self.cachesize.is_some() || self.cachemode.is_some() || !self.cachepvs.is_empty() {
            if preexisting {
                err("adding a cache to an existing logical volume is not supported");
            }
            if self.thin {
                err("thin volumes cannot be cached");
            }
            if self.cachepvs.is_empty() {
                err("a cache needs its (fast) physical volumes: --cachepvs");
            }
            if self.cachesize.is_none() {
                err("a cache needs --cachesize");
            }
            if let Some(mode) = &self.cachemode
                && mode != "writeback"
                && mode != "writethrough"
            {
                err(&format!(
                    "invalid --cachemode {mode:?} (writeback or writethrough)"
                ));
            }
        }
        if self.mkfsoptions.is_some() && self.noformat {
            err("--mkfsoptions has no effect with --noformat");
        }
        if self.mkfsoptions.is_some() && self.fsprofile.is_some() {
            err("--mkfsoptions and --fsprofile cannot be used together");
        }
        pbkdf_check("logvol", self.pbkdf_time, self.pbkdf_iterations, f);
    }
}

/// Only one of `--pbkdf-time` and `--pbkdf-iterations` (0 counts as unset).
fn pbkdf_check(cmd: &str, time: Option<i64>, iterations: Option<i64>, f: &mut Vec<Finding>) {
    if time.is_some_and(|t| t != 0) && iterations.is_some_and(|i| i != 0) {
        f.push(Finding::error(format!(
            "{cmd}: only one of --pbkdf-time and --pbkdf-iterations can be given"
        )));
    }
}

ks_enum! {
    /// `bootloader --location`.
    pub enum BootloaderLocation { Mbr = "mbr", Partition = "partition", None = "none", Boot = "boot" }
}

ks_command! {
    /// `bootloader`: where the boot loader goes and what the kernel is given.
    Bootloader ["bootloader"] conflicts []
    positional {}
    options {
        /// Kernel arguments added to every boot entry.
        append: Option<String> = ["--append"],
        location: Option<BootloaderLocation> = ["--location"],
        /// grub's superuser (`root`) password: plain text, or a grub
        /// PBKDF2 hash with `--iscrypted`.
        password: Option<String> = ["--password"],
        driveorder: Vec<String> = ["--driveorder"],
        /// Seconds grub shows its menu before it boots the default
        /// layer (0 to 600; else 5).
        timeout: Option<i64> = ["--timeout"],
        default: Option<String> = ["--default"],
        iscrypted: bool = ["--iscrypted"],
        /// The same as `--password=HASH --iscrypted` (and wins over
        /// `--password`, as in pykickstart).
        md5pass: Option<String> = ["--md5pass"],
        boot_drive: Option<String> = ["--boot-drive"],
        leavebootorder: bool = ["--leavebootorder"],
        extlinux: bool = ["--extlinux"],
        disabled: bool = ["--disabled"],
        nombr: bool = ["--nombr"],
        sdboot: bool = ["--sdboot"],
    }
}

impl Bootloader {
    /// The boot loader password: `--md5pass`, else `--password` (plain
    /// unless `--iscrypted`). An empty value is no password, as in
    /// pykickstart.
    pub fn grub_password(&self) -> Option<BootPassword> {
        if let Some(hash) = self.md5pass.as_deref().filter(|h| !h.is_empty()) {
            return Some(BootPassword::Pbkdf2(hash.to_string()));
        }
        let password = self.password.as_deref().filter(|p| !p.is_empty())?;
        Some(if self.iscrypted {
            BootPassword::Pbkdf2(password.to_string())
        } else {
            BootPassword::Plain(password.to_string())
        })
    }
}

impl Check for Bootloader {
    fn check(&self, f: &mut Vec<Finding>) {
        if let Some(BootPassword::Pbkdf2(hash)) = self.grub_password()
            && let Err(why) = parse_pbkdf2(&hash)
        {
            let given = if self.md5pass.as_deref().is_some_and(|h| !h.is_empty()) {
                "--md5pass"
            } else {
                "--password with --iscrypted"
            };
            f.push(Finding::error(format!(
                "bootloader: the value of {given} is not a grub PBKDF2 hash \
                 ({PBKDF2_PREFIX}ITERATIONS.SALT.HASH, as grub-mkpasswd-pbkdf2 prints it): {why}; \
                 make one with grub-mkpasswd-pbkdf2, or give the plain password with --password \
                 and without --iscrypted for the installer to hash it"
            )));
        }
        if self.timeout.is_some_and(|t| !(0..=600).contains(&t)) {
            f.push(Finding::error(
                "bootloader: --timeout is the seconds grub shows its menu, from 0 to 600",
            ));
        }
        if self.boot_drive.as_deref().is_some_and(|d| d.contains(',')) {
            f.push(Finding::error("bootloader: --boot-drive takes one drive"));
        }
        if self.extlinux && self.sdboot {
            f.push(Finding::error(
                "bootloader: --extlinux and --sdboot cannot be used together",
            ));
        }
    }
}
