//! cqrs-es aggregates on the ledger: a small aggregate, its given/when/then tests with
//! cqrs-es's TestFramework, and the same aggregate persisted through the ledger.

use crate::support::{self, Fixture};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent, EventStore};
use goose_ledger::cqrs::LedgerEventRepository;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A signing-key registration: registered once, revoked at most once.
#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyRegistration {
    registered: bool,
    revoked: bool,
}

#[derive(Debug)]
enum KeyCommand {
    Register { vkey: String },
    Revoke { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum KeyEvent {
    Registered { vkey: String },
    Revoked { reason: String },
}

impl DomainEvent for KeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "KeyRegistered".into(),
            Self::Revoked { .. } => "KeyRevoked".into(),
        }
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
struct KeyError(String);

impl Aggregate for KeyRegistration {
    const TYPE: &'static str = "key_registration";
    type Command = KeyCommand;
    type Event = KeyEvent;
    type Error = KeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: KeyCommand,
        _: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), KeyError> {
        match command {
            KeyCommand::Register { vkey } => {
                if self.registered {
                    return Err(KeyError("key already registered".into()));
                }
                sink.write(KeyEvent::Registered { vkey }, self).await;
            }
            KeyCommand::Revoke { reason } => {
                if !self.registered {
                    return Err(KeyError("no such key".into()));
                }
                if self.revoked {
                    return Err(KeyError("key already revoked".into()));
                }
                sink.write(KeyEvent::Revoked { reason }, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: KeyEvent) {
        match event {
            KeyEvent::Registered { .. } => self.registered = true,
            KeyEvent::Revoked { .. } => self.revoked = true,
        }
    }
}

#[test]
fn register_then_revoke() {
    TestFramework::<KeyRegistration>::with(())
        .given(vec![KeyEvent::Registered { vkey: "k".into() }])
        .when(KeyCommand::Revoke {
            reason: "rotated".into(),
        })
        .then_expect_events(vec![KeyEvent::Revoked {
            reason: "rotated".into(),
        }]);
}

#[test]
fn cannot_revoke_twice_or_an_unknown_key() {
    TestFramework::<KeyRegistration>::with(())
        .given(vec![
            KeyEvent::Registered { vkey: "k".into() },
            KeyEvent::Revoked { reason: "x".into() },
        ])
        .when(KeyCommand::Revoke { reason: "y".into() })
        .then_expect_error_message("key already revoked");
    TestFramework::<KeyRegistration>::with(())
        .given_no_previous_events()
        .when(KeyCommand::Revoke { reason: "y".into() })
        .then_expect_error(KeyError("no such key".into()));
}

async fn through_the_ledger(f: Fixture) {
    let store = PersistedEventStore::<_, KeyRegistration>::new_event_store(
        LedgerEventRepository::new(f.ledger.clone()),
    );
    let cqrs = CqrsFramework::new(store, vec![], ());
    let meta = HashMap::from([("actor".to_owned(), "alice".to_owned())]);
    cqrs.execute_with_metadata(
        "k1",
        KeyCommand::Register { vkey: "abc".into() },
        meta.clone(),
    )
    .await
    .unwrap();
    cqrs.execute_with_metadata(
        "k1",
        KeyCommand::Revoke {
            reason: "rotated".into(),
        },
        meta.clone(),
    )
    .await
    .unwrap();
    let err = cqrs
        .execute(
            "k1",
            KeyCommand::Revoke {
                reason: "again".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AggregateError::UserError(_)), "{err}");

    let events = f.ledger.read_all(0, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, "KeyRegistered");
    assert_eq!(events[0].metadata.actor, "alice");
    assert_eq!(events[1].version, 2);
    // The same events, loaded back through cqrs-es.
    let store = PersistedEventStore::<_, KeyRegistration>::new_event_store(
        LedgerEventRepository::new(f.ledger.clone()),
    );
    let mut ctx = store.load_aggregate("k1").await.unwrap();
    assert!(cqrs_es::AggregateContext::aggregate(&mut ctx).revoked);
    assert_eq!(f.verify().await.unwrap().events, 2);
}

#[tokio::test]
async fn cqrs_es_on_postgres() {
    through_the_ledger(support::postgres().await).await
}

#[tokio::test]
async fn cqrs_es_on_sqlite() {
    through_the_ledger(support::sqlite().await).await
}
