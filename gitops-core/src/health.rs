//! Health of live objects: pure assessments of their `status`, per kind.
//!
//! The rules follow what the Kubernetes controllers report (and what
//! `kubectl rollout status` and Argo CD's health checks read): the
//! controller must have observed the latest generation, then the kind's own
//! counters or conditions decide.
//!
//! ```
//! use gitops_core::health::{assess, HealthStatus};
//! use gitops_core::ObjectKey;
//! use serde_json::json;
//! let key = ObjectKey::new("apps", "Deployment", Some("shop"), "web");
//! let live = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
//!     "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}});
//! let h = assess(&key, Some(&live));
//! assert_eq!(h.status, HealthStatus::Progressing);
//! assert_eq!(assess(&key, None).status, HealthStatus::Missing);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::key::ObjectKey;

/// The health of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working as declared.
    Healthy,
    /// On its way (rollout, binding, provisioning).
    Progressing,
    /// Failed or stuck.
    Degraded,
    /// Not in the runtime.
    Missing,
    /// No health rule for this kind, or the status cannot be read.
    Unknown,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Missing => "Missing",
            Self::Unknown => "Unknown",
        })
    }
}

/// A health status with its reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, in words.
    pub reason: String,
}

fn h(status: HealthStatus, reason: impl Into<String>) -> Health {
    Health {
        status,
        reason: reason.into(),
    }
}

