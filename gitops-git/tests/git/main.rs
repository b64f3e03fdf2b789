//! Integration tests of gitops-git: one binary, repositories built at test
//! time with the git CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod crafted;
mod fixture;
#[cfg(feature = "http")]
mod http;
mod packed;
mod remote;
mod source;
