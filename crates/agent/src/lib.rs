//! The node agent's two services: `hvnode-agent` (the web console, the metrics
//! sampler) and `hvnode-helper` (the privileged helper the console asks for logins,
//! their PAM sessions and the sudo policy, [`helper_service`]). Both binaries are
//! thin; what they share is here.

pub mod helper_service;
pub mod setup;
