//! The in-process bus for `goosectl dev`: the same contract as JetStream (ordered, durable
//! consumer names, explicit acks, redelivery of what was not acknowledged) within one process.

use crate::{check_consumer_name, Acker, Bus, Delivery, Result, Subscription};
use goose_ledger::RecordedEvent;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Default)]
struct State {
    log: Vec<RecordedEvent>,
    ids: HashSet<Uuid>,
    consumers: HashMap<String, Arc<Mutex<ConsumerState>>>,
}

/// Per durable consumer: everything below `acked_below` is acknowledged; `acked` holds acks
/// above it; `delivered` is the next index handed out.
#[derive(Default)]
struct ConsumerState {
    acked_below: usize,
    acked: BTreeSet<usize>,
    delivered: usize,
}

impl ConsumerState {
    fn ack(&mut self, index: usize) {
        self.acked.insert(index);
        loop {
            let below = self.acked_below;
            if !self.acked.remove(&below) {
                break;
            }
            self.acked_below += 1;
        }
    }
}

/// The in-process bus.
#[derive(Clone, Default)]
pub struct MemoryBus {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus").finish_non_exhaustive()
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<()> {
        let mut s = self.lock();
        for ev in events {
            // Deduplicate by event id, as JetStream does with Nats-Msg-Id.
            if s.ids.insert(ev.event_id) {
                s.log.push(ev.clone());
            }
        }
        drop(s);
        self.notify.notify_waiters();
        Ok(())
    }

    async fn subscribe(
        &self,
        name: &str,
        aggregate_type: Option<&str>,
    ) -> Result<Box<dyn Subscription>> {
        check_consumer_name(name)?;
        let consumer = self
            .lock()
            .consumers
            .entry(name.to_owned())
            .or_default()
            .clone();
        {
            // A new subscription starts again from the first unacknowledged message.
            let mut c = consumer.lock();
            c.delivered = c.acked_below;
        }
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            consumer,
            aggregate_type: aggregate_type.map(str::to_owned),
        }))
    }

    async fn subscribe_live(&self, aggregate_type: Option<&str>) -> Result<Box<dyn Subscription>> {
        let end = self.lock().log.len();
        let consumer = Arc::new(Mutex::new(ConsumerState {
            acked_below: end,
            acked: BTreeSet::new(),
            delivered: end,
        }));
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            consumer,
            aggregate_type: aggregate_type.map(str::to_owned),
        }))
    }
}

struct MemorySubscription {
    bus: MemoryBus,
    consumer: Arc<Mutex<ConsumerState>>,
    aggregate_type: Option<String>,
}

/// Acknowledges one in-process delivery.
pub(crate) struct MemoryAck {
    consumer: Arc<Mutex<ConsumerState>>,
    index: usize,
}

impl MemoryAck {
    pub(crate) fn ack(self) {
        let mut c = self.consumer.lock();
        c.ack(self.index);
    }
}

#[async_trait::async_trait]
impl Subscription for MemorySubscription {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.bus.notify.notified();
            let out = {
                let state = self.bus.lock();
                let mut c = self.consumer.lock();
                let mut out = Vec::new();
                while c.delivered < state.log.len() && out.len() < max {
                    let index = c.delivered;
                    c.delivered += 1;
                    let ev = &state.log[index];
                    let wanted = self
                        .aggregate_type
                        .as_deref()
                        .is_none_or(|t| ev.stream.aggregate_type() == t);
                    if wanted {
                        out.push(Delivery {
                            trace_context: crate::trace_context_of(ev),
                            event: ev.clone(),
                            acker: Acker::Memory(MemoryAck {
                                consumer: self.consumer.clone(),
                                index,
                            }),
                        });
                    } else {
                        // Not ours: acknowledged implicitly, as a filtered JetStream consumer
                        // never sees it.
                        c.ack(index);
                    }
                }
                out
            };
            if !out.is_empty() {
                return Ok(out);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}
