//! rbac's writes: every command loads its aggregate, lets the domain decide, appends the
//! events, and waits for the read model to show them (read-your-writes).

use crate::api::UserView;
use crate::views::{Approvals, Users};
use crate::{AppState, Bootstrap};
use base64::Engine as _;
use goose_domain::approval::{ApprovalEvent, ApprovalRequest, Refusal};
use goose_domain::errors::Classified;
use goose_domain::rbac::UserName;
use goose_domain::user::{User, UserError, UserEvent};
use goose_ledger::aggregate::{self, ExecuteError, Executed};
use goose_ledger::Metadata;
use goose_platform::view::ViewHandle;
use goose_platform::{execute_problem, Platform};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use sha3::{Digest as _, Sha3_256};

goose_ledger::ledger_aggregate!(pub(crate) UserAgg(User), goose_domain::streams::USER, UserEvent);
goose_ledger::ledger_aggregate!(
    pub(crate) ApprovalAgg(ApprovalRequest),
    goose_domain::streams::APPROVAL,
    ApprovalEvent
);

/// Runs a user command as `caller`; the answer is the user after it.
pub(crate) async fn run_user(
    s: &AppState,
    caller: &Caller,
    name: &UserName,
    decide: impl Fn(&User) -> Result<Vec<UserEvent>, UserError>,
) -> Result<UserView, Problem> {
    run_user_as(s, &caller.user, name, decide)
        .await
        .map(|u| UserView::of(&u))
        .map_err(execute_problem)
}

/// Runs a user command recorded with `actor`; the answer is the user after it, once the
/// views that authorize requests show it (read-your-writes).
pub(crate) async fn run_user_as<E: Classified + Send + Sync + 'static>(
    s: &AppState,
    actor: &str,
    name: &UserName,
    decide: impl Fn(&User) -> Result<Vec<UserEvent>, E>,
) -> Result<User, ExecuteError<E>> {
    let meta = Metadata::now(actor.to_owned());
    let done = aggregate::execute::<UserAgg, E>(&s.platform.ledger, name.as_str(), &meta, |u| {
        decide(&u.0)
    })
    .await?;
    s.users.after_write(done.receipt, "rbac user").await;
    // Authorization reads the platform's directory: it must show the change too.
    if let Some(r) = done.receipt {
        goose_platform::log_stale_after_write(
            s.platform.users_caught_up(r.last_position).await,
            "rbac directory",
        );
    }
    Ok(done.state.0)
}

/// Runs an approval command as `caller`.
pub(crate) async fn run_approval(
    platform: &Platform,
    view: &ViewHandle<Approvals>,
    id: &str,
    meta: &Metadata,
    decide: impl Fn(&ApprovalRequest) -> Result<Vec<ApprovalEvent>, Refusal>,
) -> Result<Executed<ApprovalAgg>, ExecuteError<Refusal>> {
    let done =
        aggregate::execute::<ApprovalAgg, Refusal>(&platform.ledger, id, meta, |a| decide(&a.0))
            .await?;
    view.after_write(done.receipt, "rbac approval").await;
    Ok(done)
}

/// Creates the admin with an API key on first start; later starts find it and do nothing.
pub(crate) async fn bootstrap(
    platform: &Platform,
    users: &ViewHandle<Users>,
    b: &Bootstrap,
) -> anyhow::Result<()> {
    let name = UserName::parse(&b.admin)?;
    let (key_id, secret, api_key) = new_api_key();
    let meta = Metadata::now("rbac-bootstrap");
    let result =
        aggregate::execute::<UserAgg, UserError>(&platform.ledger, name.as_str(), &meta, |u| {
            u.0.bootstrap_admin(
                name.clone(),
                &key_id,
                &digest_hex(&secret),
                "rbac-bootstrap",
            )
        })
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping the admin: {e}"))?;
    if let Some(receipt) = result.receipt {
        if let Some(dir) = b.key_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_secret_file(&b.key_file, &format!("{api_key}\n"))?;
        users.after_write(Some(receipt), "rbac bootstrap").await;
        goose_platform::log_stale_after_write(
            platform.users_caught_up(receipt.last_position).await,
            "rbac bootstrap",
        );
        tracing::info!(admin = %name, key_file = %b.key_file.display(), "bootstrapped the admin user");
        println!(
            "rbac: created admin user {name}; its API key is in {} — get a token with:\n  goosectl token --user {name} --api-key-file {}",
            b.key_file.display(),
            b.key_file.display()
        );
    }
    Ok(())
}

fn write_secret_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// `gk_<key id>_<secret>`: 8 hex of id, 32 random bytes of secret (base64url).
pub(crate) fn new_api_key() -> (String, String, String) {
    use rand::RngCore as _;
    let mut id = [0u8; 4];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let api_key = format!("gk_{key_id}_{secret}");
    (key_id, secret, api_key)
}

/// Hex SHA3-256 of an API key's secret (only the digest is stored).
pub(crate) fn digest_hex(secret: &str) -> String {
    hex::encode(Sha3_256::digest(secret.as_bytes()))
}

/// Break-glass (`goosectl admin recover`): makes `name` an administrator again with a new API
/// key, appended to the ledger directly by someone holding the database and the service's key
/// — recorded as events like any other, with `actor` (`break-glass:<who>`). Returns the API key
/// and the position of the last event.
pub async fn recover_admin(
    ledger: &goose_ledger::Ledger,
    name: &str,
    actor: &str,
) -> anyhow::Result<(String, u64)> {
    let name = UserName::parse(name)?;
    let (key_id, secret, api_key) = new_api_key();
    let digest = digest_hex(&secret);
    let meta = Metadata::now(actor);
    let done = aggregate::execute::<UserAgg, UserError>(ledger, name.as_str(), &meta, |u| {
        u.0.recover_admin(name.clone(), &key_id, &digest, actor)
    })
    .await
    .map_err(|e| anyhow::anyhow!("recovering {name}: {e}"))?;
    let position = done.receipt.map_or(0, |r| r.last_position);
    Ok((api_key, position))
}

/// Writes an API key to a new file readable by its owner only.
pub fn write_key_file(path: &std::path::Path, api_key: &str) -> std::io::Result<()> {
    write_secret_file(path, &format!("{api_key}\n"))
}