fn int(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn cond_is(v: &Value, kind: &str, status: &str) -> bool {
    condition(v, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some(status)
}

fn cond_reason(v: &Value, kind: &str) -> String {
    condition(v, kind)
        .and_then(|c| c.get("message").or_else(|| c.get("reason")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `Some(Progressing)` while the controller has not seen the latest spec.
fn generation_pending(v: &Value) -> Option<Health> {
    let generation = int(v, "/metadata/generation")?;
    let observed = int(v, "/status/observedGeneration").unwrap_or(0);
    (observed < generation).then(|| {
        h(
            HealthStatus::Progressing,
            format!("waiting for the controller to observe generation {generation} (observed {observed})"),
        )
    })
}

/// Assesses one object (`None`: not in the runtime).
pub fn assess(key: &ObjectKey, live: Option<&Value>) -> Health {
    let Some(v) = live else {
        return h(HealthStatus::Missing, "not found in the runtime");
    };
    match (key.group.as_str(), key.kind.as_str()) {
        ("apps", "Deployment") => deployment(v),
        ("apps", "StatefulSet") => statefulset(v),
        ("apps", "DaemonSet") => daemonset(v),
        ("apps", "ReplicaSet") => replicaset(v),
        ("batch", "Job") => job(v),
        ("", "Pod") => pod(v),
        ("", "PersistentVolumeClaim") => pvc(v),
        ("", "Service") => service(v),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(v),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(v),
        ("", "Namespace") => namespace(v),
        _ => h(
            HealthStatus::Unknown,
            format!("no health rule for {}", key.group_kind()),
        ),
    }
}

fn deployment(v: &Value) -> Health {
    if let Some(p) = generation_pending(v) {
        return p;
    }
    if condition(v, "Progressing")
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        == Some("ProgressDeadlineExceeded")
    {
        return h(
            HealthStatus::Degraded,
            format!(
                "progress deadline exceeded: {}",
                cond_reason(v, "Progressing")
            ),
        );
    }
    if v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return h(HealthStatus::Healthy, "rollout paused");
    }
    let want = int(v, "/spec/replicas").unwrap_or(1);
    let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
    let total = int(v, "/status/replicas").unwrap_or(0);
    let available = int(v, "/status/availableReplicas").unwrap_or(0);
    if updated < want {
        return h(
            HealthStatus::Progressing,
            format!("{updated} of {want} replicas updated"),
        );
    }
    if total > updated {
        return h(
            HealthStatus::Progressing,
            format!("{} old replicas pending termination", total - updated),
        );
    }
    if available < updated {
        return h(
            HealthStatus::Progressing,
            format!("{available} of {updated} updated replicas available"),
        );
    }
    h(
        HealthStatus::Healthy,
        format!("{available} replicas available"),
    )
}

fn statefulset(v: &Value) -> Health {
    if let Some(p) = generation_pending(v) {
        return p;
    }
    let want = int(v, "/spec/replicas").unwrap_or(1);
    let ready = int(v, "/status/readyReplicas").unwrap_or(0);
    if ready < want {
        return h(
            HealthStatus::Progressing,
            format!("{ready} of {want} replicas ready"),
        );
    }
    if v.pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete")
    {
        let cur = v.pointer("/status/currentRevision");
        let upd = v.pointer("/status/updateRevision");
        if upd.is_some() && cur != upd {
            return h(HealthStatus::Progressing, "rolling update in progress");
        }
    }
    h(HealthStatus::Healthy, format!("{ready} replicas ready"))
}

fn daemonset(v: &Value) -> Health {
    if let Some(p) = generation_pending(v) {
        return p;
    }
    let want = int(v, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(v, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(v, "/status/numberAvailable").unwrap_or(0);
    if updated < want {
        return h(
            HealthStatus::Progressing,
            format!("{updated} of {want} pods updated"),
        );
    }
    if available < want {
        return h(
            HealthStatus::Progressing,
            format!("{available} of {want} pods available"),
        );
    }
    h(HealthStatus::Healthy, format!("{available} pods available"))
}

fn replicaset(v: &Value) -> Health {
    if let Some(p) = generation_pending(v) {
        return p;
    }
    if cond_is(v, "ReplicaFailure", "True") {
        return h(HealthStatus::Degraded, cond_reason(v, "ReplicaFailure"));
    }
    let want = int(v, "/spec/replicas").unwrap_or(1);
    let available = int(v, "/status/availableReplicas").unwrap_or(0);
    if available < want {
        return h(
            HealthStatus::Progressing,
            format!("{available} of {want} replicas available"),
        );
    }
    h(
        HealthStatus::Healthy,
        format!("{available} replicas available"),
    )
}

fn job(v: &Value) -> Health {
    if cond_is(v, "Failed", "True") {
        return h(
            HealthStatus::Degraded,
            format!("job failed: {}", cond_reason(v, "Failed")),
        );
    }
    if cond_is(v, "Complete", "True") {
        return h(HealthStatus::Healthy, "job complete");
    }
    if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return h(HealthStatus::Healthy, "job suspended");
    }
    h(HealthStatus::Progressing, "job running")
}

fn pod(v: &Value) -> Health {
    let statuses = v
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &statuses {
        if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str)
            && matches!(
                reason,
                "CrashLoopBackOff"
                    | "ImagePullBackOff"
                    | "ErrImagePull"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
            )
        {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            return h(
                HealthStatus::Degraded,
                format!("container {name}: {reason}"),
            );
        }
    }
    match v.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => h(HealthStatus::Healthy, "pod succeeded"),
        Some("Failed") => h(HealthStatus::Degraded, "pod failed"),
        Some("Running") => {
            if cond_is(v, "Ready", "True") {
                h(HealthStatus::Healthy, "pod running and ready")
            } else {
                h(HealthStatus::Progressing, "pod running, not ready")
            }
        }
        Some(p) => h(HealthStatus::Progressing, format!("pod {p}")),
        None => h(HealthStatus::Progressing, "pod not scheduled yet"),
    }
}

fn pvc(v: &Value) -> Health {
    match v.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => h(HealthStatus::Healthy, "bound"),
        Some("Lost") => h(HealthStatus::Degraded, "volume lost"),
        Some(p) => h(HealthStatus::Progressing, format!("claim {p}")),
        None => h(HealthStatus::Progressing, "claim pending"),
    }
}

fn has_lb_ingress(v: &Value) -> bool {
    v.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn service(v: &Value) -> Health {
    if v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") && !has_lb_ingress(v)
    {
        return h(
            HealthStatus::Progressing,
            "waiting for a load balancer address",
        );
    }
    h(HealthStatus::Healthy, "service ready")
}

fn ingress(v: &Value) -> Health {
    if has_lb_ingress(v) {
        h(HealthStatus::Healthy, "ingress has an address")
    } else {
        h(HealthStatus::Progressing, "waiting for an ingress address")
    }
}

fn crd(v: &Value) -> Health {
    if cond_is(v, "NamesAccepted", "False") {
        return h(
            HealthStatus::Degraded,
            format!("names not accepted: {}", cond_reason(v, "NamesAccepted")),
        );
    }
    if cond_is(v, "Established", "True") {
        h(HealthStatus::Healthy, "established")
    } else {
        h(HealthStatus::Progressing, "not established yet")
    }
}

fn namespace(v: &Value) -> Health {
    match v.pointer("/status/phase").and_then(Value::as_str) {
        Some("Terminating") => h(HealthStatus::Progressing, "terminating"),
        _ => h(HealthStatus::Healthy, "active"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(group: &str, kind: &str) -> ObjectKey {
        ObjectKey::new(group, kind, Some("ns"), "x")
    }

    #[test]
    fn kinds() {
        let dep = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2}});
        assert_eq!(
            assess(&k("apps", "Deployment"), Some(&dep)).status,
            HealthStatus::Progressing
        );
        let dep = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            assess(&k("apps", "Deployment"), Some(&dep)).status,
            HealthStatus::Healthy
        );
        let stuck = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
        assert_eq!(
            assess(&k("apps", "Deployment"), Some(&stuck)).status,
            HealthStatus::Degraded
        );
        let job = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}});
        assert_eq!(
            assess(&k("batch", "Job"), Some(&job)).status,
            HealthStatus::Degraded
        );
        let pod = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(
            assess(&k("", "Pod"), Some(&pod)).status,
            HealthStatus::Degraded
        );
        let svc = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(
            assess(&k("", "Service"), Some(&svc)).status,
            HealthStatus::Progressing
        );
        let pvc = json!({"status": {"phase": "Bound"}});
        assert_eq!(
            assess(&k("", "PersistentVolumeClaim"), Some(&pvc)).status,
            HealthStatus::Healthy
        );
        let crd = json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(
            assess(
                &k("apiextensions.k8s.io", "CustomResourceDefinition"),
                Some(&crd)
            )
            .status,
            HealthStatus::Healthy
        );
        let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "readyReplicas": 1}});
        assert_eq!(
            assess(&k("apps", "StatefulSet"), Some(&sts)).status,
            HealthStatus::Progressing
        );
        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2}});
        assert_eq!(
            assess(&k("apps", "DaemonSet"), Some(&ds)).status,
            HealthStatus::Healthy
        );
        let rs = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]}});
        assert_eq!(
            assess(&k("apps", "ReplicaSet"), Some(&rs)).status,
            HealthStatus::Degraded
        );
        let ing = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}});
        assert_eq!(
            assess(&k("networking.k8s.io", "Ingress"), Some(&ing)).status,
            HealthStatus::Healthy
        );
        let ns = json!({"status": {"phase": "Terminating"}});
        assert_eq!(
            assess(&ObjectKey::new("", "Namespace", None, "x"), Some(&ns)).status,
            HealthStatus::Progressing
        );
        assert_eq!(
            assess(&k("example.com", "Widget"), Some(&json!({}))).status,
            HealthStatus::Unknown
        );
    }
}
