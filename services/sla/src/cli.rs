//! The command line of the service binary: its flags and how they become a running service.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "goose-sla", version, about = "Golden Goose sla service")]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// Seconds between evaluations of every SLO (alerts, violations, incidents).
    #[arg(long, env = "GOOSE_SLA_EVALUATE_EVERY", default_value_t = 30)]
    evaluate_every: u64,
    #[command(flatten)]
    prometheus: crate::remote_write::MappingArgs,
    /// The chain watch's keys: with --log-vkey the service verifies the chain as it grows,
    /// opens an `evidence_integrity` incident when it does not verify or a checkpoint row was
    /// not signed by the log key, and states what it verified in compliance reports.
    #[command(flatten)]
    chain: goose_platform::chain_watch::ChainArgs,
    /// Listen for raw samples on NATS `<prefix>.<service>` (the bus's server and user);
    /// `--telemetry=false` turns it off.
    #[arg(long, env = "GOOSE_SLA_TELEMETRY", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    telemetry: bool,
    #[arg(long, env = "GOOSE_SLA_TELEMETRY_PREFIX", default_value = goose_domain::sla::telemetry::SUBJECT_PREFIX)]
    telemetry_prefix: String,
    /// Seconds between recordings of closed telemetry minutes.
    #[arg(long, env = "GOOSE_SLA_TELEMETRY_FLUSH_EVERY", default_value_t = 10)]
    telemetry_flush_every: u64,
    /// Seconds a minute stays open for late samples after it ends.
    #[arg(long, env = "GOOSE_SLA_TELEMETRY_GRACE", default_value_t = 30)]
    telemetry_grace: u64,
    /// Refused requests (403s) of one user within --refusal-burst-window seconds that open an
    /// `unauthorized_access` incident.
    #[arg(long, env = "GOOSE_SLA_REFUSAL_BURST_THRESHOLD", default_value_t = 20)]
    refusal_burst_threshold: usize,
    #[arg(long, env = "GOOSE_SLA_REFUSAL_BURST_WINDOW", default_value_t = 60)]
    refusal_burst_window: u64,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::SlaConfig {
        evaluate_every: std::time::Duration::from_secs(cli.evaluate_every.max(1)),
        prometheus: cli.prometheus.into(),
        telemetry: None,
        refusals: Default::default(),
        chain: cli.chain.trust()?,
    };
    let platform_config = cli.service.platform_config("goose-sla")?;
    let telemetry = match (&platform_config.bus, cli.telemetry) {
        (
            goose_platform::BusChoice::Nats {
                url, credentials, ..
            },
            true,
        ) => Some(crate::telemetry::TelemetryConfig {
            nats_url: url.clone(),
            credentials: credentials
                .as_ref()
                .map(|c| (c.user.clone(), c.password.clone())),
            subject_prefix: cli.telemetry_prefix.clone(),
            flush_every: std::time::Duration::from_secs(cli.telemetry_flush_every.max(1)),
            grace: std::time::Duration::from_secs(cli.telemetry_grace),
        }),
        _ => None,
    };
    let refusals = crate::refusals::RefusalConfig {
        threshold: cli.refusal_burst_threshold.max(1),
        window: std::time::Duration::from_secs(cli.refusal_burst_window.max(1)),
        nats: match &platform_config.bus {
            goose_platform::BusChoice::Nats {
                url, credentials, ..
            } => Some((
                url.clone(),
                credentials
                    .as_ref()
                    .map(|c| (c.user.clone(), c.password.clone())),
            )),
            goose_platform::BusChoice::Memory(_) => None,
        },
    };
    let config = crate::SlaConfig {
        telemetry,
        refusals,
        ..config
    };
    goose_platform::run_service("goose-sla", &cli.service, |platform| async move {
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
