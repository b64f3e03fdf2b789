//! `KubeTarget` against a real API server: the core conformance suite, and
//! the Kubernetes-specific behaviours.

use std::collections::BTreeSet;

use gitops_core::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, OWNER_LABEL, Object, ObjectKey,
    ObserveRequest, OwnerId, Target, TargetError, TargetExt,
};
use gitops_kube::KubeTarget;
use gitops_kube::testing::{shared_or_skip, unique_name};
use serde_json::{Value, json};

fn obj(v: Value) -> Object {
    Object::new(v).unwrap()
}

fn opts() -> ApplyOptions {
    ApplyOptions::new("gitops-test")
}

#[tokio::test]
async fn core_conformance_suite() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let target =
        KubeTarget::new(cluster.client()).with_inventory_namespace(unique_name("conf-inventory"));
    let prefix = unique_name("conf");
    gitops_core::testing::target::run_all(&target, &prefix).await;
    // Also through the forwarding impls.
    let boxed: Box<dyn Target> = Box::new(target.clone());
    gitops_core::testing::target::apply_creates_and_observe_reads(&boxed, &unique_name("boxed"))
        .await;
}

#[tokio::test]
async fn conflict_names_the_other_manager_and_fields() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("conflict").await.unwrap();
    let target = KubeTarget::new(cluster.client());
    let cm = |v: &str| {
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared", "namespace": ns},
            "data": {"k": v, "other": "x"}}))
    };
    let theirs = ApplyOptions::new("team-b");
    target.apply(&cm("theirs"), &theirs).await.unwrap();
    let err = target.apply(&cm("ours"), &opts()).await.unwrap_err();
    let TargetError::Conflict { key, conflicts } = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert_eq!(key, cm("ours").key());
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].manager, "team-b");
    assert_eq!(conflicts[0].fields, vec![".data.k".to_owned()]);
    assert!(err.to_string().contains("team-b"), "{err}");
    // Dry-run with force succeeds and changes nothing.
    let dry_force = opts().force(true).dry_run(true);
    let preview = target.apply(&cm("ours"), &dry_force).await.unwrap();
    assert_eq!(preview["data"]["k"], "ours");
    let live = target.get(cm("ours").key()).await.unwrap().unwrap();
    assert_eq!(live["data"]["k"], "theirs");
}

#[tokio::test]
async fn crd_then_custom_resource_in_one_go() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("crd").await.unwrap();
    let group = format!("{}.example.com", unique_name("g"));
    let target = KubeTarget::new(cluster.client());
    // Resolve something first so that the discovery cache is warm and stale.
    let probe = ObjectKey::new("", "ConfigMap", Some(&ns), "nothing");
    assert!(target.get(&probe).await.unwrap().is_none());

    let crd = obj(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    }));
    let widget = obj(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1", "namespace": ns, "labels": {OWNER_LABEL: "crd-test"}},
        "spec": {"size": 3}
    }));
    // Before the CRD: a clear unknown-kind error naming the object.
    match target.apply(&widget, &opts()).await {
        Err(e @ TargetError::UnknownKind { .. }) => {
            let TargetError::UnknownKind { key, api_version } = &e else {
                unreachable!()
            };
            assert_eq!(key, widget.key());
            assert_eq!(key.kind, "Widget");
            assert!(e.to_string().contains("Widget"), "{e}");
            assert_eq!(api_version, &format!("{group}/v1"));
        }
        other => panic!("expected UnknownKind, got {other:?}"),
    }
    target.apply(&crd, &opts()).await.unwrap();
    // Immediately after: the CRD is established and the kind resolvable.
    let stored = target.apply(&widget, &opts()).await.unwrap();
    assert_eq!(stored["spec"]["size"], 3);
    let live = target.get(widget.key()).await.unwrap().unwrap();
    assert_eq!(live["spec"]["size"], 3);
    assert_eq!(
        target
            .delete(widget.key(), &DeleteOptions::default())
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
}

