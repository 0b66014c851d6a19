//! `goosectl`: the CLI verbs and `goosectl dev`, the whole system in one process.

pub use goose_evidence_service::chain_api;
mod analytics;
mod api;
mod audit;
mod bundle;
pub mod cli;
mod commands;
pub mod dashboards;
pub mod dev;
pub mod k8s;
pub mod keyfiles;
mod login;
mod mesh;
mod model;
mod promote;
mod report;
mod runbook;
mod sla;
pub mod trust;
mod usecase;
mod witness;

use cli::{
    AdminCommand, AuditCommand, Cli, Command, DbCommand, EvidenceCommand, KeysCommand,
    ServiceCommand,
};
use std::process::ExitCode;

/// Runs one command. `Ok(code)` carries verdicts (see [`trust::exit`]: a failed verification
/// is exit code 1); `Err` is a usage or I/O problem (exit code 2).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => {
            dev::run(
                dev::DevConfig::from_args(&cli.target, &args),
                goose_runtime::shutdown_signal(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => commands::verify(&cli.target, &args).await,
        Command::VerifyConsistency(args) => {
            commands::verify_consistency(&cli.target, &cli.api, &args).await
        }
        Command::Witness { command } => witness::run(command).await,
        Command::Db {
            command: DbCommand::Migrate,
        } => commands::db_migrate(&cli.target).await,
        Command::Metrics => {
            print!("{}", goose_metrics::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboards { out } => {
            dashboards::write_all(&out)?;
            println!(
                "{} dashboards written to {}",
                dashboards::DASHBOARDS.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Asyncapi {
            markdown,
            subject_prefix,
        } => {
            if markdown {
                print!("{}", goose_platform::asyncapi::markdown(&subject_prefix));
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&goose_platform::asyncapi::document(
                        &subject_prefix
                    ))?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sla { command } => sla::sla(&cli.api, command).await,
        Command::Incident { command } => sla::incident(&cli.api, command).await,
        Command::Report(args) => report::report(&cli.api, args).await,
        Command::Query(args) => analytics::query(&cli.api, &args).await,
        Command::Kpi(args) => analytics::kpi(&cli.api, &args).await,
        Command::Hardware { json } => analytics::hardware(&cli.api, json).await,
        Command::Model { command } => model::model(&cli.api, command).await,
        Command::Usecase { command } => usecase::usecase(&cli.api, command).await,
        Command::NatsConfig {
            stream,
            subject_prefix,
        } => {
            print!(
                "{}",
                goose_platform::nats_auth::authorization(&goose_bus::BusConfig {
                    stream,
                    subject_prefix,
                    ..Default::default()
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint(args) => commands::checkpoint(&cli.target, &args).await,
        Command::Keys {
            command: KeysCommand::Show(args),
        } => commands::keys_show(&cli.target, &args),
        Command::Proof(args) => commands::proof(&cli.target, &args).await,
        Command::VerifyProof(args) => commands::verify_proof(&args),
        Command::Token(args) => api::token(&cli.api, &args).await,
        Command::Login(args) => login::login(&cli.api, &args).await,
        Command::Service {
            command: ServiceCommand::Apply { path },
        } => api::service_apply(&cli.api, &path).await,
        Command::Service {
            command: ServiceCommand::List,
        } => api::get_print(&cli.api, api::Svc::Registry, "/v1/services").await,
        Command::Graph(args) => api::graph(&cli.api, &args.format).await,
        Command::Mesh { command } => mesh::run(&cli.api, command).await,
        Command::K8s { command } => k8s::run(command),
        Command::Runbook { command } => runbook::run(&cli.target, &cli.api, command).await,
        Command::Evidence {
            command:
                EvidenceCommand::Add {
                    service,
                    model,
                    version,
                    kind,
                    file,
                },
        } => {
            // clap requires exactly one of them.
            let subject = match (service, model) {
                (Some(s), _) => ("service", s),
                (None, Some(m)) => ("model", m),
                (None, None) => anyhow::bail!("give --service or --model"),
            };
            api::evidence_add(&cli.api, subject, &version, &kind, &file).await
        }
        Command::Evidence {
            command: EvidenceCommand::List { service, model },
        } => {
            let q = match (service, model) {
                (Some(s), _) => format!("?service={s}"),
                (None, Some(m)) => format!("?model={m}"),
                (None, None) => String::new(),
            };
            api::get_print(&cli.api, api::Svc::Evidence, &format!("/v1/evidence{q}")).await
        }
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    service,
                    out,
                    wait_checkpoint,
                },
        } => {
            let path = format!("/v1/audit/services/{service}/export");
            audit::export(&cli.api, &path, &out, wait_checkpoint).await
        }
        Command::Admin {
            command:
                AdminCommand::Recover {
                    user,
                    api_key_file,
                    token_key_file,
                    service_key_file,
                    log_origin,
                },
        } => {
            commands::admin_recover(
                &cli.target,
                &user,
                &api_key_file,
                token_key_file.as_deref(),
                service_key_file.as_deref(),
                log_origin.as_deref(),
            )
            .await
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    dir,
                    log_key,
                    signer_key,
                },
        } => audit::verify(&dir, &log_key, signer_key.as_deref()),
        Command::User { command } => api::user(&cli.api, command).await,
        Command::Approval { command } => api::approval(&cli.api, command).await,
        Command::Promote(args) => promote::promote(&cli.api, &args).await,
        Command::Promotion { command } => promote::promotion(&cli.api, command).await,
        Command::Package { command } => promote::package(&cli.api, command).await,
        Command::Compliance { service } => {
            let q = service.map(|s| format!("?service={s}")).unwrap_or_default();
            api::get_print(
                &cli.api,
                api::Svc::Orchestrator,
                &format!("/v1/compliance{q}"),
            )
            .await
        }
    }
}
