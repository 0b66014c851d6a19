//! Named KPI views: SQL over the tables, registered in every query session under their names,
//! so `SELECT * FROM kpi_dora` works from REST, `goosectl kpi dora` and any SQL. Each has a
//! definition in words (docs/analytics.md is generated from this list by `goosectl kpi --list`).
//!
//! Order matters: a view may read the views before it.

/// A KPI view.
#[derive(Debug, Clone, Copy)]
pub struct Kpi {
    /// Short name: the view is `kpi_<name>`.
    pub name: &'static str,
    pub title: &'static str,
    /// What it measures and how, in words.
    pub definition: &'static str,
    pub sql: &'static str,
}

impl Kpi {
    pub fn view(&self) -> String {
        format!("kpi_{}", self.name)
    }
}

/// Looks a KPI up by its short name or its view name.
pub fn find(name: &str) -> Option<&'static Kpi> {
    let short = name.strip_prefix("kpi_").unwrap_or(name);
    KPIS.iter().find(|k| k.name == short)
}

/// The KPI views a statement needs, in registration order: those it names and the views they
/// read in turn; every view when it reads `information_schema` (which lists them). Planning a
/// view costs time, so a session registers only these.
pub fn needed(sql: &str) -> Vec<&'static Kpi> {
    let sql = sql.to_ascii_lowercase();
    if sql.contains("information_schema") {
        return KPIS.iter().collect();
    }
    let mut wanted: Vec<bool> = KPIS.iter().map(|k| mentions(&sql, &k.view())).collect();
    // A view reads only views before it: walking back once closes the set.
    for i in (0..KPIS.len()).rev() {
        if wanted[i] {
            let body = KPIS[i].sql.to_ascii_lowercase();
            for (j, k) in KPIS.iter().enumerate().take(i) {
                if mentions(&body, &k.view()) {
                    wanted[j] = true;
                }
            }
        }
    }
    KPIS.iter()
        .zip(wanted)
        .filter_map(|(k, w)| w.then_some(k))
        .collect()
}

