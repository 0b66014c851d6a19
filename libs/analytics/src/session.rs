//! Query sessions, and what they share. A session over a snapshot needs the tables, our
//! functions, the archive and the KPI views it reads; building all that per query cost several
//! milliseconds of a small query's time (a fresh DataFusion state registers every built-in
//! function, a view is planned from SQL). So an [`Prepared`] keeps them for as long as the
//! snapshot is the same — the same batches, by identity — and each query gets a state cloned
//! from it with its own runtime (its memory limit), its own catalog layer for what is only its
//! own (the `chain` row of the moment, `ledger_events` counting its reads, views over those),
//! and the views planned by earlier queries over the same snapshot.
//!
//! DataFusion has no "view planned lazily per session" to lean on — a view is a logical plan
//! bound to the table providers it was planned over — hence the layered schema below.

use crate::kpis::{self, KPIS};
use crate::ledger_scan::Zone;
use crate::query::{LedgerSource, Limits, QueryError};
use crate::tables::TableData;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Tables a snapshot builds afresh for every query (the chain watch's verdict of the moment):
/// never part of what is shared.
const PER_QUERY_TABLES: &[&str] = &["chain"];
/// Tables registered per query, for their per-query state.
const LEDGER_EVENTS: &str = "ledger_events";

const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";
const ARCHIVE: &str = "archive";

/// Which batches a snapshot holds, by identity: while a [`Prepared`] holds them they cannot
/// be freed, so an equal key is the same data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotKey(Vec<(usize, usize)>);

impl SnapshotKey {
    pub(crate) fn of(tables: &[TableData]) -> Self {
        let mut key = Vec::new();
        for (i, t) in tables.iter().enumerate() {
            if PER_QUERY_TABLES.contains(&t.def.name) {
                continue;
            }
            key.push((usize::MAX, i));
            for b in t.batches.iter() {
                let column = b
                    .columns()
                    .first()
                    .map_or(0, |c| Arc::as_ptr(c) as *const u8 as usize);
                key.push((column, b.num_rows()));
            }
        }
        Self(key)
    }
}

/// `batches` as `n` partitions of consecutive batches (a query's threads each scan one,
/// without a repartitioning step in between); fewer when there are fewer batches.
fn split(batches: &[RecordBatch], n: usize) -> Vec<Vec<RecordBatch>> {
    let n = n.clamp(1, batches.len().max(1));
    (0..n)
        .map(|i| batches[i * batches.len() / n..(i + 1) * batches.len() / n].to_vec())
        .collect()
}

/// What queries over one snapshot share.
pub(crate) struct Prepared {
    pub(crate) key: SnapshotKey,
    /// Functions, options, the tables and the views planned so far (in `shared`).
    state: SessionState,
    shared: Arc<MemorySchemaProvider>,
    archive: Option<Arc<dyn SchemaProvider>>,
    zones: Vec<Zone>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("key", &self.key.0.len())
            .finish()
    }
}

fn failed(what: &str) -> impl Fn(datafusion::error::DataFusionError) -> QueryError + '_ {
    move |e| QueryError::Failed(format!("{what}: {e}"))
}

impl Prepared {
    /// The shared part of sessions over `tables`.
    pub(crate) async fn new(
        tables: &[TableData],
        limits: &Limits,
        ledger: Option<&LedgerSource>,
    ) -> Result<Self, QueryError> {
        let config = SessionConfig::new()
            .with_target_partitions(limits.partitions.max(1))
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        for t in tables {
            if PER_QUERY_TABLES.contains(&t.def.name) {
                continue;
            }
            let what = format!("table {}", t.def.name);
            let parts = split(&t.batches, limits.partitions);
            let mem = MemTable::try_new(t.def.schema(), parts).map_err(failed(&what))?;
            ctx.register_table(t.def.name, Arc::new(mem))
                .map_err(failed(&what))?;
        }
        let mut archive = None;
        if let Some(a) = ledger.and_then(|l| l.archive.as_ref()) {
            a.register(&ctx).map_err(failed("the archive"))?;
            archive = ctx.catalog(CATALOG).and_then(|c| c.schema(ARCHIVE));
        }
        for f in crate::udf::functions() {
            ctx.register_udf(f);
        }
        // Replaces the built-in `date_trunc` (same answers, fast in UTC).
        ctx.register_udf(crate::date_trunc::function());
        // Replaces the built-in `percentile_cont` (same answers, radix selection for DOUBLE).
        ctx.register_udaf(crate::percentile_cont::function());
        for f in crate::accel::percentile::functions()
            .into_iter()
            .chain(crate::accel::sum::functions())
        {
            ctx.register_udaf(f);
        }
        // Our tables (and, with `replace_tables`, the archive's files under their names) move
        // into a schema of their own that every query's layer reads through.
        let shared = Arc::new(MemorySchemaProvider::new());
        let public = ctx
            .catalog(CATALOG)
            .and_then(|c| c.schema(SCHEMA))
            .ok_or_else(|| QueryError::Failed("no default schema".into()))?;
        for name in public.table_names() {
            if let Some(t) = public.table(&name).await.map_err(failed(&name))? {
                shared.register_table(name, t).map_err(failed("a table"))?;
            }
        }
        let zones = tables
            .iter()
            .find(|t| t.def.name == "events")
            .map(crate::ledger_scan::zones)
            .unwrap_or_default();
        Ok(Self {
            key: SnapshotKey::of(tables),
            state: SessionStateBuilder::new_from_existing(ctx.state())
                .with_physical_optimizer_rule(Arc::new(crate::dict_group::DictionaryGroupBy))
                .build(),
            shared,
            archive,
            zones,
        })
    }

