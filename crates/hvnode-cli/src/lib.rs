//! The subcommands of `hvnode`, callable from tests.

pub mod build;
pub mod iso;
pub mod ks;
