//! Arrow Flight SQL over the same tables, engine and limits as `POST /v1/analytics/query`,
//! for the clients analysts already use (ADBC, JDBC/ODBC Flight SQL drivers, pyarrow).
//!
//! Served on the service's own port (gRPC over HTTP/2, like the other services' gRPC APIs)
//! behind the same authorization middleware: clients send `authorization: Bearer <token>` and
//! need `analytics.query`. Stateless: `GetFlightInfo` plans the statement (refusing DDL/DML
//! there) and returns a ticket holding the SQL; `DoGet` runs it over the tables as they are
//! then. Updates, ingestion, prepared statements with parameters, transactions and Substrait
//! plans are refused: the service is read-only.

use crate::handlers::{record_answer, record_failure, snapshot};
use crate::AppState;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTables,
    CommandStatementQuery, CommandStatementUpdate, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use futures::{Stream, TryStreamExt};
use goose_analytics::QueryError;
use goose_domain::rbac::Permission;
use goose_runtime::problem::Problem;
use goose_runtime::routes::{Access, RouteSpec};
use prost::Message;
use std::pin::Pin;
use std::sync::OnceLock;
use tonic::{Request, Response, Status, Streaming};

macro_rules! flight {
    ($method:literal, $summary:literal) => {
        RouteSpec::post(
            concat!("/arrow.flight.protocol.FlightService/", $method),
            Access::Permission(Permission::AnalyticsQuery),
            $summary,
        )
    };
}

/// Access rules of the Flight methods: every one needs `analytics.query`.
pub const GRPC_ROUTES: &[RouteSpec] = &[
    flight!(
        "Handshake",
        "Flight handshake (tokens come as bearer headers)"
    ),
    flight!("ListFlights", "Flight: no standing flights"),
    flight!(
        "GetFlightInfo",
        "Flight SQL: plan a statement, or ask for tables / server info"
    ),
    flight!("PollFlightInfo", "Flight: not offered"),
    flight!("GetSchema", "Flight SQL: a statement's result schema"),
    flight!(
        "DoGet",
        "Flight SQL: run a planned statement, stream its rows"
    ),
    flight!(
        "DoPut",
        "Flight SQL: updates and ingestion (refused: read-only)"
    ),
    flight!("DoExchange", "Flight: not offered"),
    flight!("DoAction", "Flight SQL actions (prepared statements)"),
    flight!("ListActions", "Flight SQL actions offered"),
];

/// Where the tables are, in SQL's terms (DataFusion's default catalog and schema).
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

/// The path prefix the Flight service answers under.
pub const PATH: &str = "/arrow.flight.protocol.FlightService/{*method}";

pub(crate) struct AnalyticsFlight {
    pub(crate) state: AppState,
}

impl AnalyticsFlight {
    pub(crate) fn server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
    }
}

fn sql_info() -> Result<&'static SqlInfoData, Status> {
    static INFO: OnceLock<Result<SqlInfoData, String>> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "goose-analytics");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Status::internal(format!("server info: {e}")))
}

/// The gRPC status of a query's failure, worded as for REST.
fn status(e: &QueryError) -> Status {
    let detail = e.to_string();
    match e {
        QueryError::Refused(_) => Status::permission_denied(detail),
        QueryError::Invalid(_) | QueryError::Execution(_) => Status::invalid_argument(detail),
        QueryError::Memory { .. } => Status::resource_exhausted(detail),
        QueryError::Timeout(_) => Status::deadline_exceeded(detail),
        QueryError::Busy(_) => Status::unavailable(detail),
        QueryError::Failed(_) => Status::internal(detail),
    }
}

/// A problem from catching up with the ledger, as a gRPC status.
fn problem_status(p: &Problem) -> Status {
    if p.status == 503 {
        Status::unavailable(p.detail.clone())
    } else {
        Status::internal(p.detail.clone())
    }
}

impl AnalyticsFlight {
    async fn plan(&self, sql: &str) -> Result<goose_analytics::query::SchemaRef, Status> {
        let (tables, _) = snapshot(&self.state)
            .await
            .map_err(|p| problem_status(&p))?;
        self.state.engine.plan(&tables, sql).await.map_err(|e| {
            record_failure(&e);
            status(&e)
        })
    }
}

