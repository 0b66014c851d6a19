//! A compliance report as one HTML page a person can read on screen and print: no scripts, no
//! external requests, the styles inline. Every figure names the ledger positions it cites;
//! the signature and the digest recorded on the chain are at the top.
//!
//! Written by hand rather than with a template crate: one page, a dozen tables, and an escape
//! function are less to keep than a template engine and its build step.

use crate::reports::SignedReport;
use goose_domain::sla::report::Durations;
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cites(positions: &[u64]) -> String {
    positions
        .iter()
        .map(|p| format!("#{p}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn secs(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.3} %", v * 100.0))
}

fn durations(d: &Durations) -> String {
    format!(
        "{} (mean {}, median {}, p90 {}, max {})",
        d.count,
        secs(d.mean_seconds),
        secs(d.p50_seconds),
        secs(d.p90_seconds),
        secs(d.max_seconds)
    )
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p class=\"empty\">{}</p>", esc(empty));
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;max-width:72rem;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:2px solid #333}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #999;padding:.25rem .45rem;text-align:left;vertical-align:top}\
th{background:#e8e8e8}code{font-size:.85em;word-break:break-all}.ok{color:#0a5d1a}.bad{color:#a30000;font-weight:600}\
.empty{color:#555;font-style:italic}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}\
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The page.
pub fn render(s: &SignedReport) -> String {
    let r = &s.report;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>Compliance report {from} – {to}</title><style>{STYLE}</style></head><body>\n\
<h1>Compliance report</h1>\n<dl><dt>Period</dt><dd>{from} to {to} (end excluded)</dd>\
<dt>Issued</dt><dd>{at} by {by}</dd><dt>Report id</dt><dd><code>{id}</code></dd>\
<dt>Digest (SHA3-256)</dt><dd><code>{digest}</code></dd>\
<dt>Signed by</dt><dd><code>{vkey}</code></dd>\
<dt>Recorded</dt><dd>event <code>{ev}</code> at position {pos}; figures read the log up to position {asof}</dd></dl>\n\
<p>Numbers after <code>#</code> are ledger positions of the events a figure rests on; check any of them with <code>goosectl report verify</code> or an inclusion proof.</p>\n",
        from = esc(&r.from),
        to = esc(&r.to),
        at = esc(&r.issued_at),
        by = esc(&r.issued_by),
        id = esc(&s.id),
        digest = esc(&s.report_digest),
        vkey = esc(&s.signer_vkey),
        ev = esc(&s.report_event.id),
        pos = s.report_event.position,
        asof = r.as_of_position,
    );

    let p = &r.promotions;
    let _ = write!(
        out,
        "<h2>Promotions</h2>\n<p>{} requested: {} succeeded, {} partially succeeded, {} failed, {} unfinished at the period's end. Lead time (request to completion): {}.</p>\n",
        p.requested, p.succeeded, p.partially_succeeded, p.failed, p.unfinished, durations(&p.lead_time)
    );
    let rows: Vec<Vec<String>> = p
        .items
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.targets.join(", "),
                i.requester.clone(),
                i.requested_at.clone(),
                i.outcome.clone(),
                secs(i.lead_time_seconds),
                cites(&i.cites),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "Promotion",
            "Targets",
            "Requested by",
            "Requested",
            "Outcome",
            "Lead time",
            "Events",
        ],
        &rows,
        "No promotion was requested in the period.",
    );

    let a = &r.approvals;
    let _ = write!(
        out,
        "<h2>Approvals</h2>\n<p>{} requested: {} approved, {} rejected, {} pending. Segregation of duties: <span class=\"{}\">{}</span>. Wait for a decision: {}.</p>\n",
        a.requested,
        a.approved,
        a.rejected,
        a.pending,
        if a.segregation_of_duties_held { "ok" } else { "bad" },
        if a.segregation_of_duties_held { "held for every request" } else { "NOT held for every request" },
        durations(&a.wait)
    );
    let rows: Vec<Vec<String>> = a
        .items
        .iter()
        .map(|i| {
            vec![
                i.subject.clone(),
                i.impact.clone(),
                i.requester.clone(),
                format!(
                    "{} (of {} required)",
                    i.deciders.join(", "),
                    i.required_approvers
                ),
                i.decision.clone(),
                if i.segregation_of_duties_held {
                    "held"
                } else {
                    "NOT held"
                }
                .into(),
                cites(&i.cites),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "Subject",
            "Impact",
            "Requester",
            "Decided by",
            "Decision",
            "Segregation of duties",
            "Events",
        ],
        &rows,
        "No approval was requested in the period.",
    );
    let rows: Vec<Vec<String>> = a
        .refused_attempts
        .iter()
        .map(|i| {
            vec![
                i.at.clone(),
                i.actor.clone(),
                i.action.clone(),
                i.reason.clone(),
                cites(&i.cites),
            ]
        })
        .collect();
    out.push_str("<h3>Refused attempts</h3>\n");
    table(
        &mut out,
        &["When", "Who", "Action", "Why refused", "Events"],
        &rows,
        "None.",
    );

    out.push_str("<h2>Service levels</h2>\n");
    let rows: Vec<Vec<String>> = r
        .sla
        .iter()
        .flat_map(|i| {
            i.objectives.iter().map(move |o| {
                vec![
                    format!("{} (v{})", i.slo, i.version),
                    i.service.clone(),
                    o.name.clone(),
                    pct(Some(o.target)),
                    pct(o.attainment),
                    match o.met {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => "no requests".into(),
                    },
                    format!("{} / {}", o.good, o.total),
                    i.violations.to_string(),
                    format!(
                        "{} summaries #{}–#{} (digests {}); {}",
                        i.summaries.count,
                        i.summaries.first.map_or("—".into(), |x| x.to_string()),
                        i.summaries.last.map_or("—".into(), |x| x.to_string()),
                        &i.summaries.digests_sha3_256[..16.min(i.summaries.digests_sha3_256.len())],
                        cites(&i.cites)
                    ),
                ]
            })
        })
        .collect();
    table(
        &mut out,
        &[
            "SLO",
            "Service",
            "Objective",
            "Target",
            "Attainment",
            "",
            "Good / total",
            "Violations",
            "Events",
        ],
        &rows,
        "No SLO is defined.",
    );
    let rows: Vec<Vec<String>> = r
        .violations
        .iter()
        .map(|v| {
            vec![
                v.at.clone(),
                v.slo.clone(),
                v.objective.clone(),
                format!("{} ({}×)", v.alert, v.factor),
                cites(&v.cites),
            ]
        })
        .collect();
    out.push_str("<h3>Violations</h3>\n");
    table(
        &mut out,
        &["When", "SLO", "Objective", "Burn-rate alert", "Events"],
        &rows,
        "None.",
    );

    let rows: Vec<Vec<String>> = r
        .demotions
        .iter()
        .map(|d| {
            vec![
                d.at.clone(),
                format!("{}@{}", d.service, d.version),
                format!("{} → {}", d.from, d.to),
                d.reason.clone(),
                d.by.clone(),
                cites(&d.cites),
            ]
        })
        .collect();
    out.push_str("<h3>Demotions</h3>\n");
    table(
        &mut out,
        &["When", "Version", "State", "Reason", "By", "Events"],
        &rows,
        "None.",
    );

    let i = &r.incidents;
    let _ = write!(
        out,
        "<h2>Incidents</h2>\n<p>{} opened, {} resolved, {} unresolved at the period's end. Time to acknowledge: {}. Time to resolve: {}.</p>\n",
        i.opened, i.resolved, i.unresolved, durations(&i.mtta), durations(&i.mttr)
    );
    let rows: Vec<Vec<String>> = i
        .items
        .iter()
        .map(|x| {
            vec![
                x.id.clone(),
                x.opened_at.clone(),
                x.kind.clone(),
                x.severity.clone(),
                x.title.clone(),
                x.status.clone(),
                secs(x.time_to_acknowledge_seconds),
                secs(x.time_to_resolve_seconds),
                cites(&x.cites),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "Incident",
            "Opened",
            "Type",
            "Severity",
            "Title",
            "Status",
            "To acknowledge",
            "To resolve",
            "Events",
        ],
        &rows,
        "No incident was opened in the period.",
    );

    let c = &r.chain;
    let _ = write!(
        out,
        "<h2>Evidence chain</h2>\n<dl><dt>Log size</dt><dd>{}</dd><dt>Newest checkpoint</dt><dd>{}</dd><dt>Verified</dt><dd>{}</dd></dl>\n",
        c.log_size,
        c.checkpoint_size.map_or("none yet".into(), |s| format!("size {s}")),
        match (&c.verify_failure, c.verified_up_to) {
            (Some(f), _) => format!("<span class=\"bad\">FAILED: {}</span>", esc(f)),
            (None, Some(n)) => format!("<span class=\"ok\">{n} events verified up to a signed checkpoint</span>"),
            (None, None) => "not checked by the issuing service (check with goosectl verify)".into(),
        }
    );
    if let Some(note) = &c.checkpoint {
        let _ = writeln!(out, "<pre><code>{}</code></pre>", esc(note));
    }
    for x in &c.intrusions {
        let _ = writeln!(out, "<p class=\"bad\">Intrusion: {}</p>", esc(x));
    }
    let _ = write!(
        out,
        "<h2>Cited events</h2>\n<p>{} events, by position.</p>\n",
        r.cited_events.len()
    );
    let rows: Vec<Vec<String>> = r
        .cited_events
        .iter()
        .map(|c| vec![c.position.to_string(), c.id.clone(), c.digest.clone()])
        .collect();
    table(
        &mut out,
        &["Position", "Event id", "Record digest"],
        &rows,
        "None.",
    );
    out.push_str("</body></html>\n");
    out
}
