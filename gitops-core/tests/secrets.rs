//! Secret values never reach text a person or a log reads: plan text, plan
//! JSON, unified diffs, `Debug`, sync reports. Showing them is an opt-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_core::{
    ApplyOptions, MemoryRuntime, MemorySource, Object, OwnerId, Reconciler, ReconcilerConfig,
    Target,
};
use serde_json::json;

const PASSWORD: &str = "hunter2-is-the-password";
const PASSWORD_B64: &str = "aHVudGVyMi1pcy10aGUtcGFzc3dvcmQ="; // base64 of PASSWORD

fn secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: shop}}\n\
         type: Opaque\nstringData: {{password: {password}, user: admin}}\n"
    )
}

fn assert_hidden(what: &str, text: &str) {
    for s in [PASSWORD, PASSWORD_B64, "new-password", "bmV3LXBhc3N3b3Jk"] {
        assert!(!text.contains(s), "{what} shows a secret value:\n{text}");
    }
}

#[test]
fn plans_reports_and_debug_mask_secret_values() {
    futures::executor::block_on(async {
        let source = MemorySource::new();
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
        source.commit(
            "main",
            [("ns.yaml", ns.to_string()), ("db.yaml", secret(PASSWORD))],
            "ada",
            "one",
        );
        let rt = MemoryRuntime::new();
        let r = Reconciler::new(
            source.clone(),
            rt.clone(),
            ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
        )
        .unwrap();

        // A create step: the JSON plan carries the manifest, masked.
        let (desired, plan) = r.plan("main").await.unwrap();
        assert_hidden("plan text", &plan.to_string());
        assert_hidden("plan JSON", &serde_json::to_string(&plan).unwrap());
        assert_hidden("plan Debug", &format!("{plan:?}"));
        assert_hidden("desired Debug", &format!("{desired:?}"));
        let json = serde_json::to_value(&plan).unwrap();
        let created = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"]["kind"] == "Secret")
            .unwrap();
        assert_eq!(created["object"]["stringData"]["password"], "***");
        assert_eq!(
            created["object"]["type"], "Opaque",
            "only values of data/stringData are masked"
        );

        let report = r.reconcile_once("main").await.unwrap();
        assert_hidden("sync report", &serde_json::to_string(&report).unwrap());
        assert_hidden("sync report text", &report.to_string());

        // An update: changes and the unified diff say *that* the value
        // changed, never what it was or becomes.
        source.commit(
            "main",
            [
                ("ns.yaml", ns.to_string()),
                ("db.yaml", secret("new-password")),
            ],
            "bob",
            "rotate",
        );
        let (_, plan) = r.plan("main").await.unwrap();
        let text = plan.to_string();
        assert_hidden("update text", &text);
        assert!(
            text.contains("data.password: \"*** (before)\" -> \"*** (after)\""),
            "{text}"
        );
        assert_hidden("update JSON", &serde_json::to_string(&plan).unwrap());
        let step = &plan.steps[0];
        let gitops_core::Action::Update { diff: Some(diff) } = &step.action else {
            panic!("{plan}")
        };
        let live = rt.objects()[&step.key].clone();
        let unified = diff.render(&live, false);
        assert_hidden("unified diff", &unified);
        assert!(unified.contains("-  password: '*** (before)'"), "{unified}");
        assert!(unified.contains("   user: '***'"), "{unified}");
        // The values are still there for the program: the patch applies them.
        assert!(
            serde_json::to_string(&diff.json_patch())
                .unwrap()
                .contains("bmV3LXBhc3N3b3Jk")
        );

        // Opt-in.
        let mut revealed = plan.clone();
        revealed.reveal_secrets();
        assert!(
            revealed.to_string().contains("bmV3LXBhc3N3b3Jk"),
            "{revealed}"
        );
        assert!(
            serde_json::to_string(&revealed)
                .unwrap()
                .contains("bmV3LXBhc3N3b3Jk")
        );

        // Someone else's edit of a Secret is drift; its report is masked too.
        let by_hand = Object::new(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"}, "data": {"password": PASSWORD_B64}}))
        .unwrap();
        let kubectl = ApplyOptions::new("kubectl").force(true);
        rt.apply(&by_hand, &kubectl).await.unwrap();
        let (_, plan) = r.plan("main").await.unwrap();
        assert_hidden("drift plan", &plan.to_string());
        assert_hidden("drift plan Debug", &format!("{plan:?}"));
    });
}
