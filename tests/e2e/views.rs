//! The platform's views: the users directory follows rbac's events; a view restored from a snapshot equals one rebuilt from the whole log, and a snapshot that
//! does not belong to the log (another log, or a rewritten one) is refused.

use goose_domain::rbac::{Role, UserName};
use goose_domain::streams;
use goose_domain::user::{User, UserError, UserEvent};
use goose_ledger::{aggregate, Metadata, NoteKey};
use goose_platform::users::Users;
use goose_platform::view::{RestoreError, ViewHandle};
use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
use std::sync::Arc;

goose_ledger::ledger_aggregate!(UserAgg(User), streams::USER, UserEvent);

async fn platform(dir: &std::path::Path) -> Platform {
    Platform::start(PlatformConfig {
        storage: Storage::Sqlite(dir.join("ledger.db")),
        bus: BusChoice::Memory(Default::default()),
        service_key: Arc::new(NoteKey::generate("snapshot.test/log").unwrap()),
        token_keys: Vec::new(),
        relay: goose_platform::Relay::All,
        log_origin: "snapshot.test/log".into(),
        service_name: None,
        snapshot_dir: None,
    })
    .await
    .unwrap()
}

async fn create(p: &Platform, name: &str, role: Role) {
    let user = UserName::parse(name).unwrap();
    aggregate::execute::<UserAgg, UserError>(&p.ledger, name, &Metadata::now("test"), |u| {
        u.0.create_with_roles(user.clone(), name, &[role], "test")
    })
    .await
    .unwrap();
}

async fn caught_up(p: &Platform, v: &ViewHandle<Users>) {
    v.wait_applied(p.ledger.size().await.unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_views_continue_where_the_snapshot_ends() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path()).await;
    create(&p, "ada", Role::Approver).await;
    create(&p, "bob", Role::Operator).await;
    let view = ViewHandle::<Users>::start(&p).await.unwrap();
    caught_up(&p, &view).await;
    let snap = view.snapshot(&p).await.unwrap();
    assert_eq!(snap.next, p.ledger.size().await.unwrap());
    // Through JSON, as a replica would read it from storage.
    let text = serde_json::to_string(&snap).unwrap();

    create(&p, "cy", Role::Auditor).await;
    let restored = ViewHandle::<Users>::restore(&p, serde_json::from_str(&text).unwrap())
        .await
        .unwrap();
    caught_up(&p, &restored).await;
    let fresh = ViewHandle::<Users>::start(&p).await.unwrap();
    caught_up(&p, &fresh).await;
    assert_eq!(restored.read().names(), fresh.read().names());
    assert_eq!(restored.read().roles_of("cy"), Some(vec![Role::Auditor]));
    assert_eq!(restored.read().roles_of("ada"), Some(vec![Role::Approver]));

    // Another log's snapshot (a different digest at the same position) is refused...
    let mut forged = snap.clone();
    forged.last_digest = Some("00".repeat(32));
    assert!(matches!(
        ViewHandle::<Users>::restore(&p, forged).await,
        Err(RestoreError::Mismatch { .. })
    ));
    // ...and so is one from the future of this log.
    let mut ahead = snap;
    ahead.next += 100;
    assert!(matches!(
        ViewHandle::<Users>::restore(&p, ahead).await,
        Err(RestoreError::Ahead { .. })
    ));
    p.shutdown().await;
}

#[test]
fn the_users_view_follows_roles_assignments_revocations_and_deactivation() {
    let mut u = Users::default();
    let by = || "admin".to_owned();
    assert_eq!(u.roles_of("ada"), None);
    u.apply_event(
        "ada",
        &UserEvent::RoleAssigned {
            role: Role::Approver,
            assigned_by: by(),
        },
    );
    u.apply_event(
        "ada",
        &UserEvent::RoleAssigned {
            role: Role::Auditor,
            assigned_by: by(),
        },
    );
    u.apply_event(
        "ada",
        &UserEvent::RoleRevoked {
            role: Role::Approver,
            revoked_by: by(),
        },
    );
    assert_eq!(u.roles_of("ada"), Some(vec![Role::Auditor]));
    assert_eq!(u.names(), vec!["ada".to_owned()]);
    u.apply_event(
        "ada",
        &UserEvent::UserDeactivated {
            deactivated_by: by(),
        },
    );
    assert_eq!(u.roles_of("ada"), None, "a deactivated user holds nothing");
}
