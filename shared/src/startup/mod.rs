//! Start-up: how each entry point wires the same handlers. The Lambda functions read their
//! deployment from the environment the template sets ([`aws`]); the dev server runs the API
//! and the sender loop in one process on the embedded store and queue ([`local`]), behind a
//! listener that answers unparsable requests with the API's JSON errors ([`listener`]).

pub mod aws;
pub mod listener;
pub mod local;
