//! The subcommands of `hvnode`, callable from tests.

pub mod ks;
