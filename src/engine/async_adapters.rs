//! Adapters between the engine and the `futures` traits (feature `async`): a [`Source`] over
//! any `Stream` of messages and a [`Sink`](super::Sink) over any `futures` `Sink` of
//! deliveries. The engine's threads drive them with [`block_on`], a minimal executor written
//! with the standard library only, so no async runtime is needed; the stream or sink may
//! still be fed by one (e.g. a channel whose other end lives in a runtime).

use super::{Delivery, SinkError, Source, SourceError, SourceStatus, POLL_INTERVAL};
use crate::Message;
use futures_core::Stream;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread, ThreadId};
use std::time::Instant;

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A waker for the current thread, remade when the adapter moves to another thread.
#[derive(Default)]
struct ThreadLocalWaker {
    cached: Option<(ThreadId, Waker)>,
}

impl ThreadLocalWaker {
    fn get(&mut self) -> Waker {
        let id = thread::current().id();
        match &self.cached {
            Some((t, w)) if *t == id => w.clone(),
            _ => {
                let w = Waker::from(Arc::new(ThreadWaker(thread::current())));
                self.cached = Some((id, w.clone()));
                w
            }
        }
    }
}

/// Runs a future to completion on the current thread, parking it while the future waits.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

/// Polls `f` until ready, parking in between.
fn poll_blocking<T>(waker: &Waker, mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    let mut cx = Context::from_waker(waker);
    loop {
        match f(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

/// A source over a `Stream` of messages; the stream's end is the end of the engine's
/// stream. A pinned-box stream (`Box::pin(stream)`) works for streams that are not `Unpin`.
pub struct StreamSource<S> {
    stream: S,
    waker: ThreadLocalWaker,
    ended: bool,
}

impl<S> std::fmt::Debug for StreamSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource").field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl<S: Stream<Item = Message> + Unpin + Send> StreamSource<S> {
    /// A source reading `stream`.
    pub fn new(stream: S) -> Self {
        StreamSource { stream, waker: ThreadLocalWaker::default(), ended: false }
    }
}

impl<S: Stream<Item = Message> + Unpin + Send> Source for StreamSource<S> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        if self.ended {
            return Ok(SourceStatus::Ended);
        }
        let deadline = Instant::now() + POLL_INTERVAL;
        let waker = self.waker.get();
        let mut cx = Context::from_waker(&waker);
        while out.len() < max {
            match Pin::new(&mut self.stream).poll_next(&mut cx) {
                Poll::Ready(Some(m)) => out.push(m),
                Poll::Ready(None) => {
                    self.ended = true;
                    return Ok(SourceStatus::Ended);
                }
                Poll::Pending => {
                    // Return what we have; with nothing yet, wait (a little) to be woken.
                    let now = Instant::now();
                    if !out.is_empty() || now >= deadline {
                        break;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
        Ok(SourceStatus::Open)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// A sink over a `futures` `Sink` of deliveries: `send` waits for `poll_ready`, then starts
/// the send; `flush` and `close` drive `poll_flush` and `poll_close`. The inner sink's error
/// fails the subscriber.
pub struct FuturesSink<S> {
    sink: S,
    waker: ThreadLocalWaker,
}

impl<S> std::fmt::Debug for FuturesSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuturesSink").finish_non_exhaustive()
    }
}

impl<S> FuturesSink<S>
where
    S: futures_sink::Sink<Delivery> + Unpin + Send,
    S::Error: std::fmt::Display,
{
    /// A sink writing into `sink`.
    pub fn new(sink: S) -> Self {
        FuturesSink { sink, waker: ThreadLocalWaker::default() }
    }

    /// The inner sink back.
    pub fn into_inner(self) -> S {
        self.sink
    }
}

fn sink_error(e: impl std::fmt::Display) -> SinkError {
    SinkError::new(e.to_string())
}

impl<S> super::Sink for FuturesSink<S>
where
    S: futures_sink::Sink<Delivery> + Unpin + Send,
    S::Error: std::fmt::Display,
{
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        let waker = self.waker.get();
        let sink = &mut self.sink;
        poll_blocking(&waker, |cx| Pin::new(&mut *sink).poll_ready(cx)).map_err(sink_error)?;
        Pin::new(&mut self.sink).start_send(delivery).map_err(sink_error)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let waker = self.waker.get();
        let sink = &mut self.sink;
        poll_blocking(&waker, |cx| Pin::new(&mut *sink).poll_flush(cx)).map_err(sink_error)
    }

    fn close(&mut self) -> Result<(), SinkError> {
        let waker = self.waker.get();
        let sink = &mut self.sink;
        poll_blocking(&waker, |cx| Pin::new(&mut *sink).poll_close(cx)).map_err(sink_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, FullPolicy, SubscriberConfig};
    use crate::registry::Registry;
    use crate::Rule;
    use futures::StreamExt;

    #[test]
    fn block_on_drives_a_future_woken_from_another_thread() {
        let (tx, rx) = futures::channel::oneshot::channel();
        let t = std::thread::spawn(move || tx.send(7));
        assert_eq!(block_on(rx), Ok(7));
        t.join().unwrap().unwrap();
    }

    #[test]
    fn a_stream_in_and_a_futures_sink_out() {
        let registry = Registry::new();
        registry.subscribe("a", Rule::parse("rust").unwrap(), None).unwrap();
        // The stream is fed by another thread through a futures channel: messages arrive
        // while the source is pending.
        let (mut feed, messages) = futures::channel::mpsc::channel::<Message>(4);
        let feeder = std::thread::spawn(move || {
            for i in 0..100 {
                let text = if i % 2 == 0 { "rust" } else { "go" };
                block_on(futures::SinkExt::send(&mut feed, Message::new(i.to_string(), text)))
                    .unwrap();
            }
        });
        let (out, deliveries) = futures::channel::mpsc::channel::<Delivery>(2);
        let engine = Engine::builder(registry)
            .attach_with(
                "a",
                FuturesSink::new(out),
                SubscriberConfig::new().policy(FullPolicy::Block),
            )
            .start(StreamSource::new(messages))
            .unwrap();
        let got: Vec<Delivery> = block_on(deliveries.collect());
        feeder.join().unwrap();
        let finished = engine.join();
        let ids: Vec<u64> =
            got.iter().filter_map(|d| d.message()).map(|m| m.id.parse().unwrap()).collect();
        assert_eq!(ids, (0..100).step_by(2).collect::<Vec<_>>());
        assert!(matches!(got.last(), Some(Delivery::Disconnect { code, .. }) if code.0 == 5));
        assert_eq!(finished.stats.received, 100);
    }
}