/// The FlightInfo of a metadata listing: its schema, and the command itself as the ticket.
fn listing_info(
    schema: &goose_analytics::query::SchemaRef,
    command: &impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    ticket_info(
        schema,
        command.as_any().encode_to_vec(),
        request.into_inner(),
    )
}

/// A metadata listing's answer: one batch.
fn listing(
    schema: goose_analytics::query::SchemaRef,
    batch: Result<
        goose_analytics::datafusion::arrow::record_batch::RecordBatch,
        arrow_flight::error::FlightError,
    >,
    what: &str,
) -> Result<Response<DataStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(format!("{what}: {e}")))?;
    Ok(Response::new(encode(schema, vec![batch])))
}

type DataStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

fn ticket_info(
    schema: &goose_analytics::query::SchemaRef,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(&as_sent(schema))
        .map_err(|e| Status::internal(format!("encoding the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(true);
    Ok(Response::new(info))
}

/// `schema` as the data stream carries it: the encoder sends dictionary-encoded columns as
/// their values (its default `DictionaryHandling::Hydrate`: every batch's dictionary would
/// otherwise be a replacement many clients refuse), so what FlightInfo and the table listing
/// say is what arrives.
fn as_sent(schema: &goose_analytics::query::SchemaRef) -> goose_analytics::query::SchemaRef {
    use goose_analytics::datafusion::arrow::datatypes::{DataType, Field, Schema};
    let fields: Vec<std::sync::Arc<Field>> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => {
                std::sync::Arc::new(f.as_ref().clone().with_data_type(values.as_ref().clone()))
            }
            _ => f.clone(),
        })
        .collect();
    std::sync::Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn encode(
    schema: goose_analytics::query::SchemaRef,
    batches: Vec<goose_analytics::datafusion::arrow::record_batch::RecordBatch>,
) -> DataStream {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .map_err(Status::from);
    Box::pin(stream)
}

#[tonic::async_trait]
impl FlightSqlService for AnalyticsFlight {
    type FlightService = Self;

    /// Tokens come as `authorization: Bearer` on every call (checked before this runs); the
    /// handshake has nothing to exchange.
    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let done = futures::stream::once(async {
            Ok(HandshakeResponse {
                protocol_version: 0,
                payload: Default::default(),
            })
        });
        Ok(Response::new(Box::pin(done)))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        if query.transaction_id.is_some() {
            return Err(Status::invalid_argument(
                "transactions are not offered: the service is read-only",
            ));
        }
        let schema = self.plan(&query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        ticket_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("the ticket's statement is not UTF-8"))?;
        let (tables, position) = snapshot(&self.state)
            .await
            .map_err(|p| problem_status(&p))?;
        let a = self
            .state
            .engine
            .run(&tables, position, &sql, None)
            .await
            .map_err(|e| {
                record_failure(&e);
                status(&e)
            })?;
        record_answer(&a);
        Ok(Response::new(encode(a.schema, a.batches)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(sql_info()?).schema();
        listing_info(&schema, &query, request)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let builder = query.into_builder(sql_info()?);
        listing(builder.schema(), builder.build(), "server info")
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        listing_info(&schema, &query, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        listing(builder.schema(), builder.build(), "listing catalogs")
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        listing_info(&schema, &query, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG, SCHEMA);
        listing(builder.schema(), builder.build(), "listing schemas")
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        listing_info(&schema, &query, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let mut builder = query.into_builder();
        for def in goose_analytics::Tables::defs() {
            builder
                .append(CATALOG, SCHEMA, def.name, "TABLE", &as_sent(&def.schema()))
                .map_err(|e| Status::internal(format!("listing tables: {e}")))?;
        }
        for k in goose_analytics::kpis::KPIS {
            let schema = self.plan(&format!("SELECT * FROM {}", k.view())).await?;
            builder
                .append(CATALOG, SCHEMA, k.view(), "VIEW", &as_sent(&schema))
                .map_err(|e| Status::internal(format!("listing views: {e}")))?;
        }
        listing(builder.schema(), builder.build(), "listing tables")
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        record_failure(&QueryError::Refused("update".into()));
        Err(Status::permission_denied(
            "only read-only queries are allowed: the analytics service changes nothing",
        ))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The Flight service as a router for the service's port.
pub(crate) fn router(state: AppState) -> axum::Router {
    axum::Router::new().route_service(PATH, AnalyticsFlight { state }.server())
}
