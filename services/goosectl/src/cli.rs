//! The command line.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "goosectl",
    version,
    about = "Golden Goose: promotions you can prove"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub api: Api,
    #[command(subcommand)]
    pub command: Command,
}

/// Which ledger a command works on: a PostgreSQL database, or the embedded one in a data dir.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// PostgreSQL URL of the ledger (instead of the embedded one in --data-dir).
    #[arg(long, global = true, env = "GOOSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Data directory of `goosectl dev` (embedded ledger and keys).
    #[arg(long, global = true, env = "GOOSE_DATA_DIR", default_value = ".goose")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Golden Goose in one process on the embedded ledger (no external servers needed).
    Dev(DevArgs),
    /// Verify the whole log: digests, chain links, Merkle nodes, commit seals, checkpoints
    /// (exit 0 verified, 1 tampered, 2 could not verify, 3 junk checkpoint rows, 4 no checkpoint).
    Verify(VerifyArgs),
    /// Check that a newer checkpoint extends an older one (a consistency proof from the log).
    VerifyConsistency(VerifyConsistencyArgs),
    /// Run a witness (c2sp.org/tlog-witness): cosigns checkpoints that extend what it has seen.
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
    /// Database administration.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Sign a checkpoint of the log now, offer it to the witnesses, store it and print it.
    Checkpoint(CheckpointArgs),
    /// Print the AsyncAPI 3 document of the events on the bus (or docs/events.md).
    Asyncapi {
        /// Render docs/events.md instead of the JSON document.
        #[arg(long)]
        markdown: bool,
        /// The deployment's subject prefix.
        #[arg(long, env = "GOOSE_NATS_SUBJECT_PREFIX", default_value = "goose.evt")]
        subject_prefix: String,
    },
    /// Print the metric catalog as markdown (docs/metrics.md).
    Metrics,
    /// Write the Grafana dashboards (deploy/grafana/dashboards) into a directory.
    Dashboards {
        /// The directory to write the dashboard JSON files into.
        #[arg(long, default_value = "deploy/grafana/dashboards")]
        out: std::path::PathBuf,
    },
    /// Print the nats-server authorization block: one user per service, publishing only its
    /// own event subjects (deploy/nats/goose-authorization.conf for the defaults).
    NatsConfig {
        /// The deployment's JetStream stream.
        #[arg(long, env = "GOOSE_NATS_STREAM", default_value = "GOOSE_EVENTS")]
        stream: String,
        /// The deployment's subject prefix.
        #[arg(long, env = "GOOSE_NATS_SUBJECT_PREFIX", default_value = "goose.evt")]
        subject_prefix: String,
    },
    /// Service level objectives (OpenSLO) and their status.
    Sla {
        #[command(subcommand)]
        command: crate::sla::SlaCommand,
    },
    /// Incidents: list, show, report, and their lifecycle.
    Incident {
        #[command(subcommand)]
        command: crate::sla::IncidentCommand,
    },
    /// Compliance reports: issue one for a period (signed, recorded on the chain), list,
    /// show, verify a bundle offline.
    Report(crate::report::ReportArgs),
    /// Run a read-only SQL query over the ledger's analytics tables and KPI views.
    Query(crate::analytics::QueryArgs),
    /// Show a KPI (DORA, promotion outcomes, gate failures, ...); without a name, list them.
    Kpi(crate::analytics::KpiArgs),
    /// The graphics adapters the analytics service found and the one it offloads aggregates to.
    Hardware {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// ML models: register versions, deploy through gates and approvals, roll back, history.
    Model {
        #[command(subcommand)]
        command: crate::model::ModelCommand,
    },
    /// Use cases: draft, submit, approve or reject, deploy on production models, deprecate.
    Usecase {
        #[command(subcommand)]
        command: crate::usecase::UseCaseCommand,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write an offline proof (C2SP tlog-proof) that an event is in the log.
    Proof(ProofArgs),
    /// Check an offline proof file with only the log's public key; no database needed.
    VerifyProof(VerifyProofArgs),
    /// Exchange an API key for an access token and print it (for GOOSE_TOKEN).
    Token(TokenArgs),
    /// Sign in through the organisation's OpenID provider (browser, authorization code +
    /// PKCE; or a CI job's OIDC token) and print an access token (for GOOSE_TOKEN).
    Login(LoginArgs),
    /// The service catalog.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Print the dependency graph.
    Graph(GraphArgs),
    /// Kubernetes: the kustomize tree of k8s/ (base, overlays dev and prod).
    K8s {
        #[command(subcommand)]
        command: crate::k8s::K8sCommand,
    },
    /// SRE runbooks (deploy/runbooks): run one against the live system; the run is recorded.
    Runbook {
        #[command(subcommand)]
        command: crate::runbook::RunbookCommand,
    },
    /// The service mesh: Istio authorization from the dependency graph.
    Mesh {
        #[command(subcommand)]
        command: crate::mesh::MeshCommand,
    },
    /// Evidence files.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Users and roles.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Approval requests.
    Approval {
        #[command(subcommand)]
        command: ApprovalCommand,
    },
    /// Request the promotion of a service version to compliant (seed 001 §5.2).
    Promote(PromoteArgs),
    /// Promotions: status, approve, reject, explain.
    Promotion {
        #[command(subcommand)]
        command: PromotionCommand,
    },
    /// Golden Goose packages: create, promote, show, export, verify.
    Package {
        #[command(subcommand)]
        command: PackageCommand,
    },
    /// Break-glass administration on the ledger itself (needs the database and the keys).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Audit exports: verify one offline.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Compliance state of service versions.
    Compliance {
        #[arg(long)]
        service: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    pub service: String,
    #[arg(long)]
    pub version: String,
    /// Evidence ids (or blob digests) to consider instead of the newest of each kind.
    #[arg(long = "evidence-ref")]
    pub evidence_refs: Vec<String>,
    /// A service that must be compliant first, besides the catalog's dependencies.
    #[arg(long = "requires")]
    pub required: Vec<String>,
    /// low, medium, high or critical (default: the policy's).
    #[arg(long)]
    pub impact: Option<String>,
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Follow the promotion, printing each step, until it ends (exit 1 unless it succeeded).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum PromotionCommand {
    /// Where a promotion stands (--watch: follow it, printing each step, until it ends).
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
    },
    /// Grant the promotion's approval request (as an approver other than the requester).
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject the promotion's approval request.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Every decision of the promotion with the facts it read.
    Explain { id: String },
    /// Write the promotion's audit record in the seed's layouts (§3.4 per promotion, §3.1
    /// per service): request, validation (every gate with the facts it cites), outcome,
    /// approval and, per promoted target, its signed verification summary; each file beside
    /// the tlog-proofs of the facts it states, with the signed index. Needs audit.read.
    Export {
        id: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Seconds to wait for a checkpoint that covers the newest stated fact.
        #[arg(long, default_value_t = 120)]
        wait_checkpoint: u64,
    },
    /// List promotions.
    List,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Create a package of service versions (`name` at --version, or `name@version`).
    Create {
        #[arg(long)]
        version: String,
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Promote every member in dependency order.
    Promote {
        id: String,
        #[arg(long)]
        impact: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        /// Follow the promotion until it ends (exit 1 unless it succeeded).
        #[arg(long)]
        wait: bool,
    },
    Show {
        id: String,
    },
    /// Write the signed manifest with an offline proof of every fact it cites.
    Export {
        id: String,
        #[arg(long)]
        out: PathBuf,
        /// Seconds to wait for a checkpoint that covers the newest cited event.
        #[arg(long, default_value_t = 120)]
        wait_checkpoint: u64,
    },
    /// Check an export offline: the manifest's signature and every proof.
    Verify {
        dir: PathBuf,
        /// The log's verifier key (vkey), or @FILE.
        #[arg(long)]
        log_key: String,
        /// The orchestrator's verifier key (vkey), or @FILE. Default: the export's signer.vkey.
        #[arg(long)]
        signer_key: Option<String>,
    },
}

/// Where the APIs are and who is calling.
#[derive(Debug, Clone, Args)]
pub struct Api {
    /// Base URL of Golden Goose (`goosectl dev` serves everything on one).
    #[arg(
        long,
        global = true,
        env = "GOOSE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// rbac's URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_RBAC_URL")]
    pub rbac_url: Option<String>,
    /// registry's URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// evidence's URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_EVIDENCE_URL")]
    pub evidence_url: Option<String>,
    /// orchestrator's URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_ORCHESTRATOR_URL")]
    pub orchestrator_url: Option<String>,
    /// sla's URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_SLA_URL")]
    pub sla_url: Option<String>,
    /// analytics' URL, when the services run apart.
    #[arg(long, global = true, env = "GOOSE_ANALYTICS_URL")]
    pub analytics_url: Option<String>,
    /// Access token (see `goosectl token`).
    #[arg(long, global = true, env = "GOOSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The provider to sign in with (when rbac trusts several).
    #[arg(long)]
    pub issuer: Option<String>,
    /// Another public client than the one rbac names for the provider.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Exchange this OIDC token instead of opening a browser (a CI job's token: GitHub
    /// Actions' ACTIONS_ID_TOKEN, GitLab's id_tokens). `-` reads it from stdin.
    #[arg(long, env = "GOOSE_OIDC_TOKEN_FILE")]
    pub id_token_file: Option<PathBuf>,
    /// The loopback port the browser comes back to (0: any free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// How long to wait for the browser, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub user: String,
    /// File holding the API key (`gk_...`).
    #[arg(long)]
    pub api_key_file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Onboard or update services from a file or a directory of files (YAML or JSON; seed
    /// template or Backstage catalog-info). All or nothing, in dependency order.
    Apply {
        #[arg(short = 'f', long = "file")]
        path: PathBuf,
    },
    /// List the catalog.
    List,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// text, dot or json.
    #[arg(long, default_value = "text")]
    pub format: String,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Submit an evidence file about a service version, or (--model) a model version.
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["service", "model"])))]
    Add {
        #[arg(long)]
        service: Option<String>,
        /// A registered model (--version is then its number).
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        version: String,
        /// sarif, junit, lcov, cobertura, cyclonedx, spdx, in-toto, openvex, openapi; for
        /// models also model-metrics (JSON) and model-card (markdown).
        #[arg(long)]
        kind: String,
        file: PathBuf,
    },
    /// List evidence of a service (or of a model, with --model).
    List {
        #[arg(long, conflicts_with = "model")]
        service: Option<String>,
        #[arg(long)]
        model: Option<String>,
    },
    /// Write the service's audit export (seed 001 §3.1 specs, evidence by day, promotions;
    /// §3.4 per promotion), each file beside the tlog-proofs of the facts it states, with the
    /// orchestrator's signed index. Needs audit.read. Check it with `goosectl audit verify`.
    Export {
        #[arg(long)]
        service: String,
        #[arg(long)]
        out: PathBuf,
        /// Seconds to wait for a checkpoint that covers the newest stated fact.
        #[arg(long, default_value_t = 120)]
        wait_checkpoint: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make USER an administrator again, with a new API key, when no administrator is left
    /// (rbac refuses removing the last one, but users can be deactivated or keys lost).
    /// Writes to the ledger directly: it needs the database (--database-url, or the data
    /// dir's embedded ledger — stop `goosectl dev` first), rbac's token key (proof that you
    /// operate the installation) and the service key to seal the events with. Recorded on the
    /// chain as `break-glass:<$USER>`.
    Recover {
        #[arg(long)]
        user: String,
        /// Where to write the new API key (created, mode 0600; must not exist).
        #[arg(long)]
        api_key_file: PathBuf,
        /// rbac's token signing key (default: the data dir's tokens.key).
        #[arg(long)]
        token_key_file: Option<PathBuf>,
        /// The key that seals the events: rbac's service key (default: the data dir's dev key).
        #[arg(long)]
        service_key_file: Option<PathBuf>,
        /// The log's origin (default: the data dir's dev log).
        #[arg(long, env = "GOOSE_LOG_ORIGIN")]
        log_origin: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an audit export offline: the index's signature, every file's digest, no file
    /// the index does not list, every stated fact's tlog-proof against the log's key.
    Verify {
        dir: PathBuf,
        /// The log's verifier key (`goosectl keys show`), or @FILE.
        #[arg(long)]
        log_key: String,
        /// The orchestrator's verifier key, or @FILE (default: the one in the export).
        #[arg(long)]
        signer_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with roles and print a new API key for them.
    Create {
        name: String,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    Grant {
        name: String,
        role: String,
    },
    Revoke {
        name: String,
        role: String,
    },
    /// Deactivate a user: roles and keys go, their tokens are refused at once.
    Deactivate {
        name: String,
    },
    /// Reactivate a deactivated user (with no roles or keys).
    Reactivate {
        name: String,
    },
    /// Set a user's teams (replacing them; none clears). An SSO user's teams follow the
    /// provider's groups at their next sign-in.
    Teams {
        name: String,
        teams: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Raise a request.
    Request {
        /// promotion, model_deployment or use_case.
        #[arg(long, default_value = "promotion")]
        kind: String,
        #[arg(long)]
        subject: String,
        /// low, medium, high or critical.
        #[arg(long, default_value = "medium")]
        impact: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Grant {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    Show {
        id: String,
    },
    List,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds between periodic checkpoints (signed only when the log grew).
    #[arg(long, default_value_t = 60)]
    pub checkpoint_interval: u64,
    /// The promotion policy (default: the shipped policies/promotion_gates.yaml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// A witness to offer every checkpoint to: `<cosigner vkey>@<URL>` (see `goosectl witness`).
    /// Repeatable.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
    /// How many witnesses must cosign before the orchestrator relies on a checkpoint.
    #[arg(long, default_value_t = 0)]
    pub witness_threshold: usize,
    /// Keep evidence files in an S3 bucket with Object Lock, `s3://BUCKET[/PREFIX]` (endpoint,
    /// region, credentials from the `AWS_*` variables), instead of the data dir's `blobs/`.
    #[arg(long, env = "GOOSE_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// Trust an OpenID provider for sign-in (`goosectl login`), as `goose-rbac
    /// --identity-config` (docs/identity.md).
    #[arg(long, env = "GOOSE_IDENTITY_CONFIG")]
    pub identity_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's verifier key (vkey), or @FILE holding it. Default: derived from the data dir's log key.
    #[arg(long)]
    pub log_key: Option<String>,
    /// File of service verifier keys, one vkey per line. Default: the data dir's keys.
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Checkpoints a client trusts besides the database.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// A checkpoint (signed note) obtained elsewhere — a witness, a checkpoint directory, an
    /// earlier run. The log must match it. Repeatable.
    #[arg(long = "trusted-checkpoint")]
    pub trusted_checkpoints: Vec<PathBuf>,
    /// Where the newest checkpoint seen of each log is remembered
    /// (default: $XDG_CACHE_HOME/goosectl/checkpoints or ~/.cache/goosectl/checkpoints).
    #[arg(long, env = "GOOSE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Remember nothing between runs (overrides --state-dir and GOOSE_STATE_DIR).
    #[arg(long)]
    pub no_state: bool,
}

#[derive(Debug, Args)]
pub struct VerifyConsistencyArgs {
    /// The older checkpoint (signed note file).
    pub old: PathBuf,
    /// The newer checkpoint (signed note file).
    pub new: PathBuf,
    /// The log's verifier key (vkey), or @FILE. Default: derived from the data dir's log key.
    #[arg(long)]
    pub log_key: Option<String>,
    /// Take the proof from the evidence API (--url / GOOSE_EVIDENCE_URL, with GOOSE_TOKEN)
    /// instead of the database.
    #[arg(long)]
    pub from_api: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Serve POST /add-checkpoint (c2sp.org/tlog-witness) for the logs given.
    Serve(WitnessServeArgs),
    /// Print this witness's cosigner verifier key (give it to the logs' operators).
    Key(WitnessKeyArgs),
}

#[derive(Debug, Args)]
pub struct WitnessKeyArgs {
    /// The witness's private key file; created (mode 0600) if missing.
    #[arg(long, env = "GOOSE_WITNESS_KEY_FILE")]
    pub key_file: PathBuf,
    /// The witness's name (a schema-less URL), used when the key is created.
    #[arg(long, default_value = "witness.goose.example")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct WitnessServeArgs {
    #[command(flatten)]
    pub key: WitnessKeyArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    pub listen: SocketAddr,
    /// Directory where the newest cosigned checkpoint of each log is kept (durably).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// A log to witness: its checkpoint verifier key (the key's name is the origin). Repeatable.
    #[arg(long = "log", required = true)]
    pub logs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Install or upgrade the ledger schema (run once as the tables' owner).
    Migrate,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub key: LogKeyArgs,
    /// Also write it to this directory (write-once files). Default for the embedded ledger:
    /// <data dir>/checkpoints.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// A witness to offer it to: `<cosigner vkey>@<URL>`. Repeatable.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogKeyArgs {
    /// The log's private key file. Default: <data dir>/keys/log.key.
    #[arg(long)]
    pub log_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the log's public key as a C2SP verifier key (vkey).
    Show(LogKeyArgs),
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The event's id.
    pub event_id: uuid::Uuid,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The log's verifier key (vkey or @FILE): the proof is against the newest checkpoint it
    /// signed. Default: derived from the data dir's log key.
    #[arg(long)]
    pub log_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof file.
    pub file: PathBuf,
    /// The log's verifier key (vkey), or @FILE holding it.
    #[arg(long)]
    pub key: String,
    /// Also check who wrote the event: its commit seal against these service keys (one vkey
    /// per line).
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}