    /// A session for one query: the shared state with its own runtime (memory limit, no
    /// spilling), its own catalog layer holding the per-query tables, and the KPI views
    /// `only_for` needs (all without it) — planned now when no earlier query over this
    /// snapshot planned them.
    pub(crate) async fn session(
        &self,
        tables: &[TableData],
        position: u64,
        limits: &Limits,
        ledger: Option<&LedgerSource>,
        only_for: Option<&str>,
    ) -> Result<SessionContext, QueryError> {
        // No spilling to disk: the memory limit is the limit (a user's query must not fill the
        // service's disk).
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        let layer = Arc::new(Layer {
            shared: self.shared.clone(),
            own: MemorySchemaProvider::new(),
        });
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(SCHEMA, layer.clone())
            .map_err(failed("the catalog"))?;
        if let Some(a) = &self.archive {
            catalog
                .register_schema(ARCHIVE, a.clone())
                .map_err(failed("the archive"))?;
        }
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(CATALOG.into(), Arc::new(catalog));
        let state = SessionStateBuilder::new_from_existing(self.state.clone())
            .with_catalog_list(Arc::new(catalogs))
            .with_runtime_env(runtime)
            .build();
        let ctx = SessionContext::new_with_state(state);
        if let Some(a) = ledger.and_then(|l| l.archive.as_ref()) {
            // Object stores live in the runtime, which is the query's own.
            a.register_store(&ctx).map_err(failed("the archive"))?;
        }
        let mut local: BTreeSet<String> = BTreeSet::new();
        for t in tables
            .iter()
            .filter(|t| PER_QUERY_TABLES.contains(&t.def.name))
        {
            let what = format!("table {}", t.def.name);
            let mem = MemTable::try_new(t.def.schema(), vec![t.batches.to_vec()])
                .map_err(failed(&what))?;
            ctx.register_table(t.def.name, Arc::new(mem))
                .map_err(failed(&what))?;
            local.insert(t.def.name.to_owned());
        }
        if let Some((l, reader)) = ledger.and_then(|l| l.reader.as_ref().map(|r| (l, r))) {
            let scan = crate::ledger_scan::LedgerEvents::new(
                reader.clone(),
                self.zones.clone(),
                position,
                l.rows_read.clone(),
            );
            ctx.register_table(LEDGER_EVENTS, Arc::new(scan))
                .map_err(failed("table ledger_events"))?;
            local.insert(LEDGER_EVENTS.to_owned());
        }
        let views = match only_for {
            Some(sql) => kpis::needed(sql),
            None => KPIS.iter().collect(),
        };
        for k in views {
            let name = k.view();
            let body = k.sql.to_ascii_lowercase();
            // A view over something only this query has is this query's; any other is planned
            // once per snapshot.
            let own = local.iter().any(|t| kpis::mentions(&body, t));
            if !own && self.shared.table_exist(&name) {
                continue;
            }
            let what = format!("KPI view {name}");
            let view = ctx.sql(k.sql).await.map_err(failed(&what))?.into_view();
            if own {
                layer
                    .own
                    .register_table(name.clone(), view)
                    .map_err(failed(&what))?;
                local.insert(name);
            } else {
                self.shared
                    .register_table(name, view)
                    .map_err(failed(&what))?;
            }
        }
        Ok(ctx)
    }
}

/// A query's schema: its own tables first, then the snapshot's shared ones. Registering goes
/// to its own, so nothing a query does is seen by another.
#[derive(Debug)]
struct Layer {
    shared: Arc<MemorySchemaProvider>,
    own: MemorySchemaProvider,
}

#[async_trait::async_trait]
impl SchemaProvider for Layer {
    fn table_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.shared.table_names().into_iter().collect();
        names.extend(self.own.table_names());
        names.into_iter().collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.own.table(name).await? {
            Some(t) => Ok(Some(t)),
            None => self.shared.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.own.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.own.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.own.table_exist(name) || self.shared.table_exist(name)
    }
}
