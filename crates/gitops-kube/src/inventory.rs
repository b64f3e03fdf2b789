//! Where an owner's [`Inventory`] lives in the cluster.
//!
//! **One `v1` ConfigMap per owner**, named by [`inventory_name`], in a
//! configurable namespace ([`DEFAULT_INVENTORY_NAMESPACE`] by default), with
//! the inventory as JSON under the data key [`INVENTORY_DATA_KEY`] and the
//! label [`INVENTORY_LABEL`]` = <owner>`.
//!
//! Why a ConfigMap: it is served by every Kubernetes version and cluster with
//! no CRD to install first (an inventory CRD would itself need an inventory),
//! it is readable with `kubectl get configmap -o yaml`, RBAC can restrict it
//! to one namespace, and its 1 MiB limit holds roughly ten thousand entries.
//! Because it is stored in the cluster, prune decisions survive a restart
//! of the controller. It deliberately does *not* carry the owner label
//! [`OWNER_LABEL`](gitops_core::OWNER_LABEL), so it is never a candidate for
//! observation or pruning of the owner's own objects.

use gitops_core::{Inventory, ObjectKey, OwnerId};
use serde_json::{Value, json};

/// The namespace of inventories unless configured otherwise.
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "gitops-system";
/// The data key holding the inventory JSON.
pub const INVENTORY_DATA_KEY: &str = "inventory.json";
/// The label naming the owner of an inventory ConfigMap.
pub const INVENTORY_LABEL: &str = "gitops-rs.io/inventory-of";
/// The field manager that writes inventories.
pub const INVENTORY_FIELD_MANAGER: &str = "gitops-rs-inventory";

/// The ConfigMap name for an owner's inventory: `gitops-inventory-<owner>`
/// when the owner id is a valid lowercase DNS label, else a sanitized form
/// with a stable hash of the id appended (owner ids may contain `_`, `.` or
/// capitals, which object names may not).
///
/// ```
/// use gitops_core::OwnerId;
/// use gitops_kube::inventory::inventory_name;
/// assert_eq!(inventory_name(&OwnerId::new("shop-prod").unwrap()), "gitops-inventory-shop-prod");
/// let odd = inventory_name(&OwnerId::new("Shop_Prod").unwrap());
/// assert!(odd.starts_with("gitops-inventory-shop-prod-"), "{odd}");
/// assert_ne!(odd, inventory_name(&OwnerId::new("shop-prod").unwrap()));
/// ```
pub fn inventory_name(owner: &OwnerId) -> String {
    let id = owner.as_str();
    let plain = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if plain {
        return format!("gitops-inventory-{id}");
    }
    let sanitized: String = id
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    let sanitized = sanitized.trim_matches('-');
    format!(
        "gitops-inventory-{sanitized}-{:08x}",
        fnv1a32(id.as_bytes())
    )
}

/// FNV-1a, 32 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The ConfigMap manifest holding `inventory`.
pub(crate) fn to_config_map(inventory: &Inventory, namespace: &str) -> Value {
    let objects: Vec<Value> = inventory
        .objects
        .iter()
        .map(|(k, api_version)| {
            let mut e = json!({
                "group": k.group,
                "kind": k.kind,
                "name": k.name,
                "apiVersion": api_version,
            });
            if let (Some(ns), Some(m)) = (&k.namespace, e.as_object_mut()) {
                m.insert("namespace".into(), Value::String(ns.clone()));
            }
            e
        })
        .collect();
    let doc = json!({
        "owner": inventory.owner.as_str(),
        "revision": inventory.revision,
        "objects": objects,
    });
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": inventory_name(&inventory.owner),
            "namespace": namespace,
            "labels": { INVENTORY_LABEL: inventory.owner.as_str() },
        },
        "data": { INVENTORY_DATA_KEY: doc.to_string() },
    })
}

/// Why a stored inventory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The ConfigMap has no `inventory.json`.
    #[error("inventory ConfigMap {namespace}/{name} has no data key {INVENTORY_DATA_KEY}")]
    MissingData {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
    },
    /// `inventory.json` is not a valid inventory.
    #[error("inventory ConfigMap {namespace}/{name}: {reason}")]
    Malformed {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The ConfigMap belongs to another owner (two ids mapped to one name).
    #[error("inventory ConfigMap {namespace}/{name} belongs to owner {found:?}, not {expected:?}")]
    OtherOwner {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The owner asked for.
        expected: String,
        /// The owner recorded.
        found: String,
    },
}

/// Reads an inventory back from its ConfigMap data.
pub(crate) fn from_config_map(
    owner: &OwnerId,
    namespace: &str,
    config_map: &Value,
) -> Result<Inventory, InventoryError> {
    let name = inventory_name(owner);
    let malformed = |reason: String| InventoryError::Malformed {
        namespace: namespace.to_owned(),
        name: name.clone(),
        reason,
    };
    let text = config_map
        .pointer("/data")
        .and_then(|d| d.get(INVENTORY_DATA_KEY))
        .and_then(Value::as_str)
        .ok_or_else(|| InventoryError::MissingData {
            namespace: namespace.to_owned(),
            name: name.clone(),
        })?;
    let doc: Value = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let found = doc.get("owner").and_then(Value::as_str).unwrap_or_default();
    if found != owner.as_str() {
        return Err(InventoryError::OtherOwner {
            namespace: namespace.to_owned(),
            name: name.clone(),
            expected: owner.as_str().to_owned(),
            found: found.to_owned(),
        });
    }
    let mut inventory = Inventory::new(owner.clone());
    inventory.revision = doc
        .get("revision")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let entries = doc
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`objects` is not a list".into()))?;
    for (i, e) in entries.iter().enumerate() {
        let s = |field: &str| e.get(field).and_then(Value::as_str);
        let (Some(kind), Some(name_), Some(api_version)) = (s("kind"), s("name"), s("apiVersion"))
        else {
            return Err(malformed(format!(
                "objects[{i}] lacks kind, name or apiVersion"
            )));
        };
        let key = ObjectKey::new(s("group").unwrap_or_default(), kind, s("namespace"), name_);
        inventory.objects.insert(key, api_version.to_owned());
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_config_map() {
        let owner = OwnerId::new("shop").unwrap();
        let mut inv = Inventory::new(owner.clone());
        inv.revision = Some("abc".into());
        inv.objects.insert(
            ObjectKey::new("apps", "Deployment", Some("shop"), "web"),
            "apps/v1".into(),
        );
        inv.objects
            .insert(ObjectKey::new("", "Namespace", None, "shop"), "v1".into());
        let cm = to_config_map(&inv, "gitops-system");
        assert_eq!(cm["metadata"]["name"], "gitops-inventory-shop");
        assert_eq!(from_config_map(&owner, "gitops-system", &cm).unwrap(), inv);
        let other = OwnerId::new("other").unwrap();
        assert!(matches!(
            from_config_map(&other, "gitops-system", &cm),
            Err(InventoryError::OtherOwner { .. })
        ));
    }
}
