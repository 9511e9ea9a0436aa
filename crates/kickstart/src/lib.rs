//! Anaconda kickstart files as pykickstart's F40 handler reads them, and
//! what they mean for installing an hvnode node.
//!
//! - [`parse_file`] / [`parse_str`]: text → [`Kickstart`] + [`Diagnostics`]
//!   (`FILE:LINE: error: …`), with `%include` / `%ksappend` followed.
//! - [`render`]: [`Kickstart`] → text that parses back to the same model.
//! - [`node::plan`]: the answers the installer needs (image, disks, layout,
//!   network, users, registration) and warnings where a valid kickstart
//!   makes no sense for a node.
//! - [`firewall`]: the `firewall` command resolved to the ports a node opens.
//! - [`grub_password`]: `bootloader --password`, plain or a grub PBKDF2 hash.
//!
//! ```
//! use kickstart::{parse_str, source::FsLoader};
//! let p = parse_str("ks.cfg", "autopart --tpye=thinp\n", &FsLoader);
//! assert_eq!(
//!     p.diagnostics.iter().next().unwrap().to_string(),
//!     "ks.cfg:1: error: autopart: unknown option --tpye (did you mean --type?)"
//! );
//! ```

pub mod addon;
pub mod commands;
pub mod diag;
pub mod firewall;
pub mod grub_password;
pub mod lex;
pub mod model;
pub mod node;
pub mod options;
pub mod parse;
pub mod render;
pub mod sections;
pub mod source;

pub use diag::{Diagnostic, Diagnostics, Loc, Severity};
pub use model::{Item, Kickstart, Located};
pub use parse::{Parse, parse_file, parse_str};
pub use render::render;
