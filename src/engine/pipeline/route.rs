//! Routing (the matcher threads): a unit's messages matched against the registry's
//! snapshot, each match turned into one delivery per subscriber.

use super::*;

/// A matcher thread's view of where each subscriber name goes, keyed by the address of the
/// registry's shared name (`Arc<str>`), which the cache keeps alive so it cannot be reused.
#[derive(Default)]
pub(super) struct Routes {
    pub(super) version: u64,
    /// The registry's slot epoch the hints are for (see `Snapshot::slot_epoch`).
    pub(super) epoch: u64,
    /// By the registry's subscriber slot: its index in `slots` plus one (0: not seen). An
    /// array index instead of a hash probe per matching rule, valid while the slot epoch
    /// stays (a large fan-out's rules come in slot order, so these reads stream).
    pub(super) hint: Vec<usize>,
    pub(super) by_ptr: HashMap<usize, usize, BuildPtrHasher>,
    pub(super) slots: Vec<Slot>,
    pub(super) by_sub: HashMap<u64, usize>,
    pub(super) keep: Vec<Arc<str>>,
}

pub(super) struct Slot {
    pub(super) sub: Option<Arc<Subscriber>>,
    /// The message this slot last got a delivery for, and its index in the unit's output.
    pub(super) stamp: u64,
    pub(super) group: usize,
}

/// Pointer keys are already well spread after a multiply.
#[derive(Default, Clone, Copy)]
pub(super) struct BuildPtrHasher;

#[derive(Default)]
pub(super) struct PtrHasher(u64);

impl std::hash::Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

impl std::hash::BuildHasher for BuildPtrHasher {
    type Hasher = PtrHasher;
    fn build_hasher(&self) -> PtrHasher {
        PtrHasher(0)
    }
}

impl Routes {
    pub(super) fn refresh(&mut self, shared: &Shared, epoch: u64) {
        if epoch != self.epoch {
            // A slot passed to another subscriber: the hints are stale, the routes by name
            // are not.
            self.epoch = epoch;
            self.hint.clear();
        }
        let v = shared.version.load(Ordering::SeqCst);
        if v != self.version || self.keep.len() > 1 << 20 {
            self.version = v;
            self.hint.clear();
            self.by_ptr.clear();
            self.slots.clear();
            self.by_sub.clear();
            self.keep.clear();
        }
    }

    pub(super) fn slot(&mut self, shared: &Shared, rule: &Routed<'_>) -> usize {
        let hint = rule.key.slot as usize;
        match self.hint.get(hint) {
            Some(&i) if i > 0 => return i - 1,
            _ => {}
        }
        let name = &rule.info.subscriber;
        let key = Arc::as_ptr(name) as *const u8 as usize;
        if let Some(&i) = self.by_ptr.get(&key) {
            self.set_hint(hint, i);
            return i;
        }
        let sub = {
            let t = unpoison(shared.table.read());
            t.by_name.get(name).cloned()
        };
        let i = match &sub {
            Some(s) => *self.by_sub.entry(s.id).or_insert_with(|| {
                self.slots.push(Slot { sub: sub.clone(), stamp: 0, group: 0 });
                self.slots.len() - 1
            }),
            None => {
                self.slots.push(Slot { sub: None, stamp: 0, group: 0 });
                self.slots.len() - 1
            }
        };
        self.by_ptr.insert(key, i);
        self.keep.push(name.clone());
        self.set_hint(hint, i);
        i
    }

    pub(super) fn set_hint(&mut self, hint: usize, i: usize) {
        if hint >= self.hint.len() {
            self.hint.resize(hint + 1, 0);
        }
        self.hint[hint] = i + 1;
    }
}

/// One subscriber's delivery of a message, as routing collects it: small (16 bytes), so that
/// collecting and then emitting ten thousand of them moves little memory. Its matching
/// rules are the found rule `first` and the list of [`MoreRule`]s from `more`.
pub(super) struct Outgoing {
    /// Index in `Routes::slots`.
    pub(super) route: u32,
    pub(super) first: u32,
    pub(super) more: u32,
    pub(super) last: u32,
}

/// A further matching rule of a subscriber's delivery (index in the found rules) and the
/// next one ([`NONE`]: none).
pub(super) struct MoreRule {
    pub(super) found: u32,
    pub(super) next: u32,
}

pub(super) const NONE: u32 = u32::MAX;

