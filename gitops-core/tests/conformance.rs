//! The conformance suites, run against the in-memory backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use gitops_core::testing::source::{self, SourceFixture};
use gitops_core::{MemorySource, Person};

struct MemoryFixture(MemorySource);

#[async_trait]
impl SourceFixture for MemoryFixture {
    type Source = MemorySource;

    async fn commit(
        &mut self,
        branch: &str,
        files: &[(&str, &[u8])],
        author: &Person,
        message: &str,
    ) -> String {
        self.0.commit_as(
            branch,
            files.iter().map(|(p, d)| (*p, *d)),
            author.clone(),
            author.clone(),
            message,
        )
    }

    async fn tag(&mut self, name: &str, commit: &str) {
        self.0.tag(name, commit).unwrap();
    }

    fn source(&self) -> &MemorySource {
        &self.0
    }
}

#[tokio::test]
async fn memory_source_conforms() {
    source::run_all(&mut MemoryFixture(MemorySource::new())).await;
}

#[tokio::test]
async fn memory_runtime_conforms() {
    let rt = gitops_core::MemoryRuntime::new();
    gitops_core::testing::target::run_all(&rt, "mem").await;
    // The same suite through the forwarding impls and an inert fault wrapper.
    let boxed: Box<dyn gitops_core::Target> = Box::new(gitops_core::MemoryRuntime::new());
    gitops_core::testing::target::run_all(&boxed, "boxed").await;
    let arc = std::sync::Arc::new(gitops_core::FaultyTarget::new(
        gitops_core::MemoryRuntime::new(),
    ));
    gitops_core::testing::target::run_all(&arc, "faulty").await;
}
