#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Render steps: which folders a step renders ([`Rendering`]), how its
//! objects are validated, and how the reconciler reads a whole revision
//! when an overlay reads outside its folder.

use std::sync::Arc;

use gitops_core::{
    BoxError, DesiredState, MemoryRuntime, MemorySource, OwnerId, Provenance, Reconciler,
    ReconcilerConfig, RenderError, RenderOptions, RenderStep, Renderer, Rendering, Snapshot,
    StepObject, SyncStatus,
};
use serde_json::json;

/// A stand-in for Kustomize: a folder holding `kustomization.yaml` whose
/// text is `include: <folder>` renders every `.yaml` file of that folder
/// (which may be outside its own, like a base) with the name of each
/// ConfigMap suffixed by the folder's last component; its provenance names
/// the file and the kustomization as `via`.
#[derive(Debug)]
struct Overlay;

impl RenderStep for Overlay {
    fn name(&self) -> &str {
        "overlay"
    }

    fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool {
        snapshot.get(&join(dir, "kustomization.yaml")).is_some()
    }

    fn render(&self, snapshot: &Snapshot, dir: &str) -> Result<Vec<StepObject>, BoxError> {
        let k = join(dir, "kustomization.yaml");
        let text = std::str::from_utf8(&snapshot.get(&k).ok_or("gone")?.data)?.to_owned();
        let base = text
            .trim()
            .strip_prefix("include: ")
            .ok_or_else(|| format!("{k}: expected `include: <folder>`"))?;
        let suffix = dir.rsplit('/').next().unwrap_or(dir);
        let mut out = Vec::new();
        for (path, blob) in snapshot.files() {
            if path.starts_with(&format!("{base}/")) && path.ends_with(".yaml") {
                let mut value: serde_json::Value = serde_yaml::from_slice(&blob.data)?;
                if value["kind"] == "ConfigMap" {
                    let name = value["metadata"]["name"].as_str().unwrap_or("").to_owned();
                    value["metadata"]["name"] = json!(format!("{name}-{suffix}"));
                }
                out.push(StepObject::new(
                    value,
                    Provenance::new(path, 0).with_via(vec![k.clone()]),
                ));
            }
        }
        Ok(out)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

fn repo() -> Vec<(&'static str, String)> {
    vec![
        ("base/app.yaml", cm("app")),
        ("envs/dev/kustomization.yaml", "include: base\n".to_owned()),
        // A patch-like file: read as a plain manifest it would deploy.
        ("envs/dev/patch.yaml", cm("app")),
        ("envs/prod/kustomization.yaml", "include: base\n".to_owned()),
        ("plain/extra.yaml", cm("extra")),
    ]
}

fn names(d: &DesiredState) -> Vec<String> {
    d.iter()
        .map(|(k, o)| format!("{k} <- {}", o.provenance))
        .collect()
}

fn with_overlay(options: RenderOptions) -> Renderer {
    Renderer::new(options).unwrap().with_step(Arc::new(Overlay))
}

#[test]
fn auto_renders_top_most_step_folders_and_plain_files_elsewhere() {
    let snap = Snapshot::from_files(repo());
    let mut r = with_overlay(RenderOptions::default());
    let d = r.render_dir(&snap, "envs").unwrap();
    assert_eq!(
        names(&d),
        [
            "ConfigMap/default/app-dev <- base/app.yaml#0 via envs/dev/kustomization.yaml",
            "ConfigMap/default/app-prod <- base/app.yaml#0 via envs/prod/kustomization.yaml",
        ]
    );
    let obj = d.iter().next().unwrap().1;
    assert_eq!(obj.provenance.renderer.as_deref(), Some("overlay"));
    assert_eq!(r.stats().step_folders, 2);
    assert_eq!(r.stats().step_objects, 2);
    // envs/dev/patch.yaml is the step's file, not a manifest.
    assert_eq!((r.stats().files, r.stats().skipped), (3, 3));

    let d = r.render(&snap).unwrap();
    let keys: Vec<String> = d.keys().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "ConfigMap/default/app",
            "ConfigMap/default/app-dev",
            "ConfigMap/default/app-prod",
            "ConfigMap/default/extra",
        ]
    );
    assert_eq!(
        r.step_folders(&snap, "").unwrap(),
        [
            ("envs/dev".to_owned(), "overlay".to_owned()),
            ("envs/prod".to_owned(), "overlay".to_owned())
        ]
    );
}

