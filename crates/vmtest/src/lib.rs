//! The node image's VM tests and benchmarks: it boots in qemu (TCG) through
//! the `qemu` crate's driver, installs from the test kickstarts, and is
//! checked from a root shell inside.
//!
//! The driver's items are re-exported here under the names the tests and
//! benchmarks use (`vmtest::Vm`, `vmtest::disk_image`, …); this crate adds
//! what only tests need: the test kickstarts and installed-disk boots
//! ([`install`]), the checks of a booted node ([`live`]), boot profiles
//! ([`profile`]), a file server for guests ([`http`]), later releases of
//! the image for update tests ([`release`]) and test folders ([`image`]).

pub mod engine_net;
pub mod http;
pub mod image;
pub mod install;
pub mod live;
pub mod profile;
pub mod release;

pub use qemu::{
    Boot, Config, Console, Firmware, Image, Vm, accel, blank_disk, console, cpu_model,
    default_cpus, disk_image, free_port, oemdrv_disk, overlay_disk,
};
