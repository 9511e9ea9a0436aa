//! Drives qemu for hvnode under TCG (build hosts and CI machines have no
//! hardware virtualisation): the command line of a guest (firmware, boot
//! medium, disks, user-mode network), its serial console driven like an
//! admin at a terminal would (wait for text, type a command, read what it
//! printed), disks for it, and `NVR.qcow2`, an installed node as a disk
//! image.
//!
//! Every network peer stays on the build host: the guest reaches it only
//! through qemu's user-mode network (the host is 10.0.2.2 from inside).
//!
//! `hvnode build --qcow2` makes its disk image with it; the VM tests and
//! benchmarks (crate `vmtest`) boot the node image with it.

pub mod console;
mod disk;
pub mod disk_image;
mod firmware;
pub mod image;
pub mod install;
mod vm;

pub use console::Console;
pub use disk::{blank_disk, oemdrv_disk, overlay_disk};
pub use image::Image;
pub use vm::{
    Boot, Config, Firmware, SYSTEM_SERIAL, SYSTEM_UUID, Vm, accel, cpu_model, default_cpus,
    free_port, serial_log,
};
