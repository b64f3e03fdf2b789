//! Conformance suites for [`Source`](crate::Source) and
//! [`Target`](crate::Target) backends (cargo feature `testing`).
//!
//! Every backend of this workspace runs them: the in-memory ones, the Git
//! one and the Kubernetes one. Each behaviour is a public `async fn`; the
//! suites panic with a message naming the broken rule, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod source;
pub mod target;