impl Outgoing {
    /// The matching rules, ascending by id as found. A rule's record is read only for a
    /// tag.
    pub(super) fn rules(&self, found: &[Routed<'_>], more: &[MoreRule]) -> MatchingRules {
        let rule = |f: u32| {
            let r = &found[f as usize];
            MatchingRule::new(r.key.id, if r.key.tagged { r.info.tag.clone() } else { None })
        };
        let mut rules: MatchingRules = rule(self.first).into();
        let mut next = self.more;
        while next != NONE {
            let m = &more[next as usize];
            rules.push(rule(m.found));
            next = m.next;
        }
        rules
    }
}

pub(super) fn matcher(shared: &Arc<Shared>) {
    let mut scratch = Scratch::new();
    let mut routes = Routes::default();
    let mut stamp = 0u64;
    let mut found_capacity = 0;
    // The analytics batch of the last unit, messages and rules: the next one is sized alike
    // (grown from empty, it was reallocated ~5 times a unit, and freed by the stage's thread).
    let mut stage_sizes = (0, 0);
    // One message's deliveries, one per subscriber, and the further rules of subscribers
    // with more than one (see `Outgoing`).
    let mut local: Vec<Outgoing> = Vec::new();
    let mut more_rules: Vec<MoreRule> = Vec::new();
    let mut batch = Vec::new();
    let mut work = Unit { seq: 0, first_position: 0, messages: Vec::new(), snapshot: None };
    loop {
        shared.stand_by();
        if !shared.read_unit(&mut batch, &mut work) {
            if let Some(recent) = &shared.recent {
                // Units after a backfill's wait in the reorder buffer for it: they are
                // emitted before this thread counts as done (the end of the stream then
                // closes the subscribers).
                recent.await_backfills();
            }
            break;
        }
        // The snapshot is taken after the source handed the messages over, so a rule whose
        // subscribe returned before that applies to them (with the ring of recent messages
        // on, the reader took it with the unit's admission into the ring).
        let snapshot = work.snapshot.take().unwrap_or_else(|| shared.registry.snapshot());
        routes.refresh(shared, snapshot.slot_epoch());
        // When every earlier unit is emitted already (a trickle, or one thread), this thread
        // takes the emitter's role now and pushes each message's deliveries straight into
        // the subscriber queues; otherwise they wait in the reorder buffer for their turn.
        let direct = shared.sequencer.claim(work.seq);
        // A unit smaller than a full batch means the source is not saturated: latency
        // matters more than hand-overs, so each message's subscribers go to the
        // dispatchers at once rather than with the unit's.
        let trickle = direct && work.messages.len() < shared.batch_size;
        let mut runs = shared.pool.runs();
        let mut routed: Vec<(Arc<Subscriber>, Queued)> = Vec::new();
        let mut matched = 0u64;
        let mut unrouted = 0u64;
        // Borrowed from the snapshot: no reference counting per matching rule.
        // Sized as the last unit's, so that a large fan-out does not grow it step by step.
        let mut found: Vec<Routed<'_>> = Vec::with_capacity(found_capacity);
        let mut stage_batch = shared.stage.as_ref().map(|_| StageBatch {
            partial: work.messages.len() < shared.batch_size,
            now_ms: stage::now_ms(),
            messages: Vec::with_capacity(stage_sizes.0),
            rules: Vec::with_capacity(stage_sizes.1),
        });
        for (i, message) in work.messages.iter().enumerate() {
            // The next messages from memory while this one is matched (as `find_each` does).
            crate::matcher::prefetch::ahead(&work.messages, i);
            snapshot.find_routed_into(message, &mut scratch, &mut found);
            if found.is_empty() {
                continue;
            }
            matched += 1;
            stamp += 1;
            let position = work.first_position + i as u64;
            local.clear();
            more_rules.clear();
            // The message's reaction cell, shared by its deliveries and the analytics stage.
            let mut cell = None;
            if let (Some(stage), Some(b)) = (&shared.stage, &mut stage_batch) {
                cell = stage.cell();
                b.rules.extend(found.iter().map(|r| r.key.id));
                b.messages.push(Staged {
                    message: message.clone(),
                    cell: cell.clone(),
                    rules_end: b.rules.len(),
                    arrived_ms: b.now_ms,
                });
            }
            for (f, found_rule) in found.iter().enumerate() {
                let s = routes.slot(shared, found_rule);
                let slot = &mut routes.slots[s];
                if slot.stamp == stamp {
                    // Another rule of a subscriber already in this message's deliveries.
                    if slot.sub.is_some() {
                        let d = &mut local[slot.group];
                        let at = more_rules.len() as u32;
                        more_rules.push(MoreRule { found: f as u32, next: NONE });
                        match d.last {
                            NONE => d.more = at,
                            last => more_rules[last as usize].next = at,
                        }
                        d.last = at;
                    }
                    continue;
                }
                slot.stamp = stamp;
                if slot.sub.is_none() {
                    unrouted += 1;
                    continue;
                }
                slot.group = local.len();
                local.push(Outgoing { route: s as u32, first: f as u32, more: NONE, last: NONE });
            }
            // A message for many subscribers is copied once per `COPY_EVERY` deliveries:
            // dispatchers on different cores then count references on different copies.
            let copies = local.len() >= COPY_ABOVE;
            runs.expect(local.len());
            let mut shared_message = message.clone();
            for (k, d) in local.iter().enumerate() {
                let Some(sub) = &routes.slots[d.route as usize].sub else { continue };
                let mut rules = d.rules(&found, &more_rules);
                if cell.is_some() {
                    rules = rules.with_reaction(cell.clone());
                }
                if copies && k > 0 && k % COPY_EVERY == 0 {
                    shared_message = Arc::new(Message::clone(message));
                }
                let q = Queued { message: shared_message.clone(), rules, position };
                if direct {
                    emit(sub, q, &mut runs);
                } else {
                    routed.push((sub.clone(), q));
                }
            }
            if trickle {
                runs.flush();
            }
        }
        found_capacity = found.capacity();
        if let Some(b) = &stage_batch {
            stage_sizes = (b.messages.len(), b.rules.len());
        }
        drop(found);
        drop(runs);
        let c = &shared.counters;
        if matched > 0 {
            c.matched.fetch_add(matched, Ordering::Relaxed);
        }
        if unrouted > 0 {
            c.unrouted.fetch_add(unrouted, Ordering::Relaxed);
        }
        let prefiltered = scratch.take_prefiltered();
        if prefiltered > 0 {
            c.prefiltered.fetch_add(prefiltered, Ordering::Relaxed);
        }
        let end_position = work.first_position + work.messages.len() as u64;
        let seq = work.seq;
        work.messages.clear();
        if direct {
            if let (Some(stage), Some(b)) = (&shared.stage, stage_batch) {
                stage.send(b);
            }
            unit_emitted(shared, end_position);
            shared.sequencer.release(|b| deliver(shared, b));
        } else {
            let unit = Matched { end_position, routed, stage: stage_batch };
            shared.sequencer.finish(seq, unit, |b| deliver(shared, b));
        }
    }
}
