//! The promotion and package verbs: request, follow (each step printed as it is recorded),
//! approve and reject through rbac, explain, and the offline package export and its check.

use crate::api::{get, print_json, send, send_response, Svc};
use crate::cli::{Api, PackageCommand, PromoteArgs, PromotionCommand};
use anyhow::{bail, Context as _, Result};
use goose_ledger::{canonical, TlogProof};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

async fn post(api: &Api, svc: Svc, path: &str, body: &Value) -> Result<Value> {
    send(api.request(svc, reqwest::Method::POST, path)?.json(body))
        .await?
        .json()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One recorded step of a promotion, as a line (and the facts it cites, indented).
fn describe(e: &Value, with_inputs: bool) -> String {
    let ev = &e["event"];
    let kind = s(e, "event_type");
    let target = format!("{}@{}", s(ev, "service"), s(ev, "version"));
    let body = match kind {
        "PromotionRequested" => {
            let targets: Vec<String> = ev["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| format!("{}@{}", s(t, "service"), s(t, "version")))
                .collect();
            format!(
                "by {} in order {}{}",
                s(ev, "requester"),
                targets.join(" -> "),
                ev.get("approval_id")
                    .and_then(Value::as_str)
                    .map(|a| format!("; approval request {a}"))
                    .unwrap_or_default()
            )
        }
        "TargetStarted" | "TargetPromoted" => {
            if ev["already_compliant"].as_bool() == Some(true) {
                format!("{target} (already compliant)")
            } else {
                target
            }
        }
        "GateEvaluated" => {
            let mut text = format!("{target} {}: {}", s(ev, "gate"), s(ev, "outcome"));
            for c in ev["checks"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "\n                             {}: {} — {}",
                    s(c, "check"),
                    s(c, "outcome"),
                    s(c, "detail")
                ));
                if with_inputs {
                    for i in c["inputs"].as_array().into_iter().flatten() {
                        text.push_str(&format!(
                            "\n                               cites {} {}{}{} {}",
                            s(i, "kind"),
                            s(i, "id"),
                            i.get("position")
                                .and_then(Value::as_u64)
                                .map(|p| format!(" @{p}"))
                                .unwrap_or_default(),
                            i.get("digest")
                                .and_then(Value::as_str)
                                .map(|d| format!(" sha3:{d}"))
                                .unwrap_or_default(),
                            s(i, "note")
                        ));
                    }
                }
            }
            text
        }
        "TargetTransitioned" => {
            let met: Vec<&str> = ev["met"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{target} {} -> {} (met: {})",
                s(ev, "from"),
                s(ev, "to"),
                if met.is_empty() {
                    "-".into()
                } else {
                    met.join(", ")
                }
            )
        }
        "TargetFailed" => format!("{target}: {}", s(ev, "reason")),
        "TargetBlocked" => format!("{target}: {}", s(ev, "reason")),
        "PromotionCompleted" => {
            let list = |k: &str| crate::api::joined(ev.get(k), ", ");
            format!(
                "{} (promoted: {}; failed: {}; blocked: {})",
                s(ev, "outcome"),
                list("promoted"),
                list("failed"),
                list("blocked")
            )
        }
        _ => String::new(),
    };
    let mut line = format!(
        "#{:<7} {kind:<19} {body}",
        e["position"].as_u64().unwrap_or(0)
    );
    if with_inputs {
        line.push_str(&format!(
            "\n          event {} sha3:{}",
            s(e, "event_id"),
            s(e, "digest")
        ));
    }
    line
}

