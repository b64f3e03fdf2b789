//! Updates in the [`MemoryRuntime`]: whole-object writes by a field manager
//! (operation `Update`), as `kubectl edit`, `kubectl scale`, `kubectl
//! create` and controllers make them.

use gitops_diff::UpdateRequest;
use serde_json::Value;

use super::runtime::MemoryRuntime;
use crate::object::Object;
use crate::target::TargetError;

impl MemoryRuntime {
    /// Writes `object` whole (an HTTP `PUT`; a `POST` when it does not
    /// exist yet) as field manager `manager`, as the API server records an
    /// update: nothing is merged; `manager`'s `Update` entry in
    /// `managedFields` gains the fields the write added or changed and
    /// loses those it removed; other managers lose the fields the write
    /// added, changed or removed. An update never conflicts. The object's
    /// `status`, server metadata and `managedFields` are ignored (the live
    /// ones are kept).
    ///
    /// The next apply then removes or conflicts as a real API server does
    /// (see [`gitops_diff::server_side_update`]).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gitops_core::{ApplyOptions, MemoryRuntime, Object, Target, TargetError, TargetExt};
    /// use serde_json::json;
    /// let rt = MemoryRuntime::with_system_namespaces();
    /// let cm = |v: &str| Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
    ///     "metadata": {"name": "c", "namespace": "default"}, "data": {"k": v}})).unwrap();
    /// rt.apply(&cm("1"), &ApplyOptions::default()).await.unwrap();
    /// // `kubectl edit` changes the value: the editor now owns it...
    /// rt.update(&cm("2"), "kubectl-edit").unwrap();
    /// // ...and the next apply of another value conflicts.
    /// let err = rt.apply(&cm("1"), &ApplyOptions::default()).await.unwrap_err();
    /// assert!(matches!(err, TargetError::Conflict { .. }));
    /// # });
    /// ```
    ///
    /// # Errors
    /// As [`Target::apply`](crate::Target::apply): an unknown kind, a
    /// missing namespace, an invalid object.
    pub fn update(&self, object: &Object, manager: &str) -> Result<Value, TargetError> {
        self.write(object, false, |live, lists, time| {
            gitops_diff::server_side_update(
                UpdateRequest::new(live, object.as_value(), manager, lists).with_time(time),
            )
        })
    }
}
