//! Micro-batching: many concurrent callers, one call per batch. A hot write
//! (a coupon claim under a rush) costs a statement, a transaction and a
//! round trip each when written alone; written as one multi-row statement
//! per batch it costs them once per batch. Callers submit one item each and
//! wait for their own answer.
//!
//! Batches form by themselves, as in group commit: the first item waiting
//! starts a batch, which takes every item queued behind it (up to
//! `max_batch`). While `in_flight` batches are being handled, new items
//! queue, so batches grow with the load and a lone item never waits for
//! company.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The batch was not handled: the batcher stopped, or its handler panicked
/// or answered fewer items than it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch writer did not answer")]
pub struct NoAnswer;

type Waiting<I, O> = (I, oneshot::Sender<O>);

/// A handle for submitting items; cheap to clone. The batching task ends
/// when every handle is dropped, after handling what was queued.
#[derive(Debug)]
pub struct Batcher<I, O> {
    queue: mpsc::Sender<Waiting<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batching task on the current runtime. `handle` gets each
    /// batch (1 to `max_batch` items, in arrival order) and must answer one
    /// output per item, in the same order; at most `in_flight` batches are
    /// handled at once.
    pub fn start<F, Fut>(max_batch: usize, in_flight: usize, handle: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        Self::start_on(&Handle::current(), max_batch, in_flight, handle)
    }

    /// [`Batcher::start`] on `runtime`: the batching task and each batch's
    /// handling run there (see [`Db::writer_runtime`](crate::Db::writer_runtime)).
    pub fn start_on<F, Fut>(runtime: &Handle, max_batch: usize, in_flight: usize, handle: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(max_batch * in_flight.max(1) * 2);
        runtime.spawn(run(rx, max_batch, in_flight.max(1), handle));
        Self { queue }
    }

    /// Submits one item and waits for its output.
    pub async fn submit(&self, item: I) -> Result<O, NoAnswer> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((item, reply)).await.map_err(|_| NoAnswer)?;
        answer.await.map_err(|_| NoAnswer)
    }
}

async fn run<I, O, F, Fut>(
    mut rx: mpsc::Receiver<Waiting<I, O>>,
    max_batch: usize,
    in_flight: usize,
    handle: F,
) where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Vec<O>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // Wait for a free slot before taking items, so that items keep
        // queueing (and the next batch keeps growing) while every slot is busy.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut waiting = Vec::with_capacity(max_batch.min(rx.len() + 1));
        waiting.push(first);
        while waiting.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => waiting.push(next),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<I>, Vec<_>) = waiting.into_iter().unzip();
        let batch = handle(items);
        tokio::spawn(async move {
            // A panicking handler drops the replies: each caller hears NoAnswer.
            let outputs = batch.await;
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(output);
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn every_caller_gets_its_own_answer() {
        let batcher = Batcher::start(8, 2, |items: Vec<u32>| async move {
            items.into_iter().map(|i| i * 10).collect::<Vec<_>>()
        });
        let calls: Vec<_> = (0..100u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (i, batcher.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, answer) = call.await.expect("caller task");
            assert_eq!(answer, Ok(i * 10));
        }
    }

    #[tokio::test]
    async fn a_batcher_started_on_another_runtime_handles_its_batches_there() {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let other = std::thread::Builder::new()
            .name("other-runtime".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                handle_tx.send(runtime.handle().clone()).expect("handle");
                runtime.block_on(async move {
                    let _ = stop_rx.await;
                });
            })
            .expect("thread");
        let runtime = handle_rx.recv().expect("handle");
        let batcher = Batcher::start_on(&runtime, 8, 1, |items: Vec<u32>| async move {
            let thread = std::thread::current().name().map(str::to_owned);
            items
                .into_iter()
                .map(|i| (i, thread.clone()))
                .collect::<Vec<_>>()
        });

        let answer = batcher.submit(7).await;

        assert_eq!(answer, Ok((7, Some("other-runtime".to_owned()))));
        let _ = stop_tx.send(());
        other.join().expect("other runtime's thread");
    }

    #[tokio::test]
    async fn items_queued_while_a_batch_is_handled_form_the_next_batch() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let batcher = Batcher::start(64, 1, move |items: Vec<u32>| {
            seen.lock().expect("sizes").push(items.len());
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                items
            }
        });
        let first = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.submit(0).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rest: Vec<_> = (1..=20u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(i).await })
            })
            .collect();
        assert_eq!(first.await.expect("first"), Ok(0));
        for (i, call) in (1..=20u32).zip(rest) {
            assert_eq!(call.await.expect("caller"), Ok(i));
        }
        assert_eq!(*sizes.lock().expect("sizes"), vec![1, 20]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_maximum() {
        let largest = Arc::new(Mutex::new(0usize));
        let seen = Arc::clone(&largest);
        let batcher = Batcher::start(5, 1, move |items: Vec<u32>| {
            let mut largest = seen.lock().expect("largest");
            *largest = (*largest).max(items.len());
            async move { items }
        });
        let calls: Vec<_> = (0..200u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(i).await })
            })
            .collect();
        for call in calls {
            assert!(call.await.expect("caller").is_ok());
        }
        assert_eq!(*largest.lock().expect("largest"), 5);
    }

    #[tokio::test]
    async fn a_handler_answering_too_few_leaves_the_rest_with_no_answer() {
        let batcher = Batcher::start(8, 1, |items: Vec<u32>| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            items.into_iter().take(1).collect::<Vec<_>>()
        });
        let calls: Vec<_> = (0..4u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(i).await })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.expect("caller"));
        }
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1);
        assert_eq!(answers.iter().filter(|a| **a == Err(NoAnswer)).count(), 3);
    }
}
