//! Drift watch: an event whenever an owned object changes in the cluster.
//!
//! Built on kube-runtime's [`watcher`] with the label selector
//! `gitops-rs.io/owner=<owner>`, one watch per kind (and namespace when
//! given), merged into one stream. A controller reconciles on these events
//! instead of only on a timer. The watch filters on the server: it never
//! lists or watches objects without the owner label.
//!
//! The stream is lazy: watches start when it is first polled, and each
//! yields [`DriftEvent::Resynced`] once it has listed and is live. Events are
//! hints, not state: the watcher may miss changes while it reconnects (it
//! then lists again and yields `Resynced` again), so a controller reconciles
//! on `Resynced` and still on an interval too.

use std::collections::BTreeSet;

use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use gitops_core::{GroupKind, Inventory, OWNER_LABEL, ObjectKey, OwnerId};
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::discovery::DiscoveryError;
use crate::target::KubeTarget;

/// Something changed about the owner's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftEvent {
    /// An owned object was created or modified.
    Changed(ObjectKey),
    /// An owned object was deleted.
    Deleted(ObjectKey),
    /// The watch of a kind has listed its objects and is live: at start,
    /// and again after each restart (changes may have been missed meanwhile:
    /// reconcile).
    Resynced(GroupKind),
}

impl DriftEvent {
    /// The object concerned, if one.
    pub fn key(&self) -> Option<&ObjectKey> {
        match self {
            Self::Changed(k) | Self::Deleted(k) => Some(k),
            Self::Resynced(_) => None,
        }
    }
}

/// The error of a drift watch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The kinds to watch could not be resolved.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A watch failed; the stream retries with backoff and goes on.
    #[error("drift watch of {kind}: {source}")]
    Watch {
        /// The kind whose watch failed.
        kind: GroupKind,
        /// The watcher error.
        #[source]
        source: watcher::Error,
    },
}

/// A merged stream of drift events; errors are transient (the stream goes on).
pub type DriftStream = BoxStream<'static, Result<DriftEvent, WatchError>>;

/// What one drift watch covers: a kind, in one namespace or in all
/// (`None`, and always for cluster-scoped kinds).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct WatchScope {
    /// The kind.
    pub kind: GroupKind,
    /// The namespace, `None` for all namespaces.
    pub namespace: Option<String>,
}

impl WatchScope {
    /// The scopes covering every object of an inventory: one per kind and
    /// namespace present.
    pub fn for_inventory(inventory: &Inventory) -> BTreeSet<WatchScope> {
        inventory
            .objects
            .keys()
            .map(|k| WatchScope {
                kind: k.group_kind(),
                namespace: k.namespace.clone(),
            })
            .collect()
    }
}

impl KubeTarget {
    /// Watches the objects labelled with `owner` in `scopes`. Kinds the server
    /// does not serve are skipped; with nothing to watch, the stream stays
    /// pending forever.
    ///
    /// # Errors
    /// When discovery fails.
    pub async fn drift_watch(
        &self,
        owner: &OwnerId,
        scopes: impl IntoIterator<Item = WatchScope>,
    ) -> Result<DriftStream, WatchError> {
        let selector = format!("{OWNER_LABEL}={}", owner.as_str());
        let mut streams: Vec<DriftStream> = Vec::new();
        for scope in scopes.into_iter().collect::<BTreeSet<_>>() {
            let Some(kind) = self.catalog().resolve_group_kind(&scope.kind).await? else {
                tracing::debug!(kind = %scope.kind, "not served; not watched");
                continue;
            };
            if !kind.supports("watch") {
                continue;
            }
            let api = self.api(&kind, scope.namespace.as_deref());
            let config = watcher::Config::default().labels(&selector);
            let gk = scope.kind.clone();
            let s = watcher::watcher(api, config)
                .default_backoff()
                .filter_map(move |event| {
                    let out = match event {
                        Ok(Event::Apply(o)) => Some(Ok(DriftEvent::Changed(key_of(&gk, &o)))),
                        Ok(Event::Delete(o)) => Some(Ok(DriftEvent::Deleted(key_of(&gk, &o)))),
                        Ok(Event::InitDone) => Some(Ok(DriftEvent::Resynced(gk.clone()))),
                        Ok(Event::Init | Event::InitApply(_)) => None,
                        Err(source) => Some(Err(WatchError::Watch {
                            kind: gk.clone(),
                            source,
                        })),
                    };
                    futures::future::ready(out)
                })
                .boxed();
            streams.push(s);
        }
        if streams.is_empty() {
            // Nothing to watch: a stream that never yields, rather than one
            // that ends and makes a `select!` loop spin.
            return Ok(stream::pending().boxed());
        }
        Ok(stream::select_all(streams).boxed())
    }

    /// [`drift_watch`](Self::drift_watch) over every kind and namespace of
    /// `inventory`.
    ///
    /// # Errors
    /// When discovery fails.
    pub async fn drift_watch_inventory(
        &self,
        inventory: &Inventory,
    ) -> Result<DriftStream, WatchError> {
        self.drift_watch(&inventory.owner, WatchScope::for_inventory(inventory))
            .await
    }
}

fn key_of(gk: &GroupKind, o: &DynamicObject) -> ObjectKey {
    ObjectKey::new(
        gk.group.clone(),
        gk.kind.clone(),
        o.metadata.namespace.as_deref(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}
