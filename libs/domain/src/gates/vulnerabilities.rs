//! The `no_known_vulnerabilities` check: known vulnerabilities the version's SBOMs and SARIF
//! scans report, at or above the policy's severity, fail it — unless an OpenVEX statement
//! of the version says `not_affected` (with its justification) or `fixed`. Unrated findings
//! count as failing: an advisory no one rated is not known to be harmless.

use super::{eval, waived, Check, Evaluation, EvidenceFact, FactRef, Outcome, TargetFacts};
use crate::evidence::{EvidenceKind, Severity, VexStatement, VexStatus, Vulnerability};
use crate::policy::Policy;

/// A package URL or `name@version` reduced to `name@version`, lower case, for matching a VEX
/// product with a scanner's component (`pkg:pypi/requests@2.25.0?x=y` → `requests@2.25.0`).
fn package_key(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("pkg:").map_or(s, |rest| {
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        rest.rsplit('/').next().unwrap_or(rest)
    });
    s.to_ascii_lowercase()
}

fn names_match(vuln: &Vulnerability, st: &VexStatement) -> bool {
    std::iter::once(&vuln.id)
        .chain(&vuln.aliases)
        .any(|id| st.vulnerability.iter().any(|n| n.eq_ignore_ascii_case(id)))
}

fn products_match(vuln: &Vulnerability, st: &VexStatement) -> bool {
    st.products.is_empty()
        || st.products.iter().any(|p| {
            vuln.components
                .iter()
                .any(|c| c == p || package_key(c) == package_key(p))
        })
}

/// The newest statement (by chain position, then order in its document) about `vuln`.
fn answer<'a>(
    vuln: &Vulnerability,
    vex: &[(&'a EvidenceFact, &'a VexStatement)],
) -> Option<(&'a EvidenceFact, &'a VexStatement)> {
    vex.iter()
        .rev()
        .find(|(_, st)| names_match(vuln, st) && products_match(vuln, st))
        .copied()
}

fn describe(v: &Vulnerability) -> String {
    let mut s = format!("{} ({})", v.id, v.severity);
    if !v.components.is_empty() {
        s.push_str(" in ");
        s.push_str(&v.components.join(", "));
    }
    s
}

pub(super) fn no_known_vulnerabilities(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    let Some(rule) = &policy.rules.no_known_vulnerabilities else {
        return waived(
            check,
            facts,
            "no_known_vulnerabilities is disabled in the policy",
        );
    };
    let sources = facts.of_kinds(&[
        EvidenceKind::Cyclonedx,
        EvidenceKind::Spdx,
        EvidenceKind::Sarif,
    ]);
    if sources.is_empty() {
        return eval(
            check,
            Outcome::Missing,
            format!("no vulnerability data (an SBOM or a SARIF scan) for {subject}"),
            vec![],
        );
    }
    let findings: Vec<&Vulnerability> = sources
        .iter()
        .flat_map(|e| {
            let from_sbom = e.summary.sbom.iter().flat_map(|s| &s.vulnerabilities);
            let from_sarif = e.summary.sast.iter().flat_map(|s| &s.vulnerabilities);
            from_sbom.chain(from_sarif)
        })
        .collect();
    let mut vex_facts = facts.of_kinds(&[EvidenceKind::Openvex]);
    vex_facts.sort_by_key(|e| e.fact.position);
    let vex: Vec<(&EvidenceFact, &VexStatement)> = vex_facts
        .iter()
        .flat_map(|e| {
            e.summary
                .vex
                .iter()
                .flat_map(|v| &v.statements)
                .map(move |st| (*e, st))
        })
        .collect();
    let fails = |s: Severity| s == Severity::Unrated || s >= rule.fail_at;
    let mut inputs: Vec<FactRef> = sources.iter().map(|e| e.fact.clone()).collect();
    let mut open = Vec::new();
    let mut answered = Vec::new();
    let mut below = 0usize;
    let mut seen = std::collections::BTreeSet::new();
    for f in &findings {
        // One advisory reported by several documents counts once.
        if !seen.insert((f.id.clone(), f.components.clone(), f.severity)) {
            continue;
        }
        if !fails(f.severity) {
            below += 1;
            continue;
        }
        match answer(f, &vex) {
            Some((e, st)) if matches!(st.status, VexStatus::NotAffected | VexStatus::Fixed) => {
                if !inputs.contains(&e.fact) {
                    inputs.push(e.fact.clone());
                }
                let why = st
                    .justification
                    .clone()
                    .or_else(|| st.impact_statement.clone())
                    .unwrap_or_default();
                answered.push(format!(
                    "{} {}{}",
                    f.id,
                    st.status.as_str(),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    }
                ));
            }
            Some((e, st)) => {
                if !inputs.contains(&e.fact) {
                    inputs.push(e.fact.clone());
                }
                open.push(format!("{} [VEX: {}]", describe(f), st.status.as_str()));
            }
            None => open.push(describe(f)),
        }
    }
    let vex_note = if answered.is_empty() {
        String::new()
    } else {
        format!("; answered by VEX: {}", answered.join(", "))
    };
    if open.is_empty() {
        eval(
            check,
            Outcome::Pass,
            format!(
                "no open known vulnerabilities at or above {} ({} reported, {below} below the threshold){vex_note}",
                rule.fail_at,
                seen.len()
            ),
            inputs,
        )
    } else {
        eval(
            check,
            Outcome::Fail,
            format!(
                "known vulnerabilities at or above {} (unrated ones count): {}{vex_note}",
                rule.fail_at,
                open.join("; ")
            ),
            inputs,
        )
    }
}

#[cfg(test)]
mod tests;