#[test]
fn a_kustomize_folder_without_a_step_is_refused_not_read_as_manifests() {
    let snap = Snapshot::from_files(repo());
    let errors = gitops_core::render(&snap, &RenderOptions::default()).unwrap_err();
    let text: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    // Both folders, and the object its patch would have deployed twice.
    assert_eq!(text.len(), 3, "{text:?}");
    assert_eq!(
        text[2],
        "ConfigMap/default/app is declared twice: at base/app.yaml#0 (line 1) and at envs/dev/patch.yaml#0 (line 1)"
    );
    assert!(
        text[0].starts_with(
            "envs/dev/kustomization.yaml: a Kustomize folder, but no render step handles it"
        ),
        "{}",
        text[0]
    );
    assert!(matches!(
        &errors.0[1],
        RenderError::Unhandled { dir, file: Some(f), rendering: Rendering::Auto }
            if dir == "envs/prod" && f == "envs/prod/kustomization.yaml"
    ));
    assert_eq!(errors.0[1].path(), Some("envs/prod/kustomization.yaml"));

    // Plain rendering reads them as manifests, when asked to.
    let plain = RenderOptions::default().with_rendering(Rendering::Plain);
    let d = with_overlay(plain).render_dir(&snap, "envs").unwrap();
    assert_eq!(
        names(&d),
        ["ConfigMap/default/app <- envs/dev/patch.yaml#0 (line 1)"]
    );
}

#[test]
fn an_explicit_step_must_handle_the_folder() {
    let snap = Snapshot::from_files(repo());
    let explicit = RenderOptions::default().with_rendering(Rendering::Step("overlay".into()));
    let d = with_overlay(explicit.clone())
        .render_dir(&snap, "envs/prod")
        .unwrap();
    assert_eq!(d.len(), 1);
    let e = with_overlay(explicit.clone())
        .render_dir(&snap, "plain")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "plain/: the render step overlay is not registered or does not handle this folder"
    );
    let other = RenderOptions::default().with_rendering(Rendering::Step("helm".into()));
    assert!(matches!(
        &with_overlay(other)
            .render_dir(&snap, "envs/prod")
            .unwrap_err()
            .0[0],
        RenderError::Unhandled { .. }
    ));
}

#[test]
fn step_objects_are_validated_like_manifests() {
    let mut files = repo();
    files.push((
        "base/bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n".to_owned(),
    ));
    files.push((
        "base/noname.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n".to_owned(),
    ));
    let snap = Snapshot::from_files(files);
    let errors = with_overlay(RenderOptions::default())
        .render_dir(&snap, "envs/prod")
        .unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains(
            "base/bad.yaml#0 via envs/prod/kustomization.yaml: unknown kind Widget.example.com"
        ),
        "{text}"
    );
    assert!(
        matches!(&errors.0[0], RenderError::Invalid { at, .. } if at.path == "base/noname.yaml"),
        "{text}"
    );
}

#[test]
fn a_step_error_keeps_the_step_and_folder_and_its_cause() {
    let snap = Snapshot::from_files([
        ("app/kustomization.yaml", "nonsense\n".to_owned()),
        ("app/x.yaml", cm("x")),
    ]);
    let errors = with_overlay(RenderOptions::default())
        .render(&snap)
        .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "app/: overlay: app/kustomization.yaml: expected `include: <folder>`"
    );
    let RenderError::Step { source, .. } = &errors.0[0] else {
        panic!("{errors:?}")
    };
    assert_eq!(
        source.get_ref().to_string(),
        "app/kustomization.yaml: expected `include: <folder>`"
    );
}

#[test]
fn objects_declared_by_a_step_and_a_file_are_duplicates() {
    let mut files = repo();
    files.push(("envs/dup.yaml", cm("app-prod")));
    let snap = Snapshot::from_files(files);
    let e = with_overlay(RenderOptions::default())
        .render_dir(&snap, "envs")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ConfigMap/default/app-prod is declared twice: at base/app.yaml#0 via envs/prod/kustomization.yaml and at envs/dup.yaml#0 (line 1)"
    );
}

#[tokio::test]
async fn the_reconciler_reads_the_whole_revision_for_an_overlay_path() {
    let mut files = repo();
    files.push((
        "base/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n".to_owned(),
    ));
    let source = MemorySource::new();
    source.commit("main", files.clone(), "ada", "init");
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("prod").unwrap())
        .path("envs/prod")
        .render_step(Arc::new(Overlay));
    let reconciler = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    let (desired, _) = reconciler.plan("main").await.unwrap();
    assert_eq!(
        names(&desired),
        [
            "ConfigMap/default/app-prod <- base/app.yaml#0 via envs/prod/kustomization.yaml",
            "Namespace/default <- base/ns.yaml#0 via envs/prod/kustomization.yaml",
        ]
    );
    assert_eq!(runtime.len(), 2);

    // A plain folder is still read alone, with paths relative to it.
    let plain = ReconcilerConfig::new(OwnerId::new("plain").unwrap())
        .path("plain")
        .render_step(Arc::new(Overlay));
    let reconciler = Reconciler::new(source, runtime.clone(), plain).unwrap();
    let (desired, _) = reconciler.plan("main").await.unwrap();
    assert_eq!(
        names(&desired),
        ["ConfigMap/default/extra <- extra.yaml#0 (line 1)"]
    );

    // Without the step, the overlay is refused and nothing is applied.
    let source = MemorySource::new();
    source.commit("main", files, "ada", "init");
    let bare = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("prod").unwrap()).path("envs/prod");
    let reconciler = Reconciler::new(source, bare.clone(), config).unwrap();
    let err = reconciler.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::RenderFailed);
    assert!(bare.is_empty());
}
