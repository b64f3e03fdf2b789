//! Turning kube-rs and API server errors into the core [`TargetError`].

use std::collections::BTreeMap;

use gitops_core::{ObjectKey, OwnershipConflict, TargetError};
use kube::core::Status;

use crate::discovery::DiscoveryError;

/// Maps an error of a request about `key` to its meaning.
pub(crate) fn from_kube(key: &ObjectKey, error: kube::Error) -> TargetError {
    match error {
        kube::Error::Api(status) => from_status(key, *status),
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => TargetError::Unavailable {
            message: format!("{key}: {}: {}", transport_failure(&e), causes(&e)),
            source: Some(Box::new(e)),
        },
        e @ kube::Error::ReadEvents(_) => TargetError::Unavailable {
            message: format!("{key}: {e}"),
            source: Some(Box::new(e)),
        },
        other => TargetError::Other {
            message: format!("{key}: {other}"),
            source: Some(Box::new(other)),
        },
    }
}

/// What a transport-level failure of one request means, from the types in
/// its chain of causes: the connection could not be made, or the server
/// failed or closed it while handling the request (a server that panics on
/// a request drops the connection: hyper's `SendRequest` error, "connection
/// closed before message completed").
fn transport_failure(error: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && client.is_connect()
        {
            return "cannot connect to the API server";
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return "the API server did not answer this request in time";
        }
        cause = e.source();
    }
    "the API server failed or closed the connection while handling this request"
}

/// The messages of an error and its causes, joined (each once).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if !out.iter().any(|o| o.contains(&text)) {
            out.push(text);
        }
        cause = e.source();
    }
    out.join(": ")
}

/// Whether `error` is a `404` that is not a `Status` about a missing object:
/// the server answered "404 page not found" because it does not serve the
/// resource path at all (a CRD deleted since discovery was cached). An
/// object that is merely absent comes back as a `Status` with reason
/// `NotFound`.
pub(crate) fn is_not_served(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if is_bare_404(status))
}

fn is_bare_404(status: &Status) -> bool {
    status.code == 404 && status.reason != "NotFound"
}

pub(crate) fn from_discovery(key: &ObjectKey, error: DiscoveryError) -> TargetError {
    // Discovery fails when the server cannot be reached or refuses us.
    match error.source {
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            TargetError::Forbidden {
                message: format!("{key}: API discovery: {}", status.message),
            }
        }
        source => TargetError::Unavailable {
            message: format!("{key}: API discovery failed: {source}"),
            source: Some(Box::new(source)),
        },
    }
}

fn from_status(key: &ObjectKey, status: Status) -> TargetError {
    let message = status.message.clone();
    match (status.code, status.reason.as_str()) {
        (409, "Conflict") if has_field_conflicts(&status) => TargetError::Conflict {
            key: key.clone(),
            conflicts: conflicts(&status),
        },
        (404, _) if is_bare_404(&status) => TargetError::Other {
            message: format!("{key}: the server does not serve this resource: {message}"),
            source: Some(Box::new(kube::Error::Api(Box::new(status)))),
        },
        (404, _) => {
            let details_kind = status.details.as_ref().map(|d| d.kind.as_str());
            match (details_kind, &key.namespace) {
                (Some("namespaces"), Some(ns)) => TargetError::NamespaceNotFound {
                    key: key.clone(),
                    namespace: ns.clone(),
                },
                _ => TargetError::NotFound { key: key.clone() },
            }
        }
        // Server-side apply reports a manifest it cannot type as a 500.
        (422 | 400, _) | (500, _) if code_is_invalid(status.code, &message) => {
            TargetError::Invalid {
                key: key.clone(),
                message,
            }
        }
        (401 | 403, _) => TargetError::Forbidden {
            message: format!("{key}: {message}"),
        },
        (429 | 500.., _) => TargetError::Unavailable {
            message: format!("{key}: {message}"),
            source: Some(Box::new(kube::Error::Api(Box::new(status)))),
        },
        _ => TargetError::Other {
            message: format!("{key}: {message}"),
            source: Some(Box::new(kube::Error::Api(Box::new(status)))),
        },
    }
}

fn code_is_invalid(code: u16, message: &str) -> bool {
    code == 422
        || code == 400
        || message.starts_with("failed to create typed patch object")
        || message.starts_with("failed to create typed live object")
}

fn has_field_conflicts(status: &Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
        || status.message.starts_with("Apply failed with")
}

/// The conflicts of a server-side-apply `409`, grouped by manager.
///
/// Each cause reads `{"reason": "FieldManagerConflict", "message": "conflict
/// with \"kubectl\" using v1", "field": ".data.k"}` (Kubernetes
/// `fieldmanager/internal/conflict.go`).
fn conflicts(status: &Status) -> Vec<OwnershipConflict> {
    let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(details) = &status.details {
        for cause in &details.causes {
            if cause.reason != "FieldManagerConflict" {
                continue;
            }
            let manager = quoted_manager(&cause.message).unwrap_or_else(|| cause.message.clone());
            by_manager
                .entry(manager)
                .or_default()
                .push(cause.field.clone());
        }
    }
    if by_manager.is_empty() {
        // No structured causes: keep the server's whole message.
        by_manager.insert(status.message.clone(), Vec::new());
    }
    by_manager
        .into_iter()
        .map(|(manager, mut fields)| {
            fields.sort();
            fields.dedup();
            OwnershipConflict { manager, fields }
        })
        .collect()
}

