//! `GET /v1/analytics/kpis/{name}/stream`: a KPI's value as server-sent events — the current
//! value at once, then a new one whenever events change it. Recomputed at most once per
//! [`DEBOUNCE`] while events arrive; an unchanged value is not sent again.

use crate::handlers::{answer, kpi_named};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use goose_analytics::encode;
use goose_runtime::problem::Problem;
use std::convert::Infallible;
use std::time::Duration;

/// Events arriving within this time are one recomputation.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Open KPI streams.
pub use goose_metrics::analytics::STREAMS;

struct Open {
    state: AppState,
    sql: String,
    changes: tokio::sync::watch::Receiver<u64>,
    last: Option<serde_json::Value>,
    done: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        STREAMS.gauge(&[]).decrement(1.0);
    }
}

/// The next event to send: a changed value, or an error (which ends the stream).
async fn next(o: &mut Open) -> Option<Event> {
    if o.done {
        return None;
    }
    loop {
        if o.last.is_some() {
            o.changes.changed().await.ok()?;
            tokio::time::sleep(DEBOUNCE).await;
            o.changes.borrow_and_update();
        }
        let a = match answer(&o.state, &o.sql, None).await {
            Ok(a) => a,
            Err(p) => {
                o.done = true;
                return Some(Event::default().event("error").data(p.detail.clone()));
            }
        };
        let rows = match encode::json_rows(&a) {
            Ok(r) => r,
            Err(e) => {
                o.done = true;
                return Some(Event::default().event("error").data(e.to_string()));
            }
        };
        if o.last.as_ref() == Some(&rows) {
            continue;
        }
        o.last = Some(rows.clone());
        let data = serde_json::json!({ "position": a.position, "rows": rows });
        return Some(
            Event::default()
                .event("kpi")
                .id(a.position.to_string())
                .data(data.to_string()),
        );
    }
}

pub(crate) async fn kpi_stream(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let k = kpi_named(&name)?;
    let open = Open {
        changes: s.view.subscribe(),
        state: s,
        sql: format!("SELECT * FROM {}", k.view()),
        last: None,
        done: false,
    };
    STREAMS.gauge(&[]).increment(1.0);
    let events = futures::stream::unfold(open, |mut o| async move {
        let e = next(&mut o).await?;
        Some((Ok(e), o))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
