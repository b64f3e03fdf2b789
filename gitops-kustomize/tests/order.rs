//! Laws: a build is deterministic and does not depend on the order the
//! snapshot's files were added in.

use gitops_core::Snapshot;
use proptest::prelude::*;

fn files(n: usize, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut res = Vec::new();
    for i in 0..n {
        let name = format!("r{i}.yaml");
        out.push((
            format!("base/{name}"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: \"{i}\"\n"
            ),
        ));
        res.push(name);
    }
    out.push((
        "base/kustomization.yaml".into(),
        format!(
            "resources: [{}]\nconfigMapGenerator:\n- name: gen\n  literals: [a=b]\n",
            res.join(", ")
        ),
    ));
    out.push((
        "overlay/kustomization.yaml".into(),
        format!("resources: [../base]\nnamePrefix: {prefix}\ncommonLabels: {{env: x}}\n"),
    ));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn build_is_independent_of_file_order(n in 1usize..8, seed in any::<u64>(), prefix in "[a-z]{1,5}-") {
        let fs = files(n, &prefix);
        let mut shuffled = fs.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = usize::try_from(s >> 33).unwrap_or(0) % (i + 1);
            shuffled.swap(i, j);
        }
        let a = gitops_kustomize::build(&Snapshot::from_files(fs), "overlay").map_err(|e| e.to_string());
        let b = gitops_kustomize::build(&Snapshot::from_files(shuffled), "overlay").map_err(|e| e.to_string());
        prop_assert!(a.is_ok());
        prop_assert_eq!(&a, &b);
        let again = gitops_kustomize::build(&Snapshot::from_files(files(n, &prefix)), "overlay").map_err(|e| e.to_string());
        prop_assert_eq!(a, again);
    }
}
