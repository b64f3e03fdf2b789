//! Bounded, content-addressed caches shared by every call on a
//! [`GitSource`](crate::GitSource).
//!
//! Both caches are keyed by object id, so an entry can never be stale: a
//! changed file or folder has a new id. Eviction is a two-generation scheme
//! (an approximation of LRU that costs one hash lookup): new entries go to the
//! young generation; when it is full, the old generation is dropped and the
//! young one becomes old; a hit in the old generation is promoted.

use std::sync::Arc;

use gitops_core::Blob;
use gix::ObjectId;
use gix::hashtable::HashMap;

/// One cache with a cost budget (bytes for blobs, entries for trees).
#[derive(Debug)]
pub(crate) struct GenCache<V> {
    young: HashMap<ObjectId, V>,
    old: HashMap<ObjectId, V>,
    young_cost: usize,
    budget: usize,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl<V: Clone> GenCache<V> {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            young: HashMap::default(),
            old: HashMap::default(),
            young_cost: 0,
            budget,
            hits: 0,
            misses: 0,
        }
    }

    /// The value for `key`, counting a hit or a miss.
    pub(crate) fn get(&mut self, key: &ObjectId, cost: impl Fn(&V) -> usize) -> Option<V> {
        if let Some(v) = self.young.get(key) {
            self.hits += 1;
            return Some(v.clone());
        }
        match self.old.remove_entry(key) {
            Some((k, v)) => {
                self.hits += 1;
                let c = cost(&v);
                self.put(k, v.clone(), c);
                Some(v)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Stores `value`, unless it alone is larger than half the budget.
    pub(crate) fn insert(&mut self, key: ObjectId, value: V, cost: usize) {
        if cost > self.budget / 2 {
            return;
        }
        self.put(key, value, cost);
    }

    fn put(&mut self, key: ObjectId, value: V, cost: usize) {
        self.young_cost += cost;
        self.young.insert(key, value);
        if self.young_cost > self.budget / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_cost = 0;
        }
    }

    /// Number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
        self.young_cost = 0;
        self.hits = 0;
        self.misses = 0;
    }
}

/// What a tree entry is, for a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Symlink,
    Submodule,
}

/// One non-folder entry of a tree, with its path (relative to that tree in
/// a [`Listing`], to the snapshot root in a diff).
#[derive(Clone, Debug)]
pub(crate) struct FlatEntry {
    pub(crate) path: Box<str>,
    pub(crate) kind: EntryKind,
    pub(crate) id: ObjectId,
}

/// One entry of a [`Listing`]: a file (or link, or submodule), or a folder
/// with its own listing, shared with every other tree that has it.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Entry(FlatEntry),
    Dir { name: Box<str>, listing: Listing },
}

/// The decoded entries of one tree, with its sub-folders' listings
/// attached: a new commit reads only the trees it changed, and shares the
/// listings of the others.
pub(crate) type Listing = Arc<[Node]>;

/// The caches of one source.
#[derive(Debug)]
pub(crate) struct Caches {
    pub(crate) blobs: GenCache<Blob>,
    pub(crate) trees: GenCache<Listing>,
}

impl Caches {
    pub(crate) fn new(blob_bytes: usize, tree_entries: usize) -> Self {
        Self {
            blobs: GenCache::new(blob_bytes),
            trees: GenCache::new(tree_entries),
        }
    }
}

/// Counters of the caches of a [`GitSource`](crate::GitSource), to check
/// that a reload read only what changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Blob reads answered from the cache.
    pub blob_hits: u64,
    /// Blob reads that went to the object database.
    pub blob_misses: u64,
    /// Blobs held.
    pub blobs_cached: usize,
    /// Tree listings answered from the cache.
    pub tree_hits: u64,
    /// Tree listings read from the object database.
    pub tree_misses: u64,
    /// Tree listings held.
    pub trees_cached: usize,
}

#[cfg(test)]
mod tests {
    use super::GenCache;

    fn id(n: u8) -> gix::ObjectId {
        gix::ObjectId::from([n; 20])
    }

    #[test]
    fn evicts_by_generation_and_promotes_hits() {
        let mut c: GenCache<u32> = GenCache::new(4);
        c.insert(id(1), 10, 1);
        c.insert(id(2), 20, 1);
        c.insert(id(3), 30, 1); // young is over 2: becomes old
        assert_eq!(c.get(&id(1), |_| 1), Some(10)); // promoted
        c.insert(id(4), 40, 1);
        c.insert(id(5), 50, 1); // old {1,2,3 minus 1} dropped
        assert_eq!(c.get(&id(2), |_| 1), None);
        assert_eq!(c.len(), 3);
        c.insert(id(6), 60, 100); // too large: not cached
        assert_eq!(c.get(&id(6), |_| 1), None);
    }
}