/// Prints the promotion's steps as they are recorded until it ends; true if it succeeded.
async fn follow(api: &Api, id: &str) -> Result<bool> {
    let mut shown = 0usize;
    let mut hinted = false;
    loop {
        let x = get(
            api,
            Svc::Orchestrator,
            &format!("/v1/promotions/{id}/steps"),
        )
        .await?;
        let events = x["events"].as_array().cloned().unwrap_or_default();
        for e in events.iter().skip(shown) {
            println!("{}", describe(e, false));
            let ev = &e["event"];
            if !hinted && s(ev, "gate") == "approval_check" && s(ev, "outcome") == "missing" {
                hinted = true;
                println!("          waiting for an approver: goosectl promotion approve {id}");
            }
            if s(e, "event_type") == "PromotionCompleted" {
                return Ok(s(ev, "outcome") == "succeeded");
            }
        }
        shown = events.len();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn parse_impact(i: Option<&String>) -> Result<Option<Value>> {
    i.map(|i| {
        i.parse::<goose_domain::approval::ImpactLevel>()
            .map(|l| json!(l))
            .map_err(anyhow::Error::msg)
    })
    .transpose()
}

async fn started(api: &Api, v: &Value, wait: bool) -> Result<ExitCode> {
    let id = s(v, "id").to_owned();
    println!("promotion {id} requested");
    if let Some(a) = v["request"].get("approval_id").and_then(Value::as_str) {
        println!("  approval request {a} (an approver runs: goosectl promotion approve {id})");
    }
    if !wait {
        println!("  follow it: goosectl promotion status {id} --watch");
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if follow(api, &id).await? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn promote(api: &Api, a: &PromoteArgs) -> Result<ExitCode> {
    let mut body = json!({
        "service": a.service, "version": a.version, "target_state": "compliant",
        "evidence_refs": a.evidence_refs, "dependencies": {"required": a.required},
        "reason": a.reason,
    });
    if let Some(i) = parse_impact(a.impact.as_ref())? {
        body["impact"] = i;
    }
    let v = post(api, Svc::Orchestrator, "/v1/promotions", &body).await?;
    started(api, &v, a.wait).await
}

pub async fn promotion(api: &Api, c: PromotionCommand) -> Result<ExitCode> {
    match c {
        PromotionCommand::Status { id, watch } => {
            if watch {
                return Ok(if follow(api, &id).await? {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let v = get(api, Svc::Orchestrator, &format!("/v1/promotions/{id}")).await?;
            println!(
                "promotion {id}: {}",
                v.get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or("running")
            );
            for t in v["targets"].as_array().into_iter().flatten() {
                let spec = &t["spec"];
                println!(
                    "  {}@{}: {}{}{}",
                    s(spec, "service"),
                    s(spec, "version"),
                    s(t, "status"),
                    t.get("compliance")
                        .and_then(Value::as_str)
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    t.get("reason")
                        .and_then(Value::as_str)
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                );
                if let Some(checks) = t["checks"].as_object() {
                    for (check, r) in checks {
                        println!(
                            "      {check}: {} — {}",
                            r[0].as_str().unwrap_or(""),
                            r[1].as_str().unwrap_or("")
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PromotionCommand::Approve { id, comment } => decide(api, &id, "grant", &comment).await,
        PromotionCommand::Reject { id, reason } => decide(api, &id, "reject", &reason).await,
        PromotionCommand::Explain { id } => {
            let x = get(
                api,
                Svc::Orchestrator,
                &format!("/v1/promotions/{id}/explain"),
            )
            .await?;
            for e in x["events"].as_array().into_iter().flatten() {
                println!("{}", describe(e, true));
            }
            Ok(ExitCode::SUCCESS)
        }
        PromotionCommand::Export {
            id,
            out,
            wait_checkpoint,
        } => {
            let path = format!("/v1/audit/promotions/{id}/export");
            crate::audit::export(api, &path, &out, wait_checkpoint).await
        }
        PromotionCommand::List => print_json(&get(api, Svc::Orchestrator, "/v1/promotions").await?),
    }
}

async fn decide(api: &Api, id: &str, action: &str, comment: &str) -> Result<ExitCode> {
    let v = get(api, Svc::Orchestrator, &format!("/v1/promotions/{id}")).await?;
    let Some(approval) = v["request"].get("approval_id").and_then(Value::as_str) else {
        bail!("promotion {id} has no approval request (its policy's approval_check is automatic)");
    };
    let r = post(
        api,
        Svc::Rbac,
        &format!("/v1/approvals/{approval}/{action}"),
        &json!({"comment": comment}),
    )
    .await?;
    println!(
        "approval {approval}: {} (approvers: {})",
        s(&r, "status"),
        r["approvers"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn package(api: &Api, c: PackageCommand) -> Result<ExitCode> {
    match c {
        PackageCommand::Create { version, services } => {
            let v = post(
                api,
                Svc::Orchestrator,
                "/v1/packages",
                &json!({"services": services, "version": version}),
            )
            .await?;
            println!("package {} created", s(&v, "id"));
            print_json(&v)
        }
        PackageCommand::Promote {
            id,
            impact,
            reason,
            wait,
        } => {
            let mut body = json!({"reason": reason});
            if let Some(i) = parse_impact(impact.as_ref())? {
                body["impact"] = i;
            }
            let v = post(
                api,
                Svc::Orchestrator,
                &format!("/v1/packages/{id}/promote"),
                &body,
            )
            .await?;
            started(api, &v, wait).await
        }
        PackageCommand::Show { id } => {
            print_json(&get(api, Svc::Orchestrator, &format!("/v1/packages/{id}")).await?)
        }
        PackageCommand::Export {
            id,
            out,
            wait_checkpoint,
        } => export(api, &id, &out, wait_checkpoint).await,
        PackageCommand::Verify {
            dir,
            log_key,
            signer_key,
        } => verify(&dir, &log_key, signer_key.as_deref()),
    }
}

/// The inclusion proof of `event_id` in tlog-proof form, waiting up to `deadline` for a
/// checkpoint to cover it.
pub(crate) async fn proof_text(
    api: &Api,
    event_id: &str,
    deadline: tokio::time::Instant,
) -> Result<String> {
    let mut told = false;
    loop {
        let resp = api
            .request(
                Svc::Evidence,
                reqwest::Method::GET,
                &format!("/v1/chain/proofs/inclusion/{event_id}?format=tlog-proof"),
            )?
            .send()
            .await
            .context("cannot reach the evidence service")?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.is_success() {
            return Ok(text);
        }
        if status.as_u16() == 409 && tokio::time::Instant::now() < deadline {
            if !told {
                println!("waiting for a checkpoint that covers the newest facts (periodic, or `goosectl checkpoint`)...");
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        bail!("proof of {event_id}: {status}: {text}");
    }
}

/// `goosectl package export`: the orchestrator's bundle of the package (signed manifest and a
/// proof of every fact), written as files. Waits (409) for the manifest to be signed and for a
/// checkpoint covering what it cites.
async fn export(api: &Api, id: &str, out: &Path, wait_secs: u64) -> Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
    let path = format!("/v1/packages/{id}/bundle");
    let mut told = false;
    let bundle: Value = loop {
        let resp = api
            .request(Svc::Orchestrator, reqwest::Method::GET, &path)?
            .send()
            .await
            .context("cannot reach the orchestrator")?;
        if resp.status().as_u16() == 409 && tokio::time::Instant::now() < deadline {
            if !told {
                println!("waiting for the package's manifest to be signed and checkpointed...");
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        break send_response(resp).await?.json()?;
    };
    let files = bundle["files"].as_object().cloned().unwrap_or_default();
    let mut proofs = 0usize;
    for (name, text) in &files {
        let rel = Path::new(name);
        if name.is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            bail!("the bundle names a file outside the export: {name:?}");
        }
        let file = out.join(rel);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&file, text.as_str().unwrap_or_default())
            .with_context(|| format!("writing {}", file.display()))?;
        proofs += usize::from(name.starts_with("proofs/"));
    }
    println!(
        "exported package {id} to {}: manifest (signed, digest {}), {proofs} proofs",
        out.display(),
        s(&bundle, "manifest_digest"),
    );
    println!(
        "check it offline: goosectl package verify {} --log-key <the log's vkey> --signer-key <the orchestrator's vkey>",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks one cited fact against its proof file; returns the checkpoint size it is proven in.
pub(crate) fn check_fact(
    dir: &Path,
    fact: &Value,
    log_key: &goose_ledger::Vkey,
) -> Result<u64, String> {
    let path = dir
        .join("proofs")
        .join(format!("{}.tlog-proof", s(fact, "id")));
    check_fact_at(&path, fact, log_key).map(|(size, _)| size)
}

/// Checks a fact (`id`, `position`, `digest`) against the tlog-proof at `path` and the log's
/// key; returns the checkpoint size it is proven in and the proven event's payload.
pub(crate) fn check_fact_at(
    path: &Path,
    fact: &Value,
    log_key: &goose_ledger::Vkey,
) -> Result<(u64, Vec<u8>), String> {
    let id = s(fact, "id");
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proof = TlogProof::parse(&text).map_err(|e| format!("{id}: {e}"))?;
    let extra = proof
        .extra
        .as_ref()
        .ok_or_else(|| format!("{id}: the proof carries no record"))?;
    let authorship = goose_ledger::Authorship::decode(extra).map_err(|e| format!("{id}: {e}"))?;
    let decoded = canonical::decode_record(&authorship.record, proof.index)
        .map_err(|e| format!("{id}: {e}"))?;
    let ev = &decoded.event;
    if ev.event_id.to_string() != id {
        return Err(format!("{id}: the proof is of event {}", ev.event_id));
    }
    if fact.get("position").and_then(Value::as_u64) != Some(ev.position)
        || proof.index != ev.position
    {
        return Err(format!(
            "{id}: cited at position {:?}, proven at {}",
            fact.get("position"),
            ev.position
        ));
    }
    if fact.get("digest").and_then(Value::as_str) != Some(hex::encode(ev.digest).as_str()) {
        return Err(format!(
            "{id}: the cited digest differs from the proven record's"
        ));
    }
    let cp = proof
        .verify(log_key, &ev.digest)
        .map_err(|e| format!("{id}: {e}"))?;
    Ok((cp.checkpoint.size, ev.payload.clone()))
}

fn verify(dir: &Path, log_key: &str, signer_key: Option<&str>) -> Result<ExitCode> {
    let checked = match crate::bundle::check(
        dir,
        log_key,
        signer_key,
        &crate::bundle::Spec {
            envelope_file: "manifest.dsse.json",
            payload_type: goose_domain::package::MANIFEST_PAYLOAD_TYPE,
            what: "a package manifest",
            event_file: "manifest-event.json",
            digest_field: "manifest_digest",
        },
    )? {
        Ok(c) => c,
        Err(e) => return Ok(crate::audit::report(&[e], String::new)),
    };
    let crate::bundle::Checked {
        payload: manifest,
        digest: manifest_digest,
        failures,
        sizes,
        facts,
        signer,
        log_key,
    } = checked;
    for svc in manifest["services"].as_array().into_iter().flatten() {
        println!(
            "  {}@{}: {}{}",
            s(svc, "service"),
            s(svc, "version"),
            s(svc, "status"),
            svc.get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
    }
    Ok(crate::audit::report(&failures, || {
        format!(
            "OK: manifest {} of package {} signed by {}; {} cited facts and the manifest event proven in the log {} (checkpoint sizes {:?})",
            manifest_digest,
            s(&manifest["package"], "id"),
            signer.key_id(),
            facts,
            log_key.key_id(),
            sizes
        )
    }))
}