#[tokio::test]
async fn observe_by_owner_label_and_inventory_survives_a_new_target() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("observe").await.unwrap();
    let owner = OwnerId::new(unique_name("owner")).unwrap();
    let inventory_ns = unique_name("inv");
    let target = KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
    let mut inventory = Inventory::new(owner.clone());
    let mut keys = BTreeSet::new();
    for i in 0..5 {
        let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": ns,
                         "labels": {OWNER_LABEL: owner.as_str()}},
            "data": {"i": i.to_string()}}));
        target.apply(&cm, &opts()).await.unwrap();
        keys.insert(cm.key().clone());
        inventory
            .objects_mut()
            .insert(cm.key().clone(), "v1".into());
    }
    // One object of the set carries no owner label: observe still finds it.
    let unlabelled = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "plain", "namespace": ns}, "data": {}}));
    target.apply(&unlabelled, &opts()).await.unwrap();
    keys.insert(unlabelled.key().clone());
    let absent = ObjectKey::new("", "ConfigMap", Some(&ns), "absent");
    keys.insert(absent.clone());
    let not_served = ObjectKey::new("nothing.example.com", "Thing", Some(&ns), "x");
    keys.insert(not_served.clone());
    let live = target
        .observe(&ObserveRequest::new(keys, Some(owner.clone())))
        .await
        .unwrap();
    assert_eq!(live.objects.len(), 6, "{:?}", live.objects.keys());
    assert!(live.get(&absent).is_none() && live.get(&not_served).is_none());
    assert_eq!(
        live.get(unlabelled.key()).unwrap()["metadata"]["name"],
        "plain"
    );

    // None stored: the version cannot be told without reading.
    assert_eq!(target.inventory_version(&owner).await.unwrap(), None);
    inventory.revision = Some("rev-1".into());
    inventory.version = Some(target.write_inventory(&inventory).await.unwrap());
    // A fresh target (a restarted controller) reads the same inventory.
    let restarted = KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
    assert_eq!(
        restarted.read_inventory(&owner).await.unwrap(),
        Some(inventory.clone())
    );
    // Its version, read as metadata only, is the one read and written;
    // every write changes it.
    assert_eq!(
        restarted.inventory_version(&owner).await.unwrap(),
        Some(inventory.version.clone())
    );
    inventory.revision = Some("rev-2".into());
    let written = target.write_inventory(&inventory).await.unwrap();
    assert_ne!(Some(&written), inventory.version.as_ref());
    assert_eq!(
        restarted.inventory_version(&owner).await.unwrap(),
        Some(Some(written))
    );
}

#[tokio::test]
async fn wrong_scope_is_invalid_not_a_crash() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let target = KubeTarget::new(cluster.client());
    let no_ns = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}));
    assert!(matches!(
        target.apply(&no_ns, &opts()).await,
        Err(TargetError::Invalid { .. })
    ));
}

