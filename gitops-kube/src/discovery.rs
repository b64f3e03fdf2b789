//! API discovery: which resource and scope serve a kind, cached.
//!
//! The catalog is read from the API server's discovery endpoints (`/api`,
//! `/apis`, `/apis/GROUP/VERSION`) and cached; it is read again when a kind
//! it does not know is asked for (a CRD applied a moment ago), at most once
//! per [`ApiCatalog::resolve`] call. A group version that fails to answer (a
//! broken aggregated API such as an unavailable `metrics.k8s.io`) is skipped
//! with a warning instead of failing the whole catalog, and recorded (see
//! [`ApiCatalog::failed_group_versions`]): a kind of that group that the
//! catalog does not know may well be served, so callers must not conclude
//! that its objects are absent. A group version that `/apis` listed but
//! whose own endpoint answers 404 went away in between (its CRD was just
//! deleted): it is not served, so it is neither kept nor counted as failed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use gitops_core::{GroupKind, Scope};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::api::ApiResource;
use tokio::sync::RwLock;

use crate::error::is_not_served;

/// How one kind is served: its REST resource and its scope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedKind {
    /// Group, version, kind and plural (the REST path segment).
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
    /// The verbs the resource supports (`get`, `list`, `watch`, `patch`, ...).
    pub verbs: Vec<String>,
}

impl ResolvedKind {
    /// Whether the resource supports a verb.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

#[derive(Debug, Default)]
struct Catalog {
    /// (group, version, kind) -> kind.
    by_gvk: HashMap<(String, String, String), Arc<ResolvedKind>>,
    /// (group, kind) -> the kind at the group's preferred version when it
    /// serves the kind there, else at the first version that does.
    by_gk: HashMap<GroupKind, Arc<ResolvedKind>>,
    /// (group, version) pairs whose discovery failed at the last load.
    failed: BTreeSet<(String, String)>,
    loaded: bool,
    generation: u64,
}

impl Catalog {
    /// The versions of `group` (as `group/version`, or `version` for the
    /// core group) whose discovery failed.
    fn failed_in_group(&self, group: &str) -> Vec<String> {
        self.failed
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(g, v)| {
                if g.is_empty() {
                    v.clone()
                } else {
                    format!("{g}/{v}")
                }
            })
            .collect()
    }

    fn insert_list(&mut self, group: &str, version: &str, list: &APIResourceList, preferred: bool) {
        for r in &list.resources {
            if r.name.contains('/') {
                continue; // a subresource such as deployments/status
            }
            let g = r.group.clone().unwrap_or_else(|| group.to_owned());
            let v = r.version.clone().unwrap_or_else(|| version.to_owned());
            let api_version = if g.is_empty() {
                v.clone()
            } else {
                format!("{g}/{v}")
            };
            let kind = Arc::new(ResolvedKind {
                resource: ApiResource {
                    group: g.clone(),
                    version: v.clone(),
                    api_version,
                    kind: r.kind.clone(),
                    plural: r.name.clone(),
                },
                scope: if r.namespaced {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                },
                verbs: r.verbs.clone(),
            });
            let gk = GroupKind::new(g.clone(), r.kind.clone());
            if preferred || !self.by_gk.contains_key(&gk) {
                self.by_gk.insert(gk, kind.clone());
            }
            self.by_gvk.insert((g, v, r.kind.clone()), kind);
        }
    }
}

/// The error returned when the discovery endpoints cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("API discovery failed: {source}")]
pub struct DiscoveryError {
    /// The request that failed.
    #[source]
    pub source: kube::Error,
}

/// A cached catalog of the API server's kinds.
#[derive(Clone)]
pub struct ApiCatalog {
    client: Client,
    inner: Arc<RwLock<Catalog>>,
}

impl std::fmt::Debug for ApiCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCatalog").finish_non_exhaustive()
    }
}

