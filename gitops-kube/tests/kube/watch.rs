//! Drift watch: changes to owned objects become events; others do not.

use std::time::Duration;

use futures::StreamExt;
use gitops_core::{ApplyOptions, DeleteOptions, Inventory, OWNER_LABEL, Object, OwnerId, Target};
use gitops_kube::testing::{shared_or_skip, unique_name};
use gitops_kube::{DriftEvent, DriftStream, KubeTarget};
use serde_json::json;

async fn next_event(stream: &mut DriftStream) -> DriftEvent {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("a drift event within 20 s")
            .expect("the stream goes on");
        match item {
            Ok(event) => return event,
            Err(e) => eprintln!("transient watch error: {e}"),
        }
    }
}

#[tokio::test]
async fn changes_to_owned_objects_are_reported() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("watch").await.unwrap();
    let owner = OwnerId::new(unique_name("watcher")).unwrap();
    let target = KubeTarget::new(cluster.client());
    let cm = |name: &str, owner: Option<&str>, v: &str| {
        let mut meta = json!({"name": name, "namespace": ns});
        if let Some(o) = owner {
            meta["labels"] = json!({ OWNER_LABEL: o });
        }
        Object::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": v}}),
        )
        .unwrap()
    };
    let owned = cm("owned", Some(owner.as_str()), "1");
    let foreign = cm("foreign", None, "1");
    target
        .apply(&owned, &ApplyOptions::default())
        .await
        .unwrap();
    target
        .apply(&foreign, &ApplyOptions::default())
        .await
        .unwrap();
    let mut inventory = Inventory::new(owner.clone());
    inventory
        .objects_mut()
        .insert(owned.key().clone(), "v1".into());

    let mut events = target.drift_watch_inventory(&inventory).await.unwrap();
    // The watch is live once it has listed.
    assert_eq!(
        next_event(&mut events).await,
        DriftEvent::Resynced(owned.key().group_kind())
    );

    // Someone else changes the foreign object, then our object: only ours counts.
    let other = ApplyOptions::new("kubectl-edit").force(true);
    target
        .apply(&cm("foreign", None, "2"), &other)
        .await
        .unwrap();
    target
        .apply(&cm("owned", Some(owner.as_str()), "2"), &other)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await,
        DriftEvent::Changed(owned.key().clone())
    );

    target
        .delete(owned.key(), &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await,
        DriftEvent::Deleted(owned.key().clone())
    );
}

#[tokio::test]
async fn nothing_to_watch_stays_pending() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let target = KubeTarget::new(cluster.client());
    let owner = OwnerId::new(unique_name("idle")).unwrap();
    let mut events = target.drift_watch(&owner, []).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.next())
            .await
            .is_err(),
        "an empty watch neither ends nor yields"
    );
}