#[tokio::test]
async fn observe_reads_in_the_version_we_applied() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("versions").await.unwrap();
    let target = KubeTarget::new(cluster.client());
    // autoscaling/v2beta2 is served by 1.20 (and up to 1.25) but is not the
    // preferred version; a newer cluster may not serve it: skip there.
    let hpa = obj(json!({
        "apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}]
        }
    }));
    match target.apply(&hpa, &ApplyOptions::default()).await {
        Ok(_) => {}
        Err(TargetError::UnknownKind { .. }) => {
            eprintln!("SKIPPED: this server does not serve autoscaling/v2beta2");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    // A fresh target (no memory of the apply) reads it back in v2beta2,
    // the version our field manager's managedFields entry records.
    let fresh = KubeTarget::new(cluster.client());
    let live = fresh.get(hpa.key()).await.unwrap().unwrap();
    assert_eq!(live["apiVersion"], "autoscaling/v2beta2");
    assert_eq!(live["spec"]["metrics"][0]["resource"]["name"], "cpu");
}

#[tokio::test]
async fn delete_dry_run_keeps_the_object() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("delete").await.unwrap();
    let target = KubeTarget::new(cluster.client());
    let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep", "namespace": ns}, "data": {}}));
    target.apply(&cm, &opts()).await.unwrap();
    let dry = DeleteOptions::new()
        .dry_run(true)
        .propagation(gitops_core::Propagation::Foreground);
    assert_eq!(
        target.delete(cm.key(), &dry).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(
        target.get(cm.key()).await.unwrap().is_some(),
        "a dry-run delete deletes nothing"
    );
    let background = DeleteOptions::new().propagation(gitops_core::Propagation::Background);
    assert_eq!(
        target.delete(cm.key(), &background).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(target.get(cm.key()).await.unwrap().is_none());
}

/// A CRD deleted out of band (by another client) after this target cached
/// its kind: observe and delete look the kind up again and find its
/// objects absent, instead of failing with a misleading `NotFound`.
#[tokio::test]
async fn a_crd_deleted_out_of_band_makes_its_objects_absent() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, DeleteParams};

    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("stale-crd").await.unwrap();
    let group = format!("{}.example.com", unique_name("stale"));
    let crd_name = format!("gadgets.{group}");
    let owner = OwnerId::new(unique_name("stale-owner")).unwrap();
    let target = KubeTarget::new(cluster.client());
    let crd = obj(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }));
    target.apply(&crd, &opts()).await.unwrap();
    let mut keys = BTreeSet::new();
    for i in 0..3 {
        let gadget = obj(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": format!("g{i}"), "namespace": ns,
                         "labels": {OWNER_LABEL: owner.as_str()}},
            "spec": {"i": i}
        }));
        target.apply(&gadget, &opts()).await.unwrap();
        keys.insert(gadget.key().clone());
    }
    let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bystander", "namespace": ns,
                     "labels": {OWNER_LABEL: owner.as_str()}}, "data": {}}));
    target.apply(&cm, &opts()).await.unwrap();
    keys.insert(cm.key().clone());
    let request = ObserveRequest::new(keys.clone(), Some(owner.clone()));
    // The kind is cached and its objects are there.
    assert_eq!(target.observe(&request).await.unwrap().objects.len(), 4);

    // Another client deletes the CRD (and so its objects).
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while crds.get_opt(&crd_name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "CRD not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The LIST path (three keys of the kind, an owner).
    let live = target.observe(&request).await.unwrap();
    assert_eq!(
        live.objects.keys().collect::<Vec<_>>(),
        vec![cm.key()],
        "only the ConfigMap is left"
    );
    // The single-key GET path, on a target whose cache is stale again.
    let single = KubeTarget::new(cluster.client());
    let gadget_key = ObjectKey::new(&group, "Gadget", Some(&ns), "g0");
    single
        .apply(&crd, &opts())
        .await
        .expect("recreate the CRD to warm a second cache");
    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .unwrap();
    while crds.get_opt(&crd_name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "CRD not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let live = single
        .observe(&ObserveRequest::new(
            [gadget_key.clone()].into(),
            Some(owner.clone()),
        ))
        .await
        .unwrap();
    assert!(live.objects.is_empty(), "{:?}", live.objects.keys());
    // The same without an owner.
    assert!(single.get(&gadget_key).await.unwrap().is_none());
    // Delete of an object of the vanished kind: not found.
    let again = KubeTarget::new(cluster.client());
    again.apply(&crd, &opts()).await.unwrap();
    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .unwrap();
    while crds.get_opt(&crd_name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "CRD not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        again
            .delete(&gadget_key, &DeleteOptions::default())
            .await
            .unwrap(),
        DeleteOutcome::NotFound
    );
}

/// Owner ids that used to map to one inventory ConfigMap get their own,
/// and an inventory is never written over another owner's.
#[tokio::test]
async fn inventories_of_distinct_owners_never_share_a_config_map() {
    use gitops_kube::inventory::inventory_name;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};

    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let inventory_ns = unique_name("inv-collide");
    let target = KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
    let odd = OwnerId::new("Shop_Prod").unwrap();
    let odd_name = inventory_name(&odd);
    // The plain id spelling `Shop_Prod`'s ConfigMap name.
    let lookalike =
        OwnerId::new(odd_name.trim_start_matches("gitops-inventory-").to_owned()).unwrap();
    assert_ne!(inventory_name(&lookalike), odd_name);

    let mut odd_inventory = Inventory::new(odd.clone());
    odd_inventory.objects_mut().insert(
        ObjectKey::new("", "ConfigMap", Some("shop"), "a"),
        "v1".into(),
    );
    odd_inventory.version = Some(target.write_inventory(&odd_inventory).await.unwrap());
    // The lookalike does not read `Shop_Prod`'s inventory as its own...
    assert_eq!(target.read_inventory(&lookalike).await.unwrap(), None);
    // ...and writing its own leaves `Shop_Prod`'s alone.
    let mut lookalike_inventory = Inventory::new(lookalike.clone());
    lookalike_inventory.objects_mut().insert(
        ObjectKey::new("", "ConfigMap", Some("shop"), "b"),
        "v1".into(),
    );
    lookalike_inventory.version = Some(target.write_inventory(&lookalike_inventory).await.unwrap());
    assert_eq!(
        target.read_inventory(&odd).await.unwrap(),
        Some(odd_inventory.clone())
    );
    assert_eq!(
        target.read_inventory(&lookalike).await.unwrap(),
        Some(lookalike_inventory)
    );

    // A ConfigMap under an owner's inventory name that records another
    // owner (a hash collision) is not overwritten.
    let victim = OwnerId::new("Victim_Owner").unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), &inventory_ns);
    let squatter = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": inventory_name(&victim)},
        "data": {"inventory.json": r#"{"owner":"someone-else","revision":null,"objects":[]}"#},
    });
    cms.patch(
        &inventory_name(&victim),
        &PatchParams::apply("gitops-test"),
        &Patch::Apply(&squatter),
    )
    .await
    .unwrap();
    let err = target
        .write_inventory(&Inventory::new(victim.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("Victim_Owner") && message.contains("someone-else"),
        "{message}"
    );
    let kept = cms.get(&inventory_name(&victim)).await.unwrap();
    assert!(kept.data.unwrap()["inventory.json"].contains("someone-else"));
    assert!(matches!(
        target.read_inventory(&victim).await,
        Err(TargetError::Invalid { .. })
    ));
}