/// `name` appears in `sql` as a whole identifier (not as part of a longer one).
pub(crate) fn mentions(sql: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(name).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Seconds between two timestamps (a float; both engines we test with agree on it).
macro_rules! secs {
    ($to:literal, $from:literal) => {
        concat!(
            "(date_part('epoch', ",
            $to,
            ") - date_part('epoch', ",
            $from,
            "))"
        )
    };
}

pub const KPIS: &[Kpi] = &[
    Kpi {
        name: "promotion_success_rate",
        title: "Promotion success and failure rate",
        definition: "Completed promotions by outcome; success_rate = succeeded / completed, failure_rate = failed / completed (partially succeeded counts as neither).",
        sql: "SELECT count(*) AS completed, \
              sum(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, \
              sum(CASE WHEN outcome = 'partially_succeeded' THEN 1 ELSE 0 END) AS partially_succeeded, \
              sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed, \
              CAST(sum(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS DOUBLE) / nullif(count(*), 0) AS success_rate, \
              CAST(sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS DOUBLE) / nullif(count(*), 0) AS failure_rate \
              FROM promotions WHERE outcome IS NOT NULL",
    },
    Kpi {
        name: "promotion_duration",
        title: "Promotion duration percentiles",
        definition: "Seconds from a promotion's request to its completion (approval waits included), over completed promotions: exact percentiles (percentile_cont), mean and maximum.",
        sql: "SELECT count(*) AS completed, \
              percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms / 1000.0) AS p50_s, \
              percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms / 1000.0) AS p90_s, \
              percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms / 1000.0) AS p95_s, \
              percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms / 1000.0) AS p99_s, \
              avg(duration_ms / 1000.0) AS mean_s, max(duration_ms / 1000.0) AS max_s \
              FROM promotions WHERE duration_ms IS NOT NULL",
    },
    Kpi {
        name: "gate_failure_reasons",
        title: "Gate failure reasons, ranked",
        definition: "Failed checks of recorded gate evaluations grouped by check and reason: how often each was recorded, in how many promotions and service versions, most frequent first.",
        sql: "SELECT \"check\", detail AS reason, count(*) AS failures, \
              count(DISTINCT promotion_id) AS promotions, \
              count(DISTINCT service || '@' || version) AS versions, \
              max(evaluated_at) AS last_seen \
              FROM gate_evaluations WHERE outcome = 'fail' \
              GROUP BY \"check\", detail ORDER BY failures DESC, \"check\", reason",
    },
    Kpi {
        name: "parallel_efficiency",
        title: "Parallel promotion efficiency",
        definition: "Per completed promotion with more than one started target: wall time of its targets (first start to last end) against their critical path (the longest chain of target durations along dependencies) and their sum. efficiency = critical_path / wall (1.0: as parallel as the dependencies allow); speedup = serial / wall.",
        sql: "SELECT promotion_id, requested_at, targets, wall_ms, critical_path_ms, serial_ms, \
              CAST(critical_path_ms AS DOUBLE) / nullif(wall_ms, 0) AS efficiency, \
              CAST(serial_ms AS DOUBLE) / nullif(wall_ms, 0) AS speedup \
              FROM promotions WHERE completed_at IS NOT NULL AND targets > 1 AND wall_ms > 0 \
              ORDER BY requested_at",
    },
    Kpi {
        name: "approval_wait",
        title: "Approval wait time",
        definition: "Per approval kind: requests decided and pending, seconds from request to decision (mean, exact median and p90), attempts the rules refused (self-approval and the like).",
        sql: "SELECT kind, count(*) AS requests, \
              count(*) FILTER (WHERE status = 'pending') AS pending, \
              count(*) FILTER (WHERE status = 'approved') AS approved, \
              count(*) FILTER (WHERE status = 'rejected') AS rejected, \
              avg(wait_ms / 1000.0) AS mean_wait_s, \
              percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_ms / 1000.0) AS p50_wait_s, \
              percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_ms / 1000.0) AS p90_wait_s, \
              sum(refused_attempts) AS refused_attempts \
              FROM approvals GROUP BY kind ORDER BY kind",
    },
    Kpi {
        name: "evidence_volume",
        title: "Evidence volume per service per month",
        definition: "Evidence files and bytes accepted per service and calendar month (UTC); within_target: under the seed's 1 GB per service per month.",
        // Per day first (arithmetic), then per month over the few days: date_trunc('month')
        // on every row goes through the calendar (docs/benchmarks.md).
        sql: "WITH daily AS (SELECT service, date_bin(INTERVAL '1 day', submitted_at, TIMESTAMP '1970-01-01T00:00:00Z') AS day, \
              count(*) AS files, sum_exact(size_bytes) AS bytes FROM evidence GROUP BY 1, 2) \
              SELECT service, date_trunc('month', day) AS month, sum(files) AS files, sum(bytes) AS bytes, \
              sum(bytes) < 1000000000 AS within_target FROM daily GROUP BY 1, 2 ORDER BY month, service",
    },
    Kpi {
        name: "dora_deployment_frequency",
        title: "DORA: deployment (promotion) frequency",
        definition: "Service versions made compliant by promotions (already compliant ones not counted) per day and per week, over the span from the first to the last such promotion (at least one day).",
        sql: "SELECT count(*) AS promoted_versions, min(ended_at) AS first_at, max(ended_at) AS last_at, \
              greatest(1.0, (date_part('epoch', max(ended_at)) - date_part('epoch', min(ended_at))) / 86400.0) AS span_days, \
              count(*) / greatest(1.0, (date_part('epoch', max(ended_at)) - date_part('epoch', min(ended_at))) / 86400.0) AS per_day, \
              7 * count(*) / greatest(1.0, (date_part('epoch', max(ended_at)) - date_part('epoch', min(ended_at))) / 86400.0) AS per_week \
              FROM promotion_targets WHERE outcome = 'promoted' AND NOT already_compliant",
    },
    Kpi {
        name: "dora_lead_time",
        title: "DORA: lead time for changes",
        definition: "Hours from the first evidence accepted for a service version to the promotion that made it compliant (versions promoted without evidence are not counted): mean, exact median and p90.",
        sql: concat!(
            "SELECT count(*) AS versions, avg(lead_h) AS mean_h, \
             percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_h) AS p50_h, \
             percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_h) AS p90_h \
             FROM (SELECT t.service, t.version, ",
            secs!("t.ended_at", "e.first_evidence"),
            " / 3600.0 AS lead_h \
             FROM promotion_targets t JOIN (SELECT service, version, min(submitted_at) AS first_evidence \
             FROM evidence GROUP BY service, version) e ON t.service = e.service AND t.version = e.version \
             WHERE t.outcome = 'promoted' AND NOT t.already_compliant) leads"
        ),
    },
    Kpi {
        name: "dora_change_failure_rate",
        title: "DORA: change failure rate",
        definition: "Share of promoted service versions that were later demoted (VersionDemoted: an SLA breach or a person took compliance away).",
        sql: "SELECT count(*) AS promoted_versions, \
              sum(CASE WHEN d.service IS NOT NULL THEN 1 ELSE 0 END) AS failed_versions, \
              CAST(sum(CASE WHEN d.service IS NOT NULL THEN 1 ELSE 0 END) AS DOUBLE) / nullif(count(*), 0) AS change_failure_rate \
              FROM (SELECT DISTINCT service, version FROM promotion_targets WHERE outcome = 'promoted' AND NOT already_compliant) p \
              LEFT JOIN (SELECT DISTINCT service, version FROM compliance_transitions WHERE kind = 'demotion') d \
              ON p.service = d.service AND p.version = d.version",
    },
    Kpi {
        name: "dora_time_to_restore",
        title: "DORA: time to restore service",
        definition: "Hours from an incident's opening to its first resolution, over resolved incidents (mean, exact median, p90), and how many are still open.",
        sql: "SELECT count(time_to_restore_ms) AS restored, \
              sum(CASE WHEN resolved_at IS NULL THEN 1 ELSE 0 END) AS unresolved, \
              avg(time_to_restore_ms / 3600000.0) AS mean_h, \
              percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_restore_ms / 3600000.0) AS p50_h, \
              percentile_cont(0.9) WITHIN GROUP (ORDER BY time_to_restore_ms / 3600000.0) AS p90_h \
              FROM incidents",
    },
    Kpi {
        name: "dora",
        title: "DORA: the four measures",
        definition: "The four DORA measures in one row: promotions per week, median lead time (hours), change failure rate, median time to restore (hours).",
        sql: "SELECT f.per_week AS deployments_per_week, l.p50_h AS lead_time_p50_h, \
              c.change_failure_rate, r.p50_h AS time_to_restore_p50_h \
              FROM kpi_dora_deployment_frequency f CROSS JOIN kpi_dora_lead_time l \
              CROSS JOIN kpi_dora_change_failure_rate c CROSS JOIN kpi_dora_time_to_restore r",
    },
    Kpi {
        name: "sla_attainment",
        title: "SLA attainment per service",
        definition: "Per service, over every recorded minute summary: requests, errors, availability = 1 - errors / requests, and the minutes covered.",
        sql: "SELECT service, count(*) AS minutes, sum_exact(requests) AS requests, sum_exact(errors) AS errors, \
              1.0 - CAST(sum_exact(errors) AS DOUBLE) / nullif(sum_exact(requests), 0) AS availability, \
              min(minute) AS first_minute, max(minute) AS last_minute \
              FROM sla_windows GROUP BY service ORDER BY service",
    },
    Kpi {
        name: "chain_integrity",
        title: "Evidence chain integrity",
        definition: "The chain watch's verdict when the query ran: whether the whole log verifies (digests, links, signatures, Merkle nodes) up to the newest signed checkpoint, how many events no checkpoint covers yet and since when (checkpoint_lag_s: seconds since the oldest uncovered event was recorded; 0 when all are covered), whether checkpoints must be witnessed (witness_threshold > 0: the watch accepts only checkpoints with that many witness cosignatures), and the first failure. No row without a configured log key.",
        sql: "SELECT c.checked_at, c.configured AND c.failure IS NULL AND c.checkpoint_size IS NOT NULL AS verified, \
              c.log_size, c.verified AS events_verified, c.checkpoint_size, c.checkpoint_root, \
              c.log_size - coalesce(c.checkpoint_size, 0) AS uncovered_events, \
              min(e.recorded_at) AS oldest_uncovered_at, \
              coalesce(date_part('epoch', c.checked_at) - date_part('epoch', min(e.recorded_at)), 0.0) AS checkpoint_lag_s, \
              c.witness_threshold, c.witnesses, c.witness_threshold > 0 AS witnessed, c.failure \
              FROM chain c LEFT JOIN events e ON e.position >= coalesce(c.checkpoint_size, 0) \
              GROUP BY c.checked_at, c.configured, c.failure, c.checkpoint_size, c.checkpoint_root, \
              c.log_size, c.verified, c.witness_threshold, c.witnesses",
    },
    Kpi {
        name: "promotion_trend_daily",
        title: "Promotions per day (trend)",
        definition: "Per UTC day (date_bin): promotions requested, completed, succeeded and failed.",
        sql: "SELECT date_bin(INTERVAL '1 day', requested_at, TIMESTAMP '1970-01-01T00:00:00Z') AS day, \
              count(*) AS requested, count(completed_at) AS completed, \
              sum(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, \
              sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed \
              FROM promotions GROUP BY 1 ORDER BY 1",
    },
    Kpi {
        name: "forecast_promotion_volume",
        title: "Promotion volume forecast (linear)",
        definition: "Promotions requested per UTC day fitted by least squares (regr_slope, regr_intercept) over the days with promotions; the next 7 days predicted with a 95% band of ±1.96 residual standard deviations (sqrt(regr_syy · (1 − regr_r2) / (days − 2)); parameter uncertainty not included). Empty with fewer than 3 days.",
        sql: "WITH daily AS (SELECT date_part('epoch', date_bin(INTERVAL '1 day', requested_at, TIMESTAMP '1970-01-01T00:00:00Z')) / 86400.0 AS d, \
              CAST(count(*) AS DOUBLE) AS n FROM promotions GROUP BY 1), \
              fit AS (SELECT regr_slope(n, d) AS slope, regr_intercept(n, d) AS intercept, count(*) AS days, max(d) AS last_d, \
              sqrt(greatest(0.0, regr_syy(n, d) * (1.0 - coalesce(regr_r2(n, d), 0.0))) / greatest(count(*) - 2, 1)) AS sigma FROM daily) \
              SELECT to_timestamp_seconds(CAST((last_d + ahead.value) * 86400 AS BIGINT)) AS day, \
              intercept + slope * (last_d + ahead.value) AS predicted, \
              intercept + slope * (last_d + ahead.value) - 1.96 * sigma AS lower, \
              intercept + slope * (last_d + ahead.value) + 1.96 * sigma AS upper, \
              slope AS per_day_change, days AS fitted_days \
              FROM fit CROSS JOIN range(1, 8) AS ahead WHERE days >= 3 ORDER BY day",
    },
    Kpi {
        name: "forecast_evidence_storage",
        title: "Evidence storage growth forecast (linear)",
        definition: "Cumulative evidence bytes at the end of each UTC day with submissions, fitted by least squares against the day: growth in bytes per day, and the total predicted 30 and 90 days after the last day with a 95% band (±1.96 residual standard deviations). Empty with fewer than 3 days.",
        sql: "WITH daily AS (SELECT date_part('epoch', date_bin(INTERVAL '1 day', submitted_at, TIMESTAMP '1970-01-01T00:00:00Z')) / 86400.0 AS d, \
              CAST(sum(size_bytes) AS DOUBLE) AS b FROM evidence GROUP BY 1), \
              cumulative AS (SELECT d, sum(b) OVER (ORDER BY d) AS total FROM daily), \
              fit AS (SELECT regr_slope(total, d) AS slope, regr_intercept(total, d) AS intercept, count(*) AS days, max(d) AS last_d, \
              max(total) AS bytes_now, \
              sqrt(greatest(0.0, regr_syy(total, d) * (1.0 - coalesce(regr_r2(total, d), 0.0))) / greatest(count(*) - 2, 1)) AS sigma FROM cumulative) \
              SELECT bytes_now, slope AS bytes_per_day, \
              intercept + slope * (last_d + 30) AS bytes_in_30_days, \
              intercept + slope * (last_d + 30) - 1.96 * sigma AS lower_30, \
              intercept + slope * (last_d + 30) + 1.96 * sigma AS upper_30, \
              intercept + slope * (last_d + 90) AS bytes_in_90_days, days AS fitted_days \
              FROM fit WHERE days >= 3",
    },
    Kpi {
        name: "forecast_promotion_volume_hw",
        title: "Promotion volume forecast (Holt-Winters)",
        definition: "Promotions requested per UTC day, every day from the first to the last with promotions (days without count 0), fitted by additive Holt-Winters (level, trend, and a weekly season once two weeks of data exist; weights chosen by least one-step squared error) with holt_winters(); the next 14 days with 95% intervals (ETS(A,A,A) variance; values and lower bounds clipped at 0). Empty with fewer than 3 days.",
        sql: "WITH daily AS (SELECT CAST(floor(date_part('epoch', requested_at) / 86400) AS BIGINT) AS d, \
              CAST(count(*) AS DOUBLE) AS n FROM promotions GROUP BY 1), \
              span AS (SELECT min(d) AS lo, max(d) AS hi FROM daily), \
              days AS (SELECT unnest(range(lo, hi + 1)) AS d FROM span), \
              filled AS (SELECT days.d, coalesce(daily.n, 0.0) AS n FROM days LEFT JOIN daily ON daily.d = days.d), \
              fit AS (SELECT max(d) AS last_d, count(*) AS days, holt_winters(array_agg(n ORDER BY d), 7, 14) AS f FROM filled), \
              pts AS (SELECT last_d, days, unnest(f) AS p FROM fit) \
              SELECT to_timestamp_seconds((last_d + p['step']) * 86400) AS day, greatest(0.0, p['value']) AS predicted, \
              greatest(0.0, p['lower']) AS lower, p['upper'] AS upper, days AS fitted_days FROM pts ORDER BY day",
    },
    Kpi {
        name: "forecast_evidence_storage_hw",
        title: "Evidence storage growth forecast (Holt-Winters)",
        definition: "Cumulative evidence bytes at the end of every UTC day from the first submission to the last, fitted by Holt's linear trend (holt_winters() without a season); the next 90 days with 95% intervals. Empty with fewer than 3 days.",
        sql: "WITH daily AS (SELECT CAST(floor(date_part('epoch', submitted_at) / 86400) AS BIGINT) AS d, \
              CAST(sum(size_bytes) AS DOUBLE) AS b FROM evidence GROUP BY 1), \
              span AS (SELECT min(d) AS lo, max(d) AS hi FROM daily), \
              days AS (SELECT unnest(range(lo, hi + 1)) AS d FROM span), \
              filled AS (SELECT days.d, sum(coalesce(daily.b, 0.0)) OVER (ORDER BY days.d) AS total \
              FROM days LEFT JOIN daily ON daily.d = days.d), \
              fit AS (SELECT max(d) AS last_d, count(*) AS days, max(total) AS bytes_now, \
              holt_winters(array_agg(total ORDER BY d), 0, 90) AS f FROM filled), \
              pts AS (SELECT last_d, days, bytes_now, unnest(f) AS p FROM fit) \
              SELECT to_timestamp_seconds((last_d + p['step']) * 86400) AS day, bytes_now, p['value'] AS predicted_bytes, \
              greatest(bytes_now, p['lower']) AS lower, p['upper'] AS upper, days AS fitted_days FROM pts ORDER BY day",
    },
    Kpi {
        name: "error_budget_forecast",
        title: "Error budget exhaustion forecast",
        definition: "Per ratio (availability) objective of each SLO: the share of the error budget left over the last window of recorded days (1 − errors / ((1 − target) · requests)); the daily burn (errors / ((1 − target) · requests) / window days: the share of the window's budget one day uses) fitted by Holt-Winters with holt_winters() and forecast 90 days; exhausted_on: the first day the forecast burn, summed from tomorrow, reaches what is left (the last recorded day when nothing is left; null when not within 90 days or fewer than 3 days are recorded). Conservative: budget freed as old days leave the rolling window is not counted back. Latency objectives are not covered (the minute summaries hold counts, not latencies).",
        sql: "WITH o AS (SELECT slo, objective, service, target, window_seconds / 86400.0 AS window_days \
              FROM slo_objectives WHERE indicator = 'ratio' AND target < 1.0), \
              daily AS (SELECT service, CAST(floor(date_part('epoch', minute) / 86400) AS BIGINT) AS d, \
              CAST(sum(requests) AS DOUBLE) AS r, CAST(sum(errors) AS DOUBLE) AS e FROM sla_windows GROUP BY 1, 2), \
              span AS (SELECT service, min(d) AS lo, max(d) AS hi FROM daily GROUP BY service), \
              days AS (SELECT service, hi, unnest(range(lo, hi + 1)) AS d FROM span), \
              filled AS (SELECT days.service, days.hi, days.d, coalesce(daily.r, 0.0) AS r, coalesce(daily.e, 0.0) AS e \
              FROM days LEFT JOIN daily ON daily.service = days.service AND daily.d = days.d), \
              burn AS (SELECT o.slo, o.objective, o.service, o.target, o.window_days, f.hi, f.d, f.r, f.e, \
              CASE WHEN f.r > 0 THEN f.e / ((1.0 - o.target) * f.r) / o.window_days ELSE 0.0 END AS used \
              FROM o JOIN filled f ON f.service = o.service), \
              cur AS (SELECT slo, objective, service, target, window_days, max(hi) AS last_d, count(*) AS days, \
              1.0 - sum(e) FILTER (WHERE d > hi - window_days) / nullif((1.0 - target) * sum(r) FILTER (WHERE d > hi - window_days), 0) AS remaining, \
              holt_winters(array_agg(used ORDER BY d), 7, 90) AS f \
              FROM burn GROUP BY slo, objective, service, target, window_days), \
              ahead AS (SELECT slo, objective, remaining, unnest(f) AS p FROM cur), \
              pts AS (SELECT slo, objective, remaining, p['step'] AS step, greatest(0.0, p['value']) AS v FROM ahead), \
              spent AS (SELECT slo, objective, remaining, step, v, sum(v) OVER (PARTITION BY slo, objective ORDER BY step) AS total FROM pts), \
              ex AS (SELECT slo, objective, min(CASE WHEN total + 1e-9 >= remaining THEN step END) AS step, avg(v) AS burn_per_day \
              FROM spent GROUP BY slo, objective) \
              SELECT c.slo, c.objective, c.service, c.target, c.window_days, c.remaining AS budget_remaining, \
              ex.burn_per_day AS forecast_burn_per_day, \
              CASE WHEN c.remaining <= 0 THEN to_timestamp_seconds(c.last_d * 86400) \
              ELSE to_timestamp_seconds((c.last_d + ex.step) * 86400) END AS exhausted_on, \
              c.days AS fitted_days \
              FROM cur c LEFT JOIN ex ON ex.slo = c.slo AND ex.objective = c.objective ORDER BY c.slo, c.objective",
    },
];
