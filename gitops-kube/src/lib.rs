//! The Kubernetes [`Target`](gitops_core::Target) of gitops-core, on kube-rs.
//!
//! [`KubeTarget`] applies desired objects with server-side apply (our field
//! manager, optional force, server-side dry-run), observes only the objects
//! an owner's inventory and desired state name, keeps each owner's
//! inventory in the cluster (a ConfigMap, see [`inventory`]), prunes with a
//! chosen propagation policy, and turns API server errors into the core
//! [`TargetError`](gitops_core::TargetError) by meaning (a field-ownership
//! conflict names the other manager and its fields). It works on dynamic
//! objects through a cached [`discovery`] catalog, so any CRD works without
//! generated types; applying a CRD waits until it is Established and served.
//! [`watch`] turns changes to owned objects into drift events.
//!
//! ```no_run
//! use gitops_core::{ApplyOptions, Object, ObjectKey, ObserveRequest, Target};
//! use gitops_kube::KubeTarget;
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The current kubeconfig (or the in-cluster service account).
//! let client = gitops_kube::kube::Client::try_default().await?;
//! let target = KubeTarget::new(client);
//! let cm = Object::new(json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "hello", "namespace": "default",
//!                  "labels": {"gitops-rs.io/owner": "demo"}},
//!     "data": {"greeting": "hi"},
//! }))?;
//! // Server-side dry-run first, then for real.
//! let dry = ApplyOptions::default().dry_run(true);
//! target.apply(&cm, &dry).await?;
//! target.apply(&cm, &ApplyOptions::default()).await?;
//! let live = target
//!     .observe(&ObserveRequest::new([cm.key().clone()].into(), None))
//!     .await?;
//! assert!(live.get(cm.key()).is_some());
//! # Ok(()) }
//! ```
//!
//! # TLS
//! kube-rs talks TLS with rustls and its `ring` crypto provider, which is
//! also the one `gitops-git` uses: any combination of our crates has one
//! provider compiled in, and a program needs no set-up call before building
//! a client.
//!
//! # Patches
//! `gitops_diff::ObjectDiff::json_patch()` is the `json_patch::Patch` of
//! the json-patch version kube-rs uses, so it can be sent as is:
//! `api.patch(name, &params, &kube::api::Patch::Json::<()>(diff.json_patch()))`.
//!
//! Integration tests run against a real API server through the `testing`
//! module (cargo feature `testing`): `bash scripts/envtest.sh` builds
//! kube-apiserver and etcd once, then
//! `cargo test -p gitops-kube --features testing` starts them per test
//! binary; `GITOPS_TEST_KUBECONFIG=PATH` points the same tests at any
//! cluster instead.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod compat;
pub mod discovery;
mod error;
pub mod inventory;
mod target;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod watch;

/// The Kubernetes API types kube-rs is built with (feature `v1_33`).
pub use k8s_openapi;
/// The kube-rs crate this one is built on (its `Client`, `Config`, `Api`
/// are in our API): use it through this re-export to get the same version.
pub use kube;

pub use discovery::{ApiCatalog, DiscoveryError, ResolvedKind};
pub use inventory::{DEFAULT_INVENTORY_NAMESPACE, InventoryError};
pub use target::{DEFAULT_ESTABLISH_TIMEOUT, KubeTarget, PortProtocols};
pub use watch::{DriftEvent, DriftStream, WatchError, WatchScope};
