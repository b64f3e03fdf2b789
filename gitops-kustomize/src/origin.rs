//! Provenance of built objects: the file each came from and the files that
//! changed it on the way up, kept beside the objects (never in them).

use std::fmt;

/// Where a built object came from and which files changed it.
///
/// Paths are relative to the snapshot root. An object read from a
/// resource file has that file's `path` and the index of its YAML
/// `document` (0-based, empty documents counted, as in
/// [`gitops_core::Provenance`]), plus `item` when it was an item of a
/// `List`. A generated object (`configMapGenerator`, `secretGenerator`,
/// `generators`) has the kustomization file holding its generator as
/// `path`, document 0, and the generator's field as `generator`.
///
/// `transformed_by` lists, in the order they were applied and without
/// duplicates, the files that actually changed the object (an object a
/// transformer left as it was is not attributed to it):
/// - a kustomization file whose own transformers changed it (`namespace`,
///   `namePrefix`/`nameSuffix`, `labels`, `commonLabels`,
///   `commonAnnotations`, `images`, `replicas`, `replacements`, inline
///   patches, a generator with `behavior: merge|replace`), components'
///   kustomization files included;
/// - a patch file that applied to it (`patches`/`patchesJson6902` with a
///   `path`, `patchesStrategicMerge` files, patch transformer configs'
///   `path`/`paths`), and a `transformers:`/`replacements:` file
///   whose content changed it;
/// - the root kustomization file for the fix-ups run once at the top of
///   the build (generated names' content hash, name references to renamed
///   objects, `vars`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Origin {
    /// The file the object was read from, or the kustomization file of its generator.
    pub path: String,
    /// Index of the YAML document in `path` (0-based; 0 for generated objects).
    pub document: usize,
    /// Index in the `items` of a `List` document, when the object came from one.
    pub item: Option<usize>,
    /// For a generated object, the kustomization field of its generator
    /// (`configMapGenerator`, `secretGenerator` or `generators`).
    pub generator: Option<String>,
    /// The files that changed the object, in the order applied, without duplicates.
    pub transformed_by: Vec<String>,
}

impl Origin {
    /// An object read from document `document` of `path`.
    pub fn new(path: impl Into<String>, document: usize) -> Self {
        Self {
            path: path.into(),
            document,
            ..Self::default()
        }
    }

    /// The same origin for item `item` of a `List` document.
    pub fn with_item(mut self, item: usize) -> Self {
        self.item = Some(item);
        self
    }

    /// An object made by the generator in `field` of the kustomization `file`.
    pub fn generated(file: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            path: file.into(),
            generator: Some(field.into()),
            ..Self::default()
        }
    }

    /// Records that `file` changed the object (kept once, at its first application).
    pub(crate) fn touched(&mut self, file: &str) {
        if !self.transformed_by.iter().any(|f| f == file) {
            self.transformed_by.push(file.to_owned());
        }
    }
}

impl fmt::Display for Origin {
    /// `base/deploy.yaml#0 via overlay/patch.yaml, overlay/kustomization.yaml`;
    /// generated objects: `overlay/kustomization.yaml (configMapGenerator)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.generator {
            Some(g) => write!(f, "{} ({g})", self.path)?,
            None => write!(f, "{}#{}", self.path, self.document)?,
        }
        if let Some(i) = self.item {
            write!(f, " items[{i}]")?;
        }
        if !self.transformed_by.is_empty() {
            write!(f, " via {}", self.transformed_by.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_keeps_first_application_order_without_duplicates() {
        let mut o = Origin::new("base/d.yaml", 1);
        o.touched("overlay/patch.yaml");
        o.touched("overlay/kustomization.yaml");
        o.touched("overlay/patch.yaml");
        assert_eq!(
            o.transformed_by,
            ["overlay/patch.yaml", "overlay/kustomization.yaml"]
        );
        assert_eq!(
            o.to_string(),
            "base/d.yaml#1 via overlay/patch.yaml, overlay/kustomization.yaml"
        );
        let g = Origin::generated("k/kustomization.yaml", "configMapGenerator");
        assert_eq!(g.to_string(), "k/kustomization.yaml (configMapGenerator)");
        assert_eq!(
            Origin::new("l.yaml", 0).with_item(3).to_string(),
            "l.yaml#0 items[3]"
        );
    }
}
