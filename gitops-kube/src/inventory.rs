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

/// The prefix of every inventory ConfigMap's name.
/// [`KubeTarget`](crate::KubeTarget) refuses to apply or delete a ConfigMap
/// with this prefix in its inventory namespace, so that no manifest can
/// adopt, change or prune an inventory.
pub const INVENTORY_NAME_PREFIX: &str = "gitops-inventory-";

/// The ConfigMap name for an owner's inventory: `gitops-inventory-<owner>`
/// when the owner id is a valid lowercase DNS label, else a sanitized form
/// with a stable hash of the id appended (owner ids may contain `_`, `.` or
/// capitals, which object names may not).
///
/// Distinct owners get distinct names: a plain id that itself ends like a
/// hash suffix (`shop-prod-1a2b3c4d`, which could equal the hashed name of
/// `Shop_Prod`) gets the hashed form too. Two ids whose sanitized forms and
/// 32-bit hashes both agree would still share a name; writing an inventory
/// therefore checks the owner recorded in the ConfigMap and refuses to
/// overwrite another owner's.
///
/// ```
/// use gitops_core::OwnerId;
/// use gitops_kube::inventory::inventory_name;
/// assert_eq!(inventory_name(&OwnerId::new("shop-prod").unwrap()), "gitops-inventory-shop-prod");
/// let odd = inventory_name(&OwnerId::new("Shop_Prod").unwrap());
/// assert!(odd.starts_with("gitops-inventory-shop-prod-"), "{odd}");
/// assert_ne!(odd, inventory_name(&OwnerId::new("shop-prod").unwrap()));
/// // A plain id spelling that hashed name does not get it.
/// let lookalike = OwnerId::new(odd.trim_start_matches("gitops-inventory-")).unwrap();
/// assert_ne!(inventory_name(&lookalike), odd);
/// ```
pub fn inventory_name(owner: &OwnerId) -> String {
    let id = owner.as_str();
    if is_plain(id) && !ends_like_hash(id) {
        return format!("{INVENTORY_NAME_PREFIX}{id}");
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
        "{INVENTORY_NAME_PREFIX}{sanitized}-{:08x}",
        fnv1a32(id.as_bytes())
    )
}

/// The name earlier versions gave the owner's inventory, when it differs
/// from [`inventory_name`] (plain ids ending like a hash suffix); read as a
/// fallback and removed once the inventory is written under its new name.
pub(crate) fn legacy_inventory_name(owner: &OwnerId) -> Option<String> {
    let id = owner.as_str();
    (is_plain(id) && ends_like_hash(id)).then(|| format!("{INVENTORY_NAME_PREFIX}{id}"))
}

/// A valid lowercase DNS label: usable as is in an object name.
fn is_plain(id: &str) -> bool {
    id.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// `<something>-<8 lowercase hex digits>`: the shape of a hashed name.
fn ends_like_hash(id: &str) -> bool {
    id.rsplit_once('-').is_some_and(|(head, tail)| {
        !head.is_empty()
            && tail.len() == 8
            && tail
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The owner an inventory ConfigMap records: its `inventory.json` owner,
/// else its [`INVENTORY_LABEL`]; `None` when it records none (it is not an
/// inventory).
pub(crate) fn recorded_owner(config_map: &Value) -> Option<String> {
    config_map
        .pointer("/data")
        .and_then(|d| d.get(INVENTORY_DATA_KEY))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|doc| doc.get("owner").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            config_map
                .pointer("/metadata/labels")
                .and_then(|l| l.get(INVENTORY_LABEL))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
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
    let name = config_map
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map_or_else(|| inventory_name(owner), str::to_owned);
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
        inventory.objects_mut().insert(key, api_version.to_owned());
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
        inv.objects_mut().insert(
            ObjectKey::new("apps", "Deployment", Some("shop"), "web"),
            "apps/v1".into(),
        );
        inv.objects_mut()
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

    #[test]
    fn distinct_owners_get_distinct_names() {
        let id = |s: &str| OwnerId::new(s).unwrap();
        let odd = inventory_name(&id("Shop_Prod"));
        let suffix = odd.trim_start_matches(INVENTORY_NAME_PREFIX);
        // The plain id equal to the hashed name's suffix used to collide.
        let lookalike = id(suffix);
        assert_ne!(inventory_name(&lookalike), odd);
        assert_eq!(
            legacy_inventory_name(&lookalike).as_deref(),
            Some(odd.as_str())
        );
        assert_eq!(legacy_inventory_name(&id("shop-prod")), None);
        assert_eq!(legacy_inventory_name(&id("Shop_Prod")), None);
        // Plain ids keep their names (no migration), hash-like or not.
        assert_eq!(inventory_name(&id("abcdef12")), "gitops-inventory-abcdef12");
        assert_eq!(inventory_name(&id("web-v2")), "gitops-inventory-web-v2");
        let ids = [
            "shop-prod",
            "Shop_Prod",
            "shop.prod",
            "shop_prod",
            suffix,
            "a",
            "A",
            "a-0000000g",
            "x-deadbeef",
            "x-DEADBEEF",
        ];
        let names: std::collections::BTreeSet<String> =
            ids.iter().map(|s| inventory_name(&id(s))).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
        for n in &names {
            assert!(n.starts_with(INVENTORY_NAME_PREFIX), "{n}");
        }
    }

    #[test]
    fn the_recorded_owner_is_read_from_data_or_label() {
        let owner = OwnerId::new("shop").unwrap();
        let cm = to_config_map(&Inventory::new(owner), "ns");
        assert_eq!(recorded_owner(&cm).as_deref(), Some("shop"));
        let labelled = json!({"metadata": {"labels": {INVENTORY_LABEL: "x"}}});
        assert_eq!(recorded_owner(&labelled).as_deref(), Some("x"));
        assert_eq!(recorded_owner(&json!({"data": {"k": "v"}})), None);
    }
}
