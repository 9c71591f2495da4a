//! Emission, in sequence (see `sequence`): a unit's deliveries pushed into the subscriber
//! queues, subscribers scheduled on the dispatchers as the pushes say.

use super::*;

/// As the emitter: pushes a unit's deliveries into the subscriber queues.
pub(super) fn deliver(shared: &Shared, batch: Matched) {
    let mut runs = shared.pool.runs();
    for (sub, item) in batch.routed {
        emit(&sub, item, &mut runs);
    }
    drop(runs);
    if let (Some(stage), Some(b)) = (&shared.stage, batch.stage) {
        stage.send(b);
    }
    unit_emitted(shared, batch.end_position);
}

/// Pushes one match to its subscriber and schedules the subscriber as the push says.
/// Inlined into the routing loop (once per delivery; a call cost the fan-out about 10
/// instructions per delivery once routing and emission sat in separate files).
#[inline]
pub(super) fn emit(sub: &Arc<Subscriber>, item: Queued, runs: &mut Runs<'_>) {
    match sub.push(item, &mut || runs.flush()) {
        Pushed::Nothing => {}
        Pushed::Queued => runs.add(sub),
        Pushed::Handed(item) => runs.add_handed(sub, item),
    }
}

/// A unit's deliveries are all in the subscriber queues.
pub(super) fn unit_emitted(shared: &Shared, end_position: u64) {
    shared.counters.processed.store(end_position, Ordering::SeqCst);
    // Frees room for the source to send another unit.
    let _ = shared.permit_rx.try_recv();
}