/// No manifest can adopt, rewrite or prune an inventory ConfigMap.
#[tokio::test]
async fn apply_and_delete_refuse_inventory_config_maps() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let inventory_ns = unique_name("inv-guard");
    let target = KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
    let owner = OwnerId::new("guarded").unwrap();
    let mut inventory = Inventory::new(owner.clone());
    inventory.version = Some(target.write_inventory(&inventory).await.unwrap());
    let hijack = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "gitops-inventory-guarded", "namespace": inventory_ns,
                     "labels": {OWNER_LABEL: "attacker"}},
        "data": {"inventory.json": "{}"}}));
    let err = target.apply(&hijack, &opts()).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("inventor"), "{err}");
    let dry = opts().dry_run(true);
    assert!(matches!(
        target.apply(&hijack, &dry).await,
        Err(TargetError::Invalid { .. })
    ));
    assert!(matches!(
        target.delete(hijack.key(), &DeleteOptions::default()).await,
        Err(TargetError::Invalid { .. })
    ));
    assert_eq!(
        target.read_inventory(&owner).await.unwrap(),
        Some(inventory)
    );
    // Other ConfigMaps of the inventory namespace are not affected.
    let plain = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": inventory_ns}, "data": {}}));
    target.apply(&plain, &opts()).await.unwrap();
    assert_eq!(
        target
            .delete(plain.key(), &DeleteOptions::default())
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
}

/// A group version listed by `/apis` whose own endpoint answers 404 has gone
/// between the two reads (its CRD was deleted in between): nothing of it is
/// served, so discovery does not count it as failed, and a namespace's
/// dependents can still be listed.
#[tokio::test]
async fn a_group_version_gone_between_two_discovery_reads_is_not_a_failure() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    // Every read of `/apis/batch/v1` is sent to a group nobody serves.
    let layer =
        tower::util::MapRequestLayer::new(|mut request: http::Request<kube::client::Body>| {
            if request.uri().path() == "/apis/batch/v1" {
                *request.uri_mut() = http::Uri::from_static("/apis/gone.example.invalid/v1");
            }
            request
        });
    let client = kube::client::ClientBuilder::try_from(cluster.config().clone())
        .unwrap()
        .with_layer(&layer)
        .build();
    let catalog = gitops_kube::ApiCatalog::new(client.clone());
    let (kinds, failed) = catalog.fresh_kinds().await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        !kinds
            .iter()
            .any(|k| k.resource.group == "batch" && k.resource.version == "v1"),
        "batch/v1 answered 404, so none of its kinds is served"
    );
    assert!(kinds.iter().any(|k| k.resource.kind == "Deployment"));

    let target = KubeTarget::new(client);
    let ns = cluster.create_namespace("gone-gv").await.unwrap();
    let key = ObjectKey::new("", "Namespace", None, &ns);
    target.dependents(&key).await.unwrap();
}
