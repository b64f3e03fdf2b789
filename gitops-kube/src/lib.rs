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
//! gitops_kube::install_crypto_provider(); // see its docs
//! let client = kube::Client::try_default().await?; // the current kubeconfig
//! let target = KubeTarget::new(client);
//! let cm = Object::new(json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "hello", "namespace": "default",
//!                  "labels": {"gitops-rs.io/owner": "demo"}},
//!     "data": {"greeting": "hi"},
//! }))?;
//! // Server-side dry-run first, then for real.
//! let dry = ApplyOptions { dry_run: true, ..ApplyOptions::default() };
//! target.apply(&cm, &dry).await?;
//! target.apply(&cm, &ApplyOptions::default()).await?;
//! let live = target
//!     .observe(&ObserveRequest { keys: [cm.key().clone()].into(), owner: None })
//!     .await?;
//! assert!(live.get(cm.key()).is_some());
//! # Ok(()) }
//! ```
//!
//! Integration tests run against a real API server through the `testing`
//! module (cargo feature `testing`): `bash scripts/envtest.sh` builds
//! kube-apiserver and etcd once, then
//! `cargo test -p gitops-kube --features testing` starts them per test
//! binary; `GITOPS_TEST_KUBECONFIG=PATH` points the same tests at any
//! cluster instead.

pub mod compat;
pub mod discovery;
mod error;
pub mod inventory;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
pub mod watch;

/// Installs rustls' `ring` crypto provider as the process default, unless
/// one is installed already; returns whether this call installed it.
///
/// Call it before building a [`kube::Client`] in a program where some other
/// dependency also enables rustls' `aws-lc-rs` provider (gix's HTTP
/// transport does, so any program using `gitops-git` and this crate): with
/// both providers compiled in, rustls cannot choose one by itself and kube's
/// client panics ("Could not automatically determine the process-level
/// CryptoProvider").
pub fn install_crypto_provider() -> bool {
    rustls::crypto::CryptoProvider::get_default().is_none()
        && rustls::crypto::ring::default_provider()
            .install_default()
            .is_ok()
}

pub use discovery::{ApiCatalog, DiscoveryError, ResolvedKind};
pub use inventory::{DEFAULT_INVENTORY_NAMESPACE, InventoryError};
pub use target::{DEFAULT_ESTABLISH_TIMEOUT, KubeTarget, PortProtocols};
pub use watch::{DriftEvent, DriftStream, WatchError, WatchScope};