/// The manager name in `conflict with "NAME"...` (a Go `%q` string).
fn quoted_manager(message: &str) -> Option<String> {
    let rest = message.split_once('"')?.1;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn conflict_status() -> Status {
        Status::failure(
            "Apply failed with 2 conflicts: conflict with \"someone-else\": .data.k",
            "Conflict",
        )
        .with_code(409)
        .with_details(StatusDetails {
            causes: vec![
                StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"someone-else\"".into(),
                    field: ".data.k".into(),
                },
                StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"kube \\\"ctl\\\"\" using v1".into(),
                    field: ".data.j".into(),
                },
            ],
            ..details()
        })
    }

    fn details() -> StatusDetails {
        serde_json::from_value(serde_json::json!({})).unwrap()
    }

    #[test]
    fn apply_conflicts_name_managers_and_fields() {
        let key = ObjectKey::new("", "ConfigMap", Some("ns"), "cm");
        match from_status(&key, conflict_status()) {
            TargetError::Conflict { key: k, conflicts } => {
                assert_eq!(k, key);
                assert_eq!(
                    conflicts,
                    vec![
                        OwnershipConflict {
                            manager: "kube \"ctl\"".into(),
                            fields: vec![".data.j".into()]
                        },
                        OwnershipConflict {
                            manager: "someone-else".into(),
                            fields: vec![".data.k".into()]
                        },
                    ]
                );
            }
            other => panic!("not a conflict: {other:?}"),
        }
    }

    #[test]
    fn missing_namespace_is_recognised() {
        let key = ObjectKey::new("", "ConfigMap", Some("gone"), "cm");
        let status = Status::failure("namespaces \"gone\" not found", "NotFound")
            .with_code(404)
            .with_details(StatusDetails {
                name: "gone".into(),
                kind: "namespaces".into(),
                ..details()
            });
        assert!(matches!(
            from_status(&key, status),
            TargetError::NamespaceNotFound { namespace, .. } if namespace == "gone"
        ));
    }

    #[test]
    fn status_codes_map_by_meaning() {
        let key = ObjectKey::new("", "ConfigMap", Some("ns"), "cm");
        let s = |code, reason| Status::failure("m", reason).with_code(code);
        assert!(matches!(
            from_status(&key, s(422, "Invalid")),
            TargetError::Invalid { .. }
        ));
        assert!(matches!(
            from_status(&key, s(403, "Forbidden")),
            TargetError::Forbidden { .. }
        ));
        assert!(from_status(&key, s(503, "ServiceUnavailable")).is_transient());
        assert!(matches!(
            from_status(&key, s(404, "NotFound")),
            TargetError::NotFound { .. }
        ));
    }

    /// Patches a ConfigMap through a client whose server is at `addr`.
    async fn patch_at(addr: std::net::SocketAddr) -> TargetError {
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "ns");
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        let params = kube::api::PatchParams::apply("t");
        let error = api
            .patch("cm", &params, &kube::api::Patch::Apply(&body))
            .await
            .unwrap_err();
        from_kube(&ObjectKey::new("", "ConfigMap", Some("ns"), "cm"), error)
    }

    #[tokio::test]
    async fn a_server_closing_the_connection_names_the_object_and_says_so() {
        // A server that reads the request and hangs up without answering,
        // as kube-apiserver 1.20 does when applying an APIService panics.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::Read;
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
        });
        let error = patch_at(addr).await;
        server.join().unwrap();
        assert!(error.is_transient(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("runtime unavailable: ConfigMap/ns/cm: "),
            "{text}"
        );
        assert!(
            text.contains(
                "the API server failed or closed the connection while handling this request"
            ),
            "{text}"
        );
        assert!(text.contains("SendRequest"), "the cause is kept: {text}");
    }

    #[tokio::test]
    async fn a_server_that_cannot_be_reached_is_told_apart() {
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let error = patch_at(addr).await;
        assert!(error.is_transient(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("ConfigMap/ns/cm: cannot connect to the API server"),
            "{text}"
        );
    }

    #[test]
    fn a_bare_404_is_not_a_missing_object() {
        let key = ObjectKey::new("g.example.com", "Widget", Some("ns"), "w");
        // What kube-rs makes of a `404 page not found` text body.
        let bare =
            Status::failure("404 page not found", "Failed to parse error data").with_code(404);
        assert!(is_not_served(&kube::Error::Api(Box::new(bare.clone()))));
        assert!(!matches!(
            from_status(&key, bare),
            TargetError::NotFound { .. }
        ));
        let missing = Status::failure("widgets \"w\" not found", "NotFound").with_code(404);
        assert!(!is_not_served(&kube::Error::Api(Box::new(missing))));
    }
}
