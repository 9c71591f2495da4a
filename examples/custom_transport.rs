//! Plugging the streaming engine into your own transport: a `Source` over a log with offsets
//! and commits (at-least-once: offsets are committed only once every delivery they caused
//! has been handed to its sink), and a `Sink` that frames deliveries for a connection.
//!
//! Run with `cargo run --example custom_transport`.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use streamtrack::engine::{
    Delivery, Engine, FullPolicy, Sink, SinkError, Source, SourceError, SourceStatus,
    SubscriberConfig,
};
use streamtrack::registry::Registry;
use streamtrack::{Message, Rule};

/// A stand-in for a message broker's partition: records at offsets, and a committed offset
/// that a restarted consumer would resume from.
#[derive(Default)]
struct Partition {
    records: Vec<String>,
    committed: u64,
}

/// Reads a partition from its committed offset.
struct PartitionSource {
    partition: Arc<Mutex<Partition>>,
    /// The next offset to read.
    next: u64,
    /// The offset of every message handed to the engine and not yet acknowledged.
    in_flight: VecDeque<u64>,
    /// How many messages were handed to the engine in total.
    returned: u64,
}

impl PartitionSource {
    fn new(partition: Arc<Mutex<Partition>>) -> Self {
        let next = partition.lock().map(|p| p.committed).unwrap_or(0);
        PartitionSource { partition, next, in_flight: VecDeque::new(), returned: 0 }
    }
}

impl Source for PartitionSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        let partition = self.partition.lock().map_err(|_| SourceError::fatal("poisoned"))?;
        while out.len() < max {
            let Some(text) = partition.records.get(self.next as usize) else {
                // A real consumer would wait for more; this log is finite.
                return Ok(SourceStatus::Ended);
            };
            if text.is_empty() {
                // A record we cannot use: report it (counted, logged) and read on.
                self.next += 1;
                return Err(SourceError::malformed(Some(self.next), "empty record"));
            }
            out.push(Message::new(self.next.to_string(), text.clone()));
            self.in_flight.push_back(self.next);
            self.next += 1;
            self.returned += 1;
        }
        Ok(SourceStatus::Open)
    }

    fn ack(&mut self, processed: u64) {
        // Messages `0..processed` (in the order returned) are fully handled.
        let first_in_flight = self.returned - self.in_flight.len() as u64;
        let mut commit = None;
        for _ in first_in_flight..processed {
            commit = self.in_flight.pop_front();
        }
        if let (Some(offset), Ok(mut p)) = (commit, self.partition.lock()) {
            p.committed = offset + 1;
        }
    }
}

/// Frames each delivery as `<length> <json>\n` on a connection (here any `Write`).
struct FramedSink<W: Write + Send> {
    conn: W,
}

impl<W: Write + Send> Sink for FramedSink<W> {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        let body = delivery.to_json_line();
        writeln!(self.conn, "{} {body}", body.len())?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.conn.flush()?)
    }
}

/// A connection that collects what is written (a socket in real life).
#[derive(Clone, Default)]
struct Connection(Arc<Mutex<Vec<u8>>>);

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let partition = Arc::new(Mutex::new(Partition {
        records: vec![
            "Rust 1.0 is out".into(),
            "the weather is nice".into(),
            String::new(),
            "learning rust and go".into(),
            "Go is simple".into(),
        ],
        committed: 0,
    }));

    let registry = Registry::new();
    registry.subscribe("alice", Rule::parse("rust")?, Some("rust".into()))?;
    registry.subscribe("bob", Rule::parse("go OR golang")?, None)?;

    let (alice, bob) = (Connection::default(), Connection::default());
    let lossless = SubscriberConfig::new().policy(FullPolicy::Block);
    let finished = Engine::builder(registry)
        .on_event(|event| eprintln!("event: {event}"))
        .attach_with("alice", FramedSink { conn: alice.clone() }, lossless.clone())
        .attach_with("bob", FramedSink { conn: bob.clone() }, lossless)
        .start(PartitionSource::new(partition.clone()))?
        .join();

    for (name, conn) in [("alice", &alice), ("bob", &bob)] {
        println!("--- {name}'s connection");
        let bytes = conn.0.lock().map_err(|_| "poisoned")?;
        print!("{}", String::from_utf8_lossy(&bytes));
    }
    let committed = partition.lock().map_err(|_| "poisoned")?.committed;
    println!("--- committed offset: {committed} (of 5 records)");
    println!(
        "--- {} messages read, {} malformed, {} deliveries, {} dropped",
        finished.stats.received,
        finished.stats.malformed,
        finished.stats.delivered,
        finished.stats.dropped
    );
    assert_eq!(committed, 5);
    Ok(())
}
