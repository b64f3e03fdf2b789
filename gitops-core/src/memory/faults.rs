//! [`FaultyTarget`]: wraps any [`Target`] and injects failures and latency.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::key::{GroupKind, ObjectKey};
use crate::object::Object;
use crate::target::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, LiveRef, LiveState, ObserveRequest,
    OwnerId, Target, TargetError,
};
use crate::util::Delay;

/// A [`Target`] operation, to aim a [`Fault`] at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// [`Target::observe`].
    Observe,
    /// [`Target::apply`].
    Apply,
    /// [`Target::delete`].
    Delete,
    /// [`Target::dependents`].
    Dependents,
    /// [`Target::read_inventory`].
    ReadInventory,
    /// [`Target::write_inventory`].
    WriteInventory,
}

/// A failure or delay to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail the `n`-th call (1-based) of `operation`, or of any operation
    /// when `None`.
    FailNthCall {
        /// Which call.
        n: usize,
        /// Which operation is counted.
        operation: Option<Operation>,
    },
    /// Fail every apply or delete of objects of this kind.
    FailKind {
        /// The kind.
        kind: GroupKind,
    },
    /// Delay every call.
    Latency(Duration),
}

#[derive(Debug, Default)]
struct Counters {
    all: usize,
    per_op: BTreeMap<Operation, usize>,
}

/// Wraps a [`Target`], injecting [`Fault`]s: the failure-path twin of the
/// in-memory runtime, for testing what a reconciler does when the runtime
/// misbehaves. Injected failures are [`TargetError::Unavailable`] whose
/// message starts with `injected fault`.
///
/// Faults model failures of writes: server-side dry runs (`dry_run` in
/// the apply or delete options) go to the wrapped target unchanged and are
/// not counted, so a fault hits a write whose dry run passed (the window a
/// reconciler cannot close by validating first).
///
/// ```
/// # futures::executor::block_on(async {
/// use gitops_core::{ApplyOptions, Fault, FaultyTarget, MemoryRuntime, Object, Operation, Target};
/// use serde_json::json;
/// let t = FaultyTarget::new(MemoryRuntime::new())
///     .with_fault(Fault::FailNthCall { n: 2, operation: Some(Operation::Apply) });
/// let ns = Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})).unwrap();
/// assert!(t.apply(&ns, &ApplyOptions::default()).await.is_ok());
/// assert!(t.apply(&ns, &ApplyOptions::default()).await.is_err());
/// assert!(t.apply(&ns, &ApplyOptions::default()).await.is_ok());
/// # });
/// ```
#[derive(Debug)]
pub struct FaultyTarget<T> {
    inner: T,
    faults: Mutex<Vec<Fault>>,
    counters: Mutex<Counters>,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Target> FaultyTarget<T> {
    /// Wraps a target, with no faults yet.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            faults: Mutex::new(Vec::new()),
            counters: Mutex::new(Counters::default()),
        }
    }

    /// Adds a fault.
    pub fn with_fault(self, fault: Fault) -> Self {
        self.add_fault(fault);
        self
    }

    /// Adds a fault to a shared wrapper.
    pub fn add_fault(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Removes all faults (counters keep counting).
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// The wrapped target.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Calls made so far of one operation.
    pub fn calls(&self, operation: Operation) -> usize {
        lock(&self.counters)
            .per_op
            .get(&operation)
            .copied()
            .unwrap_or(0)
    }

    async fn enter(&self, op: Operation, key: Option<&ObjectKey>) -> Result<(), TargetError> {
        let (all, this) = {
            let mut c = lock(&self.counters);
            c.all += 1;
            let all = c.all;
            let n = c.per_op.entry(op).or_default();
            *n += 1;
            (all, *n)
        };
        let faults = lock(&self.faults).clone();
        let mut delay = Duration::ZERO;
        let mut failure = None;
        for f in &faults {
            match f {
                Fault::Latency(d) => delay += *d,
                Fault::FailNthCall { n, operation } => {
                    let hit = match operation {
                        None => all == *n,
                        Some(o) => *o == op && this == *n,
                    };
                    if hit {
                        failure = Some(format!("injected fault: call {n} of {op:?} fails"));
                    }
                }
                Fault::FailKind { kind } => {
                    if matches!(op, Operation::Apply | Operation::Delete)
                        && key.is_some_and(|k| k.group == kind.group && k.kind == kind.kind)
                    {
                        failure = Some(format!("injected fault: {op:?} of {kind} fails"));
                    }
                }
            }
        }
        if !delay.is_zero() {
            Delay::new(delay).await;
        }
        match failure {
            Some(message) => Err(TargetError::Unavailable {
                message,
                source: None,
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl<T: Target> Target for FaultyTarget<T> {
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
        self.enter(Operation::Observe, None).await?;
        self.inner.observe(request).await
    }

    /// Forwarded as is: no fault is aimed at it (a failure would only make
    /// the caller observe).
    async fn versions(
        &self,
        request: &ObserveRequest,
    ) -> Result<Option<BTreeMap<ObjectKey, String>>, TargetError> {
        self.inner.versions(request).await
    }

    /// Forwarded as is, as [`Target::versions`].
    async fn still_at(
        &self,
        recorded: &[(&ObjectKey, &str)],
        owner: Option<&OwnerId>,
    ) -> Result<Option<Vec<bool>>, TargetError> {
        self.inner.still_at(recorded, owner).await
    }

    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        if options.dry_run {
            return self.inner.apply(object, options).await;
        }
        self.enter(Operation::Apply, Some(object.key())).await?;
        self.inner.apply(object, options).await
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError> {
        if options.dry_run {
            return self.inner.delete(key, options).await;
        }
        self.enter(Operation::Delete, Some(key)).await?;
        self.inner.delete(key, options).await
    }

    async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError> {
        self.enter(Operation::Dependents, Some(key)).await?;
        self.inner.dependents(key).await
    }

    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        self.enter(Operation::ReadInventory, None).await?;
        self.inner.read_inventory(owner).await
    }

    /// Fails as [`Target::read_inventory`] does (the same operation).
    async fn inventory_version(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Option<String>>, TargetError> {
        self.enter(Operation::ReadInventory, None).await?;
        self.inner.inventory_version(owner).await
    }

    async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError> {
        self.enter(Operation::WriteInventory, None).await?;
        self.inner.write_inventory(inventory).await
    }
}
