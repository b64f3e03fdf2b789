//! The harness itself: a server starts, and server-side apply works on it.

use gitops_kube::testing::TestCluster;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn server_side_apply_records_managed_fields() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("harness").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "probe" },
        "data": { "greeting": "hello" }
    });
    let applied = api
        .patch(
            "probe",
            &PatchParams::apply("gitops-test").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["greeting"], "hello");

    let read = api.get("probe").await.unwrap();
    let managed = read.metadata.managed_fields.unwrap();
    let ours = managed
        .iter()
        .find(|m| m.manager.as_deref() == Some("gitops-test"))
        .expect("an entry for our field manager");
    assert_eq!(ours.operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(ours.fields_v1.as_ref().unwrap()).unwrap();
    assert!(
        fields.pointer("/f:data/f:greeting").is_some(),
        "our manager owns data.greeting: {fields}"
    );
}

#[tokio::test]
async fn two_tests_share_one_server_in_distinct_namespaces() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let a = cluster.create_namespace("share").await.unwrap();
    let b = cluster.create_namespace("share").await.unwrap();
    assert_ne!(a, b);
    let version = cluster.client().apiserver_version().await.unwrap();
    assert!(!version.git_version.is_empty());
}

#[tokio::test]
async fn connects_through_a_kubeconfig_file() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let Some(path) = cluster.kubeconfig_path() else {
        return; // already connected through GITOPS_TEST_KUBECONFIG
    };
    let other = TestCluster::connect(&path).await.unwrap();
    assert!(!other.is_local());
    let ns = other.create_namespace("via-kubeconfig").await.unwrap();
    assert!(ns.starts_with("via-kubeconfig-"));
}

#[tokio::test]
async fn a_private_server_is_torn_down_on_drop() {
    let cluster = match TestCluster::start().await {
        Ok(c) => c,
        Err(e) => {
            let _: Option<()> = gitops_kube::testing::skip_or_panic(&e);
            return;
        }
    };
    let Some(kubeconfig) = cluster.kubeconfig_path() else {
        return; // a connected cluster has nothing to tear down
    };
    let dir = kubeconfig.parent().unwrap().to_path_buf();
    cluster.client().apiserver_version().await.unwrap();
    assert!(dir.is_dir());
    drop(cluster);
    assert!(!dir.exists(), "the temporary directory is removed");
}

/// `ObjectDiff::json_patch()` is kube's `json_patch::Patch` (gitops-diff
/// uses the json-patch major version kube does): it is sent as a
/// `kube::api::Patch::Json` with no conversion, and the server's result is
/// what the diff promised.
#[tokio::test]
async fn an_object_diff_is_sent_as_a_kube_json_patch() {
    use gitops_diff::{DiffOptions, compare};
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("jsonpatch").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "probe" },
        "data": { "greeting": "hello", "kept": "yes" }
    });
    api.patch(
        "probe",
        &PatchParams::apply("gitops-test"),
        &Patch::Apply(&cm),
    )
    .await
    .unwrap();
    let live = serde_json::to_value(api.get("probe").await.unwrap()).unwrap();
    let desired = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "probe", "namespace": ns },
        "data": { "greeting": "bonjour", "added": "new" }
    });
    let options = DiffOptions::default();
    let diff = compare(&desired, &live, None, &options).unwrap();
    assert_eq!(diff.len(), 2, "{diff:?}");

    let patch: Patch<()> = Patch::Json(diff.json_patch());
    api.patch("probe", &PatchParams::default(), &patch)
        .await
        .unwrap();

    let after = api.get("probe").await.unwrap();
    let data = after.data.clone().unwrap();
    assert_eq!(data["greeting"], "bonjour");
    assert_eq!(data["added"], "new");
    assert_eq!(data["kept"], "yes", "fields the manifest does not set stay");
    let after = serde_json::to_value(after).unwrap();
    assert!(
        compare(&desired, &after, None, &options)
            .unwrap()
            .is_empty()
    );
}

/// The embedded `scripts/envtest.sh` runs from the harness, finds a cached
/// build at once (no rebuild, no lock wait) and reports where it is.
#[tokio::test]
async fn provisioning_reuses_a_cached_build() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    if !cluster.is_local() {
        return; // a cluster from GITOPS_TEST_KUBECONFIG: nothing was provisioned
    }
    let real = gitops_kube::testing::find_binaries().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::create_dir(dest.path().join("bin")).unwrap();
    for name in ["etcd", "kube-apiserver"] {
        std::os::unix::fs::symlink(real.join(name), dest.path().join("bin").join(name)).unwrap();
    }
    let bin = gitops_kube::testing::provision(Some(dest.path()))
        .await
        .unwrap();
    assert_eq!(bin, dest.path().join("bin"));
    assert!(
        !dest.path().join(".build.lock").exists(),
        "a cached build is reused: the script never took its build lock"
    );
}
