//! Server-side-apply aware diff of Kubernetes objects, computed offline and
//! purely (no IO).
//!
//! ```
//! use gitops_diff::{compare, DiffOptions, Op};
//! use serde_json::json;
//!
//! let desired = json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web", "namespace": "prod"},
//!     "spec": {"replicas": 2, "template": {"spec": {"containers": [
//!         {"name": "app", "image": "web:2", "ports": [{"containerPort": 8080}],
//!          "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}
//!     ]}}}
//! });
//! // What the API server returns: defaults, status, canonical quantities...
//! let live = json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web", "namespace": "prod", "uid": "1", "resourceVersion": "7"},
//!     "spec": {"replicas": 2, "progressDeadlineSeconds": 600,
//!         "template": {"spec": {"containers": [
//!             {"name": "app", "image": "web:1", "imagePullPolicy": "IfNotPresent",
//!              "ports": [{"containerPort": 8080, "protocol": "TCP"}],
//!              "resources": {"limits": {"cpu": "500m", "memory": "1024Mi"}}}
//!         ]}}},
//!     "status": {"replicas": 2}
//! });
//! let diff = compare(&desired, &live, None, &DiffOptions::default()).unwrap();
//! // ...and only the image is drift.
//! assert_eq!(diff.changes.len(), 1);
//! assert_eq!(diff.changes[0].op, Op::Replace);
//! assert_eq!(diff.changes[0].path.to_string(), "spec.template.spec.containers[name=app].image");
//!
//! // The JSON Patch turns live into desired for the compared fields.
//! let mut patched = live.clone();
//! gitops_diff::json_patch::patch(&mut patched, &diff.json_patch()).unwrap();
//! assert!(compare(&desired, &patched, None, &DiffOptions::default()).unwrap().is_empty());
//! ```
//!
//! # What counts as a difference
//!
//! * **Field sets** ([`FieldSet`]): the `managedFields` `fieldsV1` encoding,
//!   parsed and produced; [`FieldSet::declared_by`] computes what a manifest
//!   sets, as the API server records it for an Apply.
//! * **Apply semantics** ([`compare`]): fields the desired manifest sets are
//!   compared; fields we owned before and no longer declare are removals;
//!   fields owned by others, server defaults, `status` and server-populated
//!   metadata are never drift. An omitted list key field owned at its key
//!   default (`protocol: TCP`) is not a removal.
//! * **Lists** ([`ListSemantics`]): associative lists by key
//!   ([`BuiltinLists`] for built-in types, [`CrdLists`] from a CRD's schema,
//!   [`LayeredLists`] to combine), sets by value, atomic lists whole; maps
//!   granular or atomic ([`MapType`]). Updates (whole-object writes by a
//!   field manager) are [`server_side_update`].
//! * **Canonical values**: quantities in quantity positions (`0.5` = `500m`,
//!   `1Gi` = `1024Mi`), integers vs floats, `null`/empty vs absent; int-or-string
//!   values stay distinct (`8080` ≠ `"8080"`); for built-in kinds a declared
//!   `false`/`0`/`""` equals an absent field (Go `omitempty`); a Secret's
//!   `stringData` is compared folded into `data`, as the server stores it.
//! * **Ignore rules** ([`IgnoreRule`]): JSON pointers per group/kind, and
//!   fields owned by given field managers.
//! * **Output** ([`ObjectDiff`]): field-level changes in a stable order, RFC 6902
//!   JSON Patch, RFC 7386 merge patch, YAML unified diff ([`unified_diff`]).
//! * **Server-side apply** ([`server_side_apply`]): the merge and ownership
//!   bookkeeping of the API server, for the in-memory runtime.
//! * **Escaping for people** ([`escape`](mod@escape)): user-controlled text in
//!   human-readable output cannot forge lines or drive the terminal.

/// The json-patch crate of [`ObjectDiff::json_patch`]'s type: the major
/// version kube-rs uses, so the patch is a `kube::api::Patch::Json` as is.
pub use json_patch;

mod apply;
mod compare;
mod duplicates;
pub mod escape;
pub mod fieldset;
mod lists;
mod render;
pub mod secrets;
mod value;

pub use apply::{
    ApplyError, ApplyRequest, FieldConflict, UpdateRequest, server_side_apply, server_side_update,
};
pub use compare::{
    Change, DiffError, DiffOptions, IgnoreRule, ObjectDiff, Op, compare, strip_server_fields,
};
pub use duplicates::{DuplicateListKey, duplicate_list_keys};
pub use escape::{EscapeWriter, Escaped, escaped};
pub use fieldset::{
    FieldPath, FieldSet, FieldsV1Error, GroupKind, ManagedFieldsEntry, PathElement, managed_fields,
    owned_by, resolve,
};
pub use lists::{BuiltinLists, CrdError, CrdLists, LayeredLists, ListSemantics, ListType, MapType};
pub use render::{to_yaml, unified_diff};
pub use value::{LAST_APPLIED_ANNOTATION, Quantity, pointer_escape, remove_pointer};
