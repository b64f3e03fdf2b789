//! Integration tests of gitops-kube against a real API server.
//!
//! The server comes from `gitops_kube::testing` (see its docs): a kubeconfig
//! in `GITOPS_TEST_KUBECONFIG`, or etcd + kube-apiserver provisioned by
//! `scripts/envtest.sh`. Without either, each test prints `SKIPPED: ...` and
//! passes, unless `CI` is set.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
mod harness;
mod hermetic;
mod kustomize;
mod prune;
mod reconcile;
mod requests;
mod ssa_scenarios;
mod target;
mod watch;
