//! One TLS crypto provider: a program that links gitops-git (whose HTTPS
//! transport uses rustls too) and gitops-kube builds a kube client with no
//! set-up call.
//!
//! Until both crates chose `ring`, gix's reqwest transport compiled rustls'
//! `aws-lc-rs` provider in and kube compiled `ring`: with two providers
//! rustls cannot pick one, and building the client below panicked ("no
//! process-level CryptoProvider available"). This test is a binary of its
//! own because the provider is process-wide state: no other test may have
//! installed one first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_kube::kube::config::{KubeConfigOptions, Kubeconfig};
use gitops_kube::kube::{Client, Config};

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: someone
  user:
    token: not-a-secret
contexts:
- name: nowhere
  context: {cluster: nowhere, user: someone}
current-context: nowhere
";

#[tokio::test]
async fn a_kube_client_builds_with_gitops_git_linked_and_no_setup_call() {
    // gitops-git is linked in for real, its HTTPS transport included.
    let options = gitops_git::FetchOptions::default();
    assert!(options.depth.is_none());

    let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    // Building the client builds its rustls configuration: the panic was here.
    let client = Client::try_from(config).unwrap();
    // And a request goes as far as the (closed) port: an error, no panic.
    let err = client.apiserver_version().await.unwrap_err();
    assert!(!err.to_string().is_empty());
}
