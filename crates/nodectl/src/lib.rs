//! nodectl's library: the work of each subcommand, which the `nodectl` binary
//! calls after parsing its arguments and tests call directly.

pub mod diagnostics;
pub mod layout;
pub mod libvirt;
pub mod output;
pub mod register;
pub mod rollback;
pub mod trial;
pub mod update;