impl ApiCatalog {
    /// An empty catalog, read on first use.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            inner: Arc::new(RwLock::new(Catalog::default())),
        }
    }

    /// Resolves `apiVersion` + `kind`; reads the catalog again (once) when the
    /// kind is unknown. `Ok(None)`: the server does not serve it.
    ///
    /// # Errors
    /// When the discovery endpoints cannot be read.
    pub async fn resolve(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<Option<Arc<ResolvedKind>>, DiscoveryError> {
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        self.lookup(|c| c.by_gvk.get(&key).cloned()).await
    }

    /// Resolves a group and kind at its preferred version; reads the catalog
    /// again (once) when the kind is unknown. `Ok(None)`: not served.
    ///
    /// # Errors
    /// When the discovery endpoints cannot be read.
    pub async fn resolve_group_kind(
        &self,
        gk: &GroupKind,
    ) -> Result<Option<Arc<ResolvedKind>>, DiscoveryError> {
        self.lookup(|c| c.by_gk.get(gk).cloned()).await
    }

    async fn lookup(
        &self,
        find: impl Fn(&Catalog) -> Option<Arc<ResolvedKind>>,
    ) -> Result<Option<Arc<ResolvedKind>>, DiscoveryError> {
        let seen_generation = {
            let c = self.inner.read().await;
            if c.loaded
                && let Some(found) = find(&c)
            {
                return Ok(Some(found));
            }
            c.generation
        };
        self.refresh_if_generation(seen_generation).await?;
        Ok(find(&*self.inner.read().await))
    }

    /// The group versions of `group` whose discovery failed at the last read
    /// of the catalog (`group/version`, or `version` for the core group).
    /// While this is not empty, a kind of `group` that the catalog does not
    /// know may still be served: it cannot be taken for absent.
    pub async fn failed_group_versions(&self, group: &str) -> Vec<String> {
        self.inner.read().await.failed_in_group(group)
    }

    /// Reads the whole catalog again and returns every kind it serves, each
    /// once, at its group's preferred version (sorted by group and kind),
    /// with the group versions whose discovery failed (`group/version`, or
    /// `version` for the core group): while those are not empty, some kinds
    /// may be missing.
    ///
    /// # Errors
    /// When the discovery endpoints cannot be read.
    pub async fn fresh_kinds(
        &self,
    ) -> Result<(Vec<Arc<ResolvedKind>>, Vec<String>), DiscoveryError> {
        self.refresh().await?;
        let c = self.inner.read().await;
        let mut kinds: Vec<(&GroupKind, &Arc<ResolvedKind>)> = c.by_gk.iter().collect();
        kinds.sort_by(|a, b| a.0.cmp(b.0));
        let failed = c
            .failed
            .iter()
            .map(|(g, v)| {
                if g.is_empty() {
                    v.clone()
                } else {
                    format!("{g}/{v}")
                }
            })
            .collect();
        Ok((
            kinds.into_iter().map(|(_, k)| Arc::clone(k)).collect(),
            failed,
        ))
    }

    /// Reads the whole catalog again.
    ///
    /// # Errors
    /// When the discovery endpoints cannot be read.
    pub async fn refresh(&self) -> Result<(), DiscoveryError> {
        let generation = self.inner.read().await.generation;
        self.refresh_if_generation(generation).await
    }

    /// Refreshes unless another caller already did since `seen` (so a burst
    /// of lookups of unknown kinds costs one refresh, not one each).
    async fn refresh_if_generation(&self, seen: u64) -> Result<(), DiscoveryError> {
        let mut c = self.inner.write().await;
        if c.generation != seen {
            return Ok(());
        }
        let fresh = self.load().await?;
        *c = Catalog {
            generation: seen + 1,
            loaded: true,
            ..fresh
        };
        Ok(())
    }

    /// Reads one group version (`v1`, `apps/v1`) into the catalog; returns
    /// whether it now serves `kind`. Cheaper than a full refresh when waiting
    /// for a new CRD to be served.
    ///
    /// # Errors
    /// When the group version cannot be read (for example not served yet).
    pub async fn refresh_group_version(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<bool, DiscoveryError> {
        let list = if group.is_empty() {
            self.client.list_core_api_resources(version).await
        } else {
            self.client
                .list_api_group_resources(&format!("{group}/{version}"))
                .await
        }
        .map_err(|source| DiscoveryError { source })?;
        let mut c = self.inner.write().await;
        c.insert_list(group, version, &list, false);
        c.failed.remove(&(group.to_owned(), version.to_owned()));
        c.generation += 1;
        Ok(c.by_gvk
            .contains_key(&(group.to_owned(), version.to_owned(), kind.to_owned())))
    }

    async fn load(&self) -> Result<Catalog, DiscoveryError> {
        let mut catalog = Catalog::default();
        let core = self
            .client
            .list_core_api_versions()
            .await
            .map_err(|source| DiscoveryError { source })?;
        for (i, v) in core.versions.iter().enumerate() {
            match self.client.list_core_api_resources(v).await {
                Ok(list) => catalog.insert_list("", v, &list, i == 0),
                Err(e) if is_not_served(&e) => {
                    tracing::debug!(version = %v, "core API version no longer served");
                }
                Err(e) => {
                    tracing::warn!(version = %v, error = %e, "skipping core API version");
                    catalog.failed.insert((String::new(), v.clone()));
                }
            }
        }
        let groups = self
            .client
            .list_api_groups()
            .await
            .map_err(|source| DiscoveryError { source })?;
        for g in &groups.groups {
            let preferred = g.preferred_version.as_ref().map(|p| p.version.as_str());
            // Preferred version first, so that it wins `by_gk`.
            let mut versions: Vec<&str> = g.versions.iter().map(|v| v.version.as_str()).collect();
            versions.sort_by_key(|v| Some(*v) != preferred);
            for v in versions {
                let gv = format!("{}/{v}", g.name);
                match self.client.list_api_group_resources(&gv).await {
                    Ok(list) => catalog.insert_list(&g.name, v, &list, Some(v) == preferred),
                    // Listed a moment ago, gone now (its CRD was deleted in
                    // between): nothing of it is served, so nothing is unknown.
                    Err(e) if is_not_served(&e) => {
                        tracing::debug!(group_version = %gv, "API group version no longer served");
                    }
                    Err(e) => {
                        tracing::warn!(group_version = %gv, error = %e, "skipping API group version");
                        catalog.failed.insert((g.name.clone(), v.to_owned()));
                    }
                }
            }
        }
        tracing::debug!(kinds = catalog.by_gvk.len(), "API discovery loaded");
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_group_versions_are_named_per_group() {
        let mut c = Catalog::default();
        c.failed.insert(("metrics.k8s.io".into(), "v1beta1".into()));
        c.failed.insert((String::new(), "v2".into()));
        assert_eq!(
            c.failed_in_group("metrics.k8s.io"),
            vec!["metrics.k8s.io/v1beta1"]
        );
        assert_eq!(c.failed_in_group(""), vec!["v2"]);
        assert!(c.failed_in_group("apps").is_empty());
    }
}
