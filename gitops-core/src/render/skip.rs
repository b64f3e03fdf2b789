//! Which files are not manifests, by explicit rules.

use std::fmt;

use crate::snapshot::Snapshot;

/// Why a file of a snapshot is not rendered.
///
/// The rules, checked in this order (paths are relative to the snapshot
/// root, separated by `/`; names compare case-sensitively, as `kubectl`
/// does):
///
/// 1. `Hidden`: a folder or the file itself starts with `.`
///    (`.github/workflows/ci.yaml`, `.gitlab-ci.yml`).
/// 2. `Kustomization`: `kustomization.yaml`,
///    `kustomization.yml` or `Kustomization`. With
///    [`Rendering::Auto`](super::Rendering::Auto) (the default) a folder
///    holding one is rendered by a [`RenderStep`](super::RenderStep)
///    (`gitops_kustomize::Kustomize`) or refused; only with
///    [`Rendering::Plain`](super::Rendering::Plain) are the other files of
///    such a folder read as plain manifests.
/// 3. `HelmChartFile`: `Chart.yaml`, `values.yaml`,
///    `values-*.yaml` (and their `.yml` spellings): Helm metadata, never
///    manifests.
/// 4. `HelmTemplate`: anything under `<dir>/templates/` where
///    `<dir>/Chart.yaml` exists in the snapshot (Go templates, not YAML).
///    Only [`skip_reason_in`] checks this rule, as it needs the snapshot.
/// 5. `NotManifest`: the name does not end in `.yaml`, `.yml`
///    or `.json` (`README.md`, scripts, ...).
/// 6. `NotIncluded` / `Excluded`: the
///    include/exclude globs of the [`RenderOptions`](super::RenderOptions).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// A path component starts with `.`.
    Hidden,
    /// A Kustomize file.
    Kustomization,
    /// A Helm chart's `Chart.yaml` or values file.
    HelmChartFile,
    /// A template of the Helm chart in the given folder.
    HelmTemplate {
        /// The chart's folder (`""` for the snapshot root).
        chart: String,
    },
    /// Not a `.yaml`, `.yml` or `.json` file.
    NotManifest,
    /// No include glob matches the path.
    NotIncluded,
    /// An exclude glob matches the path.
    Excluded {
        /// The first exclude glob that matches.
        pattern: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hidden => f.write_str("hidden: a folder or file name starts with '.'"),
            Self::Kustomization => f.write_str("a Kustomize kustomization file"),
            Self::HelmChartFile => f.write_str("Helm chart metadata or values, not a manifest"),
            Self::HelmTemplate { chart } if chart.is_empty() => {
                f.write_str("a template of the Helm chart at the snapshot root")
            }
            Self::HelmTemplate { chart } => write!(f, "a template of the Helm chart in {chart}/"),
            Self::NotManifest => f.write_str("not a .yaml, .yml or .json file"),
            Self::NotIncluded => f.write_str("matches no include glob"),
            Self::Excluded { pattern } => write!(f, "matches the exclude glob {pattern:?}"),
        }
    }
}

/// Whether a file is a manifest by its extension (`.yaml`, `.yml`, `.json`).
pub(crate) fn is_json(path: &str) -> bool {
    path.ends_with(".json")
}

/// The names of a Kustomize file, as `kustomize` looks them up.
const KUSTOMIZATION_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The path of the Kustomize file in `folder`, if it holds one.
pub(super) fn kustomization_file(snapshot: &Snapshot, folder: &str) -> Option<String> {
    KUSTOMIZATION_NAMES.iter().find_map(|name| {
        let path = if folder.is_empty() {
            (*name).to_owned()
        } else {
            format!("{folder}/{name}")
        };
        snapshot.get(&path).is_some().then_some(path)
    })
}

fn is_helm_file(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
    else {
        return false;
    };
    stem == "Chart" || stem == "values" || stem.starts_with("values-")
}

/// Why the file at `path` is not a manifest, by the rules that need nothing
/// but the path (1–3 and 5 of [`SkipReason`]); `None` for a manifest.
///
/// ```
/// use gitops_core::{skip_reason, SkipReason};
/// assert_eq!(skip_reason("apps/web.yaml"), None);
/// assert_eq!(skip_reason("apps/README.md"), Some(SkipReason::NotManifest));
/// assert_eq!(skip_reason("apps/kustomization.yaml"), Some(SkipReason::Kustomization));
/// assert_eq!(skip_reason(".github/ci.yml"), Some(SkipReason::Hidden));
/// assert_eq!(skip_reason("chart/values-prod.yaml"), Some(SkipReason::HelmChartFile));
/// ```
pub fn skip_reason(path: &str) -> Option<SkipReason> {
    if path.split('/').any(|c| c.starts_with('.')) {
        return Some(SkipReason::Hidden);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if KUSTOMIZATION_NAMES.contains(&name) {
        return Some(SkipReason::Kustomization);
    }
    if is_helm_file(name) {
        return Some(SkipReason::HelmChartFile);
    }
    if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) {
        return Some(SkipReason::NotManifest);
    }
    None
}

/// Like [`skip_reason`], plus the rule that needs the rest of the snapshot:
/// files under a Helm chart's `templates/` folder.
///
/// ```
/// use gitops_core::{skip_reason_in, SkipReason};
/// use gitops_core::Snapshot;
/// let snap = Snapshot::from_files([
///     ("charts/web/Chart.yaml", "name: web"),
///     ("charts/web/templates/deploy.yaml", "{{ .Values.x }}"),
///     ("plain/templates/cm.yaml", "kind: ConfigMap"),
/// ]);
/// assert_eq!(
///     skip_reason_in(&snap, "charts/web/templates/deploy.yaml"),
///     Some(SkipReason::HelmTemplate { chart: "charts/web".into() })
/// );
/// assert_eq!(skip_reason_in(&snap, "plain/templates/cm.yaml"), None);
/// ```
pub fn skip_reason_in(snapshot: &Snapshot, path: &str) -> Option<SkipReason> {
    if let Some(reason) = skip_reason(path) {
        return Some(reason);
    }
    if !path.contains("templates/") {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let dirs = parts.len().saturating_sub(1);
    for i in 0..dirs {
        if parts.get(i) != Some(&"templates") {
            continue;
        }
        let chart = parts.get(..i).unwrap_or_default().join("/");
        let chart_file = if chart.is_empty() {
            "Chart.yaml".to_owned()
        } else {
            format!("{chart}/Chart.yaml")
        };
        if snapshot.get(&chart_file).is_some() {
            return Some(SkipReason::HelmTemplate { chart });
        }
    }
    None
}
