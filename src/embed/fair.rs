//! The local embedder's share of the CPU, taken in turn by workspace.
//!
//! Embedding is most of a turn's CPU: the question, then every sentence of the answer and of
//! the sources it cites. On a small machine eight turns embedding at once each ran several
//! times slower, so a workspace flooding the bot with legitimate questions made every other
//! workspace's answers seconds late. [`FairEmbedder`] runs as many batches of a few texts at
//! once as there are cores and hands the CPU to the workspaces waiting for it in turn (see
//! [`FairSlots`]): a quiet workspace's embedding waits for at most the batches already
//! running, however many texts the busy workspace has queued.
//! The workspace is the one [`for_workspace`] names for the work in progress (a turn); work
//! outside one (ingest) shares a single queue.

use super::{EmbedError, Embedder};
use crate::fair::FairSlots;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static WORKSPACE: Vec<u8>;
}

/// Runs `work` on behalf of `workspace`: its embeddings take their turn with that workspace's.
pub async fn for_workspace<F: Future>(workspace: &[u8], work: F) -> F::Output {
    WORKSPACE.scope(workspace.to_vec(), work).await
}

/// An embedder whose calls take their turn at the CPU by workspace.
pub struct FairEmbedder {
    inner: Arc<dyn Embedder>,
    slots: Arc<FairSlots>,
    batch: usize,
}

/// Texts embedded per turn at the CPU: short enough that a waiting workspace does not wait
/// long (about 0.2 s for eight sentences on two cores), long enough to batch.
pub const FAIR_BATCH: usize = 8;

impl FairEmbedder {
    /// At most `at_once` batches of at most `batch` texts run through `inner` at the same time.
    pub fn new(inner: Arc<dyn Embedder>, at_once: usize, batch: usize) -> FairEmbedder {
        FairEmbedder { inner, slots: FairSlots::new(at_once), batch: batch.max(1) }
    }

    /// As many batches of [`FAIR_BATCH`] texts at once as the machine has cores.
    pub fn per_core(inner: Arc<dyn Embedder>) -> FairEmbedder {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        FairEmbedder::new(inner, cores, FAIR_BATCH)
    }
}

#[async_trait]
impl Embedder for FairEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let workspace = WORKSPACE.try_with(Vec::clone).unwrap_or_default();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            let _slot = self.slots.acquire(&workspace).await;
            vectors.extend(self.inner.embed(batch).await?);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::Semaphore;

    /// Records the first text of each call, and finishes a call only when the test allows it.
    struct Gated {
        calls: Mutex<Vec<String>>,
        go: Semaphore,
    }

    #[async_trait]
    impl Embedder for Gated {
        fn model_id(&self) -> &str {
            "gated"
        }
        fn dimensions(&self) -> usize {
            1
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.calls.lock().unwrap().push(texts[0].clone());
            self.go.acquire().await.unwrap().forget();
            Ok(vec![vec![1.0]; texts.len()])
        }
    }

    #[tokio::test]
    async fn a_quiet_workspace_does_not_wait_behind_all_the_busy_one_queued() {
        let gated = Arc::new(Gated { calls: Mutex::new(Vec::new()), go: Semaphore::new(0) });
        let fair = Arc::new(FairEmbedder::new(Arc::clone(&gated) as Arc<dyn Embedder>, 1, 8));
        let mut tasks = Vec::new();
        for (workspace, text) in [("A", "a1"), ("A", "a2"), ("A", "a3"), ("B", "b1")] {
            let fair = Arc::clone(&fair);
            tasks.push(tokio::spawn(for_workspace(workspace.as_bytes(), async move {
                fair.embed(&[text.to_string()]).await.unwrap();
            })));
            // Lets the call queue, so they ask in this order.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
        gated.go.add_permits(4);
        for task in tasks {
            task.await.unwrap();
        }
        // One at a time, workspaces in turn: a1 was running and A was first in line, then B
        // comes before A's third call, however many A has queued.
        assert_eq!(*gated.calls.lock().unwrap(), vec!["a1", "a2", "b1", "a3"]);
    }

    #[tokio::test]
    async fn a_long_call_takes_its_turn_batch_by_batch() {
        let gated = Arc::new(Gated { calls: Mutex::new(Vec::new()), go: Semaphore::new(0) });
        let fair = Arc::new(FairEmbedder::new(Arc::clone(&gated) as Arc<dyn Embedder>, 1, 2));
        let long: Vec<String> = (1..=6).map(|i| format!("a{i}")).collect();
        let busy = {
            let fair = Arc::clone(&fair);
            tokio::spawn(for_workspace(b"A", async move { fair.embed(&long).await.unwrap().len() }))
        };
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let quiet = {
            let fair = Arc::clone(&fair);
            tokio::spawn(for_workspace(b"B", async move { fair.embed(&["b1".to_string()]).await.unwrap().len() }))
        };
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        gated.go.add_permits(4);
        assert_eq!(busy.await.unwrap(), 6, "one vector per text, in order");
        assert_eq!(quiet.await.unwrap(), 1);
        // A's first batch (a1, a2) was running; B's text came before A's second batch.
        assert_eq!(*gated.calls.lock().unwrap(), vec!["a1", "b1", "a3", "a5"]);
    }
}
