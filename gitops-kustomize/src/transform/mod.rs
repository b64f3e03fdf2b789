//! One module per transformation, each over the resource list.

pub mod generators;
pub mod hash;
pub mod images;
pub mod labels;
pub mod nameref;
pub mod namespace;
pub mod patch;
pub mod prefix_suffix;
pub mod replacements;
pub mod replicas;
pub mod smp;
pub mod valueadd;
pub mod vars;
