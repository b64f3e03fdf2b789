//! kustomize's legacy output order: by kind (namespaces and RBAC first,
//! webhooks last), then by gvk, namespace and name.

use crate::resource::Resource;

/// Kinds output first, in this order.
pub const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds output last, in this order.
pub const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Sorts stably in the legacy order (`first`/`last` override the kind lists).
pub fn legacy(res: &mut [Resource], first: Option<&[String]>, last: Option<&[String]>) {
    let first: Vec<&str> = first.map_or_else(
        || ORDER_FIRST.to_vec(),
        |f| f.iter().map(String::as_str).collect(),
    );
    let last: Vec<&str> = last.map_or_else(
        || ORDER_LAST.to_vec(),
        |f| f.iter().map(String::as_str).collect(),
    );
    let rank = |k: &str| -> i64 {
        if let Some(i) = first.iter().position(|x| *x == k) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|x| *x == k) {
            return i as i64 + 1;
        }
        0
    };
    res.sort_by_cached_key(|r| {
        let id = r.cur_id();
        (
            rank(&id.gvk.kind),
            format!("{}.{}.{}", id.gvk.kind, id.gvk.version, id.gvk.group),
            id.effective_namespace().to_owned(),
            id.name.clone(),
        )
    });
}
