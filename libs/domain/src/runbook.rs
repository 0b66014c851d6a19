//! SRE runbooks (seed 001 §3.6): `promotion_failure` (verify_dependencies,
//! check_evidence_chain, validate_compliance_state) and `compliance_violation`
//! (isolate_service, collect_evidence, trigger_investigation). A runbook file names its steps;
//! `goosectl runbook run` executes them against the live system and records the run — every
//! step's outcome and findings — on the chain (`runbook_run/<uuid>`, written by the sla
//! service), so what was checked and done during an incident is part of the record.

use serde::{Deserialize, Serialize};

/// The steps an executor knows, with what each does.
pub const STEPS: &[(&str, &str)] = &[
    ("verify_dependencies", "every dependency of the service has a compliant version"),
    ("check_evidence_chain", "the newest checkpoint is signed by the log key and extends the one this client trusts; the service's evidence is listed with its digests"),
    ("validate_compliance_state", "the compliance state of each of the service's versions; with a promotion, each target's status and failed checks"),
    ("isolate_service", "demote the service's compliant versions to sandbox and write an Istio DENY policy for it"),
    ("collect_evidence", "write the service's audit export (documents, blobs and proofs)"),
    ("trigger_investigation", "open a compliance_violation incident citing the run"),
];

/// A runbook file (deploy/runbooks/*.yaml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<String>,
}

/// What a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Nothing wrong found / the action was done.
    Ok,
    /// Something needs a person's attention (named in the findings).
    Attention,
    /// The step could not run (the reason is in the findings).
    Failed,
}

/// One executed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepResult {
    pub step: String,
    pub outcome: StepOutcome,
    /// What it found or did, one line each.
    pub findings: Vec<String>,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookRun {
    pub runbook: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    pub steps: Vec<StepResult>,
}

/// Events of `runbook_run/<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum RunbookEvent {
    RunbookRunRecorded {
        id: String,
        run_by: String,
        run: RunbookRun,
    },
}

impl RunbookEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RunbookRunRecorded { .. } => "RunbookRunRecorded",
        }
    }
}

/// The longest finding kept, and the most findings per step.
pub const MAX_FINDING_CHARS: usize = 2_000;
pub const MAX_FINDINGS: usize = 200;

impl Runbook {
    /// Parses a runbook file; every step must be one an executor knows.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let r: Self = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.title.is_empty() {
            return Err("name and title must not be empty".into());
        }
        if self.steps.is_empty() {
            return Err("steps: at least one".into());
        }
        for s in &self.steps {
            if !STEPS.iter().any(|(k, _)| k == s) {
                return Err(format!(
                    "step {s:?} is not one of {}",
                    STEPS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }
}

impl RunbookRun {
    /// Checks a run before it is recorded: a known runbook name shape, known steps, bounded
    /// findings.
    pub fn check(&self) -> Result<(), String> {
        crate::catalog::ServiceName::parse(&self.service).map_err(|e| format!("service: {e}"))?;
        let name_ok = !self.runbook.is_empty()
            && self.runbook.len() <= 100
            && self
                .runbook
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!(
                "runbook {:?}: 1 to 100 of a-z, 0-9, '_' and '-'",
                self.runbook
            ));
        }
        if let Some(p) = &self.promotion {
            let uuid_shaped = p.len() == 36
                && p.bytes().enumerate().all(|(i, b)| {
                    if [8, 13, 18, 23].contains(&i) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            if !uuid_shaped {
                return Err(format!("promotion {p:?}: not a promotion id (a UUID)"));
            }
        }
        if self.steps.is_empty() {
            return Err("steps: at least one".into());
        }
        for s in &self.steps {
            if !STEPS.iter().any(|(k, _)| *k == s.step) {
                return Err(format!("step {:?} is not a known step", s.step));
            }
            if s.findings.len() > MAX_FINDINGS {
                return Err(format!(
                    "step {}: {} findings, at most {MAX_FINDINGS}",
                    s.step,
                    s.findings.len()
                ));
            }
            if let Some(f) = s
                .findings
                .iter()
                .find(|f| f.chars().count() > MAX_FINDING_CHARS)
            {
                return Err(format!(
                    "step {}: a finding of {} characters, at most {MAX_FINDING_CHARS}",
                    s.step,
                    f.chars().count()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_runbooks_parse_and_unknown_steps_are_refused() {
        for file in ["promotion_failure.yaml", "compliance_violation.yaml"] {
            let path = format!(
                "{}/../../deploy/runbooks/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let r = Runbook::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(format!("{}.yaml", r.name), file);
            assert_eq!(r.steps.len(), 3);
        }
        let err = Runbook::parse("name: x\ntitle: X\nsteps: [reboot_everything]\n").unwrap_err();
        assert!(err.contains("reboot_everything"), "{err}");
        assert!(Runbook::parse("name: x\ntitle: X\nsteps: []\n").is_err());
    }

    #[test]
    fn runs_are_checked_before_they_are_recorded() {
        let run = |step: &str, finding: String| RunbookRun {
            runbook: "promotion_failure".into(),
            service: "service-a".into(),
            promotion: None,
            steps: vec![StepResult {
                step: step.into(),
                outcome: StepOutcome::Ok,
                findings: vec![finding],
            }],
        };
        assert!(run("verify_dependencies", "ok".into()).check().is_ok());
        assert!(run("rm_rf", "ok".into()).check().is_err());
        assert!(
            run("verify_dependencies", "x".repeat(MAX_FINDING_CHARS + 1))
                .check()
                .is_err()
        );
        let mut bad = run("verify_dependencies", "ok".into());
        bad.service = "Not A Service".into();
        assert!(bad.check().is_err());
        bad = run("verify_dependencies", "ok".into());
        bad.promotion = Some("not-a-uuid".into());
        assert!(bad.check().is_err());
    }
}
