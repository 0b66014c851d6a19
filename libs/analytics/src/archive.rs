//! The Parquet export ([`crate::export`]) read back by this service: schema `archive` holds one
//! table per exported table (`archive.events`, `archive.promotions`, ...) with the same columns
//! plus the partition column `date` (`YYYY-MM-DD`, UTC); filters on `date` prune whole days.
//! Registered in every session when the service exports, so a query can reach what the
//! export holds, from wherever it is stored (a directory or object storage).

use crate::export::PARTITIONING;
use crate::tables::Tables;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use std::sync::Arc;

/// Where the export is, as DataFusion reads it.
#[derive(Debug, Clone)]
pub struct Archive {
    /// `file:///dir/` or `s3://bucket/prefix/` (with a trailing slash).
    pub base: String,
    /// The store to register for the base's scheme and host (None: DataFusion's local files).
    pub store: Option<Arc<dyn ObjectStore>>,
    /// Register the files under the tables' own names, in place of the in-memory tables (the
    /// KPI views then read the files): for comparing engines over the same Parquet.
    pub replace_tables: bool,
}

impl Archive {
    /// The export at `location`: a directory (absolute or relative) or `s3://bucket/prefix`,
    /// read through `store` for object storage.
    pub fn new(location: &str, store: Option<Arc<dyn ObjectStore>>) -> std::io::Result<Self> {
        let base = if location.contains("://") && !location.starts_with("file://") {
            location.trim_end_matches('/').to_owned() + "/"
        } else {
            let dir = location.strip_prefix("file://").unwrap_or(location);
            let abs = std::path::absolute(dir)?;
            format!(
                "file://{}/",
                abs.display().to_string().trim_end_matches('/')
            )
        };
        Ok(Self {
            base,
            store,
            replace_tables: false,
        })
    }

    /// Registers the object store the files are read through (if not local) in `ctx`'s
    /// runtime.
    pub fn register_store(&self, ctx: &SessionContext) -> Result<()> {
        if let Some(store) = &self.store {
            let base = ListingTableUrl::parse(&self.base)?;
            ctx.register_object_store(base.as_ref(), store.clone());
        }
        Ok(())
    }

    /// Registers schema `archive` and its tables in `ctx`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        self.register_store(ctx)?;
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| datafusion::error::DataFusionError::Plan("no default catalog".into()))?;
        catalog.register_schema("archive", Arc::new(MemorySchemaProvider::new()))?;
        let defs = Tables::defs();
        for part in PARTITIONING {
            let Some(def) = defs.iter().find(|d| d.name == part.table) else {
                continue;
            };
            let url = ListingTableUrl::parse(format!("{}{}/", self.base, part.table))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(vec![("date".into(), DataType::Utf8)]);
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(def.schema());
            let name = if self.replace_tables {
                ctx.deregister_table(part.table)?;
                part.table.to_owned()
            } else {
                format!("archive.{}", part.table)
            };
            ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
        }
        Ok(())
    }
}
