//! `images:`: rewrites container images (name, tag, digest).

use serde_json::Value;

use crate::fieldspec::{FieldSpec, apply_specs};
use crate::resource::{Resource, assign};

/// One `images:` entry.
#[derive(Clone, Debug, Default)]
pub struct ImageTag {
    /// The image name to match.
    pub name: String,
    /// Replacement name.
    pub new_name: String,
    /// Replacement tag.
    pub new_tag: String,
    /// Replacement digest.
    pub digest: String,
    /// Appended to the tag.
    pub tag_suffix: String,
}

/// Splits an image into name, tag and digest (the registry's port is part of the name).
pub fn split(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|i| *i > 0).unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@').map(|i| i + slash);
    let colon = search.find(':').map(|i| i + slash);
    match (colon, at) {
        (None, None) => (image.into(), String::new(), String::new()),
        (c, Some(a)) if c.is_none_or(|c| a < c) => {
            (image[..a].into(), String::new(), image[a + 1..].into())
        }
        (Some(c), Some(a)) => (
            image[..c].into(),
            image[c + 1..a].into(),
            image[a + 1..].into(),
        ),
        (Some(c), None) => (image[..c].into(), image[c + 1..].into(), String::new()),
        (None, Some(_)) => (image.into(), String::new(), String::new()),
    }
}

fn matched(image: &str, name: &str) -> bool {
    let Some(rest) = image.strip_prefix(name) else {
        return false;
    };
    let rest = rest.strip_prefix("@sha256").unwrap_or(rest);
    rest.is_empty()
        || rest.strip_prefix(':').is_some_and(|t| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.{}-".contains(c))
        })
}

impl ImageTag {
    /// The new value of `image`, if this entry matches it.
    pub fn update(&self, image: &str) -> Option<String> {
        if !matched(image, &self.name) {
            return None;
        }
        let (mut name, mut tag, mut digest) = split(image);
        if !self.new_name.is_empty() {
            name = self.new_name.clone();
        }
        if !self.new_tag.is_empty() && !self.digest.is_empty() {
            tag = self.new_tag.clone();
            digest = self.digest.clone();
        } else if !self.new_tag.is_empty() {
            tag = self.new_tag.clone();
            digest.clear();
        } else if !self.digest.is_empty() {
            tag.clear();
            digest = self.digest.clone();
        }
        if !self.tag_suffix.is_empty() {
            tag.push_str(&self.tag_suffix);
        }
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        Some(name)
    }

    /// Rewrites `v` if this entry matches it; whether that changed it.
    fn set(&self, v: &mut Value) -> bool {
        match v.as_str().and_then(|s| self.update(s)) {
            Some(new) => assign(v, Value::String(new)),
            None => false,
        }
    }
}

/// Rewrites the images of every container list under `v`; whether any changed.
fn walk_containers(v: &mut Value, it: &ImageTag) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if (k == "containers" || k == "initContainers") && child.is_array() {
                    if let Value::Array(items) = child {
                        for c in items {
                            if let Some(img) = c.get_mut("image") {
                                changed |= it.set(img);
                            }
                        }
                    }
                } else {
                    changed |= walk_containers(child, it);
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                changed |= walk_containers(x, it);
            }
        }
        _ => {}
    }
    changed
}

/// Applies one entry: every `containers`/`initContainers` list anywhere
/// (except in CRDs), then the `images` table.
pub fn apply(res: &mut [Resource], it: &ImageTag, specs: &[FieldSpec]) {
    let specs: Vec<FieldSpec> = specs
        .iter()
        .map(|f| FieldSpec {
            create: false,
            ..f.clone()
        })
        .collect();
    for r in res.iter_mut() {
        let id = r.cur_id();
        let mut changed = false;
        if id.gvk.kind != "CustomResourceDefinition" {
            changed |= walk_containers(&mut r.obj, it);
        }
        apply_specs(&specs, &id, &mut r.obj, &mut |v| changed |= it.set(v));
        r.changed |= changed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_forms() {
        assert_eq!(split("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(
            split("reg:5000/nginx:1.2"),
            ("reg:5000/nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split("nginx@sha256:ab"),
            ("nginx".into(), "".into(), "sha256:ab".into())
        );
        assert_eq!(
            split("nginx:1@sha256:ab"),
            ("nginx".into(), "1".into(), "sha256:ab".into())
        );
    }

    #[test]
    fn update_rules() {
        let it = ImageTag {
            name: "nginx".into(),
            new_name: "my/nginx".into(),
            new_tag: "2".into(),
            ..Default::default()
        };
        assert_eq!(it.update("nginx:1").as_deref(), Some("my/nginx:2"));
        assert_eq!(it.update("nginx@sha256:ab").as_deref(), Some("my/nginx:2"));
        // As in kustomize, a tag followed by a digest does not match the name pattern.
        assert_eq!(it.update("nginx:1@sha256:ab"), None);
        assert_eq!(it.update("nginx2:1"), None);
        let d = ImageTag {
            name: "nginx".into(),
            digest: "sha256:cd".into(),
            ..Default::default()
        };
        assert_eq!(d.update("nginx:1").as_deref(), Some("nginx@sha256:cd"));
    }
}
