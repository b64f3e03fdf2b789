//! Compatibility with older API servers' server-side apply.
//!
//! Before Kubernetes 1.21 (fixed by kubernetes/kubernetes#98576),
//! server-side apply refuses a list element that omits a key field, even one
//! the API defaults: a Service port or a container port without `protocol`
//! fails with "associative list with keys has an element that omits key
//! field \"protocol\"". Manifests omit it all the time, so
//! [`default_port_protocols`] fills in the API default (`TCP`) before
//! applying, as Flux does (`fluxcd/pkg/ssa`, `SetNativeKindsDefaults`);
//! [`KubeTarget`](crate::KubeTarget) does it only for such servers by
//! default ([`PortProtocols`](crate::PortProtocols)).
//!
//! The price on those servers: our field manager then owns `protocol`,
//! which the manifest does not declare, and a diff that counts that as a
//! removal reports drift on every sync until it learns that removing a key
//! field equal to its key default changes nothing.

use serde_json::Value;

/// Built-in kinds whose pod specs have container ports, with the pointer of
/// their pod spec.
const POD_SPECS: &[(&str, &str, &str)] = &[
    ("", "Pod", "/spec"),
    ("", "PodTemplate", "/template/spec"),
    ("", "ReplicationController", "/spec/template/spec"),
    ("apps", "Deployment", "/spec/template/spec"),
    ("apps", "StatefulSet", "/spec/template/spec"),
    ("apps", "DaemonSet", "/spec/template/spec"),
    ("apps", "ReplicaSet", "/spec/template/spec"),
    ("batch", "Job", "/spec/template/spec"),
    ("batch", "CronJob", "/spec/jobTemplate/spec/template/spec"),
];

/// Sets `protocol: TCP` on Service ports and container ports that omit it.
/// Returns whether anything was added.
pub fn default_port_protocols(group: &str, kind: &str, object: &mut Value) -> bool {
    let mut changed = false;
    if group.is_empty() && kind == "Service" {
        if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
            for p in ports {
                changed |= default_protocol(p);
            }
        }
        return changed;
    }
    let Some((_, _, pointer)) = POD_SPECS.iter().find(|(g, k, _)| *g == group && *k == kind) else {
        return false;
    };
    let Some(spec) = object.pointer_mut(pointer) else {
        return false;
    };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports {
                        changed |= default_protocol(p);
                    }
                }
            }
        }
    }
    changed
}

fn default_protocol(port: &mut Value) -> bool {
    match port {
        Value::Object(m) if !m.contains_key("protocol") => {
            m.insert("protocol".into(), Value::String("TCP".into()));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_missing_protocols_only() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        assert!(default_port_protocols("", "Service", &mut svc));
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
        );
        let mut deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 8080}]}
        ]}}}});
        assert!(default_port_protocols("apps", "Deployment", &mut deploy));
        assert_eq!(
            deploy.pointer("/spec/template/spec/containers/0/ports/0/protocol"),
            Some(&json!("TCP"))
        );
        let mut cm = json!({"data": {"ports": "x"}});
        assert!(!default_port_protocols("", "ConfigMap", &mut cm));
    }
}
