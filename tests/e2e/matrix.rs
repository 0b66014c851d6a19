//! The authorization matrix: every endpoint of every service x every role, allowed or
//! denied (403 naming the permission), and 401 without a token. The table below must list
//! every route the services declare — adding an endpoint without a row fails this test.

use crate::support::{serve_in_process, user_with_token, InProcess};
use goose_domain::rbac::{Permission as P, Role};
use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
use goose_runtime::auth::{Access, RouteSpec};
use serde_json::{json, Value};
use std::sync::Arc;

/// One row: a route, a request to send, and the permission that decides it (None: any
/// authenticated caller; routes marked Public are checked separately).
struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    needs: Option<P>,
}

/// Request bodies for the routes that need one to reach their handler.
fn sample_body(method: &str, path: &str) -> Option<Value> {
    Some(match (method, path) {
        ("POST", "/v1/users") => json!({"name": "matrix-made"}),
        ("POST", "/v1/users/{name}/roles") => json!({"role": "auditor"}),
        ("PUT", "/v1/users/{name}/teams") => json!({"teams": ["matrix"]}),
        ("POST", "/v1/approvals") => {
            json!({"kind": "promotion", "subject": "service-x@1", "impact": "low"})
        }
        ("POST", "/v1/approvals/{id}/grant") => json!({}),
        ("POST", "/v1/approvals/{id}/reject") => json!({"comment": "no"}),
        ("POST", "/v1/services") => {
            json!([{"service": {"name": "matrix-svc", "spec": {"api_version": "v1", "compliance_mode": "sandbox"}}}])
        }
        ("POST", "/v1/promotions") => json!({"service": "matrix-none", "version": "1.0.0"}),
        ("POST", "/v1/packages") => json!({"services": ["matrix-none"], "version": "1.0.0"}),
        ("POST", "/v1/packages/{id}/promote") => json!({}),
        ("POST", "/v1/compliance/{service}/{version}/demote") => json!({"reason": "matrix"}),
        ("POST", "/v1/incidents") => {
            json!({"type": "security_finding", "severity": "warning", "title": "matrix"})
        }
        ("POST", "/v1/incidents/{id}/assign") => json!({"assignee": "ada"}),
        (
            "POST",
            "/v1/incidents/{id}/notes"
            | "/v1/incidents/{id}/mitigate"
            | "/v1/incidents/{id}/resolve"
            | "/v1/incidents/{id}/reopen",
        ) => {
            json!({"note": "matrix"})
        }
        ("POST", "/v1/reports") => json!({"from": "2026-12-01T00:00:00Z"}),
        ("POST", "/v1/runbook-runs") => json!({
            "runbook": "promotion_failure",
            "service": "service-x",
            "steps": [{"step": "verify_dependencies", "outcome": "ok", "findings": ["matrix"]}],
        }),
        ("POST", "/v1/analytics/query") => json!({"sql": "SELECT count(*) FROM events"}),
        ("POST", "/v1/models") => json!({"name": "matrix-model"}),
        ("POST", "/v1/models/{name}/versions") => json!({"artifact_uri": "s3://m/1"}),
        ("POST", "/v1/models/{name}/deployments") => {
            json!({"version": "1", "environment": "staging"})
        }
        (
            "POST",
            "/v1/models/{name}/rollback" | "/v1/models/{name}/versions/{version}/deprecate",
        ) => {
            json!({"reason": "matrix"})
        }
        ("PUT", "/v1/models/{name}/aliases/{alias}") => json!({"version": 1}),
        ("POST", "/v1/usecases") => json!({"name": "matrix-uc", "title": "matrix", "impact": "low",
            "models": [{"model": "matrix-model"}]}),
        ("POST", "/v1/usecases/{name}/submit") => json!({}),
        ("POST", "/v1/usecases/{name}/approve" | "/v1/usecases/{name}/reject") => {
            json!({"comment": "matrix"})
        }
        ("POST", "/v1/usecases/{name}/deprecate") => json!({"reason": "matrix"}),
        ("POST", "/api/2.0/mlflow/registered-models/create") => json!({"name": "matrix-mlflow"}),
        (
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag" | "/api/2.0/mlflow/model-versions/set-tag",
        ) => {
            json!({"name": "matrix-none", "key": "k", "value": "v"})
        }
        ("POST" | "DELETE", "/api/2.0/mlflow/registered-models/alias") => {
            json!({"name": "matrix-none", "alias": "canary", "version": "1"})
        }
        ("POST", "/api/2.0/mlflow/model-versions/create") => {
            json!({"name": "matrix-none", "source": "s3://m"})
        }
        ("POST", "/v1/measurements") => json!({"service": "matrix-none", "samples": [
            {"at": "2026-12-01T00:00:00Z", "latency_ms": 1.0, "status": 200}
        ]}),
        _ => return None,
    })
}

/// Routes whose handler decides the permission from the request (their spec says
/// `Authenticated` or `AnyOf`): the permission the sample request needs.
fn decided_by_handler(method: &str, path: &str) -> Option<P> {
    match (method, path) {
        ("POST", "/v1/approvals") => Some(P::PromotionRequest),
        ("POST", "/v1/approvals/{id}/grant" | "/v1/approvals/{id}/reject") => {
            Some(P::PromotionApprove)
        }
        _ => None,
    }
}

/// The rows: one per non-public route the services declare, derived from their route lists.
fn rows() -> Vec<Row> {
    all_routes()
        .into_iter()
        .filter(|r| r.access != Access::Public)
        .map(|r| {
            let method = r.method.as_str();
            let needs = match r.access {
                Access::Permission(p) => Some(p),
                Access::AnyOf(_) => Some(
                    decided_by_handler(method, r.path)
                        .unwrap_or_else(|| panic!("{method} {} needs an override", r.path)),
                ),
                _ => decided_by_handler(method, r.path),
            };
            if r.request.is_some() {
                assert!(
                    sample_body(method, r.path).is_some(),
                    "{method} {} takes a body: give it a sample",
                    r.path
                );
            }
            Row {
                method,
                path: r.path,
                body: sample_body(method, r.path),
                needs,
            }
        })
        .collect()
}

fn concrete(path: &str, approval: &str) -> String {
    let id = if path.starts_with("/v1/approvals/") {
        approval
    } else {
        "0192a000-0000-7000-8000-000000000000"
    };
    path.replace("{name}", "nobody")
        .replace("{role}", "operator")
        .replace("{service}", "matrix-none")
        .replace("{version}", "1.0.0")
        .replace("{key_id}", "deadbeef")
        .replace("{id}", id)
        .replace("{event_id}", "0192a000-0000-7000-8000-000000000000")
        .replace("{digest}", &"0".repeat(64))
}

fn all_routes() -> Vec<RouteSpec> {
    [
        goose_rbac::routes(),
        goose_registry::routes(),
        goose_evidence_service::routes(),
        goose_orchestrator::routes(),
        goose_sla::routes(),
        goose_analytics_service::routes(),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_times_every_role() {
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_key = Arc::new(goose_ledger::NoteKey::generate("matrix-tokens").unwrap());
    let platform = Platform::start(PlatformConfig {
        storage: Storage::Postgres(db.url.clone()),
        bus: BusChoice::Nats {
            credentials: None,
            url: nats.url.clone(),
            config: goose_bus::BusConfig {
                stream: nats.stream.clone(),
                subject_prefix: nats.subject_prefix.clone(),
                ..Default::default()
            },
        },
        service_key: Arc::new(goose_ledger::NoteKey::generate("matrix-service").unwrap()),
        token_keys: vec![goose_ledger::Vkey::parse(&token_key.vkey()).unwrap()],
        relay: goose_platform::Relay::All,
        log_origin: "matrix.test/log".into(),
        service_name: None,
        snapshot_dir: None,
    })
    .await
    .unwrap();
    let key_file = dir.path().join("admin.key");
    let pool = sqlx_pool(&db.url).await;
    let (http, root) = serve_in_process(InProcess {
        platform: platform.clone(),
        token_key,
        log_key: Arc::new(goose_ledger::NoteKey::generate("matrix.test/log").unwrap()),
        blobs: Arc::new(
            goose_evidence::blob::PgBlobStore::connect(pool)
                .await
                .unwrap(),
        ),
        leases: Arc::new(goose_orchestrator::lease::PgLeases::new(&db.url)),
        admin_key_file: key_file,
        policy: None,
        identity: None,
    })
    .await;

    // The rows come from the services' route lists; a sample body for a route that is not
    // declared would be a stale entry.
    let table = rows();
    assert!(table.len() >= 30, "{} rows", table.len());

    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = format!("m-{role}");
        tokens.push((
            role,
            user_with_token(&http, &root, &name, &[role.as_str()]).await,
        ));
    }
    // A user with no role at all.
    let nobody = user_with_token(&http, &root, "m-none", &[]).await;
    // A real pending request, raised by someone outside the matrix, for the decision routes.
    let requester = user_with_token(&http, &root, "m-requester", &["operator"]).await;
    let raised = http
        .ok(
            "POST",
            "/v1/approvals",
            &requester,
            Some(&json!({"kind": "promotion", "subject": "service-m@1", "impact": "low"})),
        )
        .await;
    let approval = raised["id"].as_str().unwrap().to_owned();

    let mut checked = 0;
    for row in &table {
        let path = concrete(row.path, &approval);
        // No token: 401, always.
        let (s, v) = http.call(row.method, &path, None, row.body.as_ref()).await;
        assert_eq!(
            s, 401,
            "{} {} without a token: {s} {v}",
            row.method, row.path
        );
        let (s, _) = http
            .call(row.method, &path, Some("not-a-token"), row.body.as_ref())
            .await;
        assert_eq!(s, 401, "{} {} with garbage", row.method, row.path);
        for (role, token) in tokens
            .iter()
            .map(|(r, t)| (Some(*r), t))
            .chain([(None, &nobody)])
        {
            let allowed = match (row.needs, role) {
                (None, _) => true,
                (Some(p), Some(r)) => r.permissions().contains(p),
                (Some(_), None) => false,
            };
            let (s, v) = http
                .call(row.method, &path, Some(token), row.body.as_ref())
                .await;
            if allowed {
                assert!(
                    s != 401 && s != 403,
                    "{role:?} should pass {} {}: {s} {v}",
                    row.method,
                    row.path
                );
            } else {
                assert_eq!(
                    s, 403,
                    "{role:?} should be denied {} {}: {v}",
                    row.method, row.path
                );
                let detail = v["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("lacks permission"), "403 must say why: {v}");
                assert_eq!(v["status"], 403);
            }
            checked += 1;
        }
    }
    assert!(checked >= 27 * 6);
    // Every refused decision is on the record with its actor: four roles and the role-less
    // user lack promotion.approve (grant and reject: 10), and the approver's reject came after
    // their grant had approved it (1).
    let after = http
        .ok("GET", &format!("/v1/approvals/{approval}"), &root, None)
        .await;
    assert_eq!(after["status"], "approved", "{after}");
    assert_eq!(after["refusals"], 11, "{after}");

    // The team dimension: who may request a promotion of a service depends on who owns it,
    // and a high-impact one needs an approver from outside the owning team.
    teams_decide_over_owned_services(&http, &root, &tokens).await;

    // gRPC, through the same middleware: every method x every role.
    let grpc_rows: [(&str, Option<P>); 12] = [
        ("/goose.v1.Rbac/WhoAmI", None),
        ("/goose.v1.Sla/ListSlos", Some(P::SlaRead)),
        ("/goose.v1.Sla/GetSloStatus", Some(P::SlaRead)),
        ("/goose.v1.Sla/ListIncidents", Some(P::SlaRead)),
        ("/goose.v1.Registry/ListServices", Some(P::ServiceRead)),
        ("/goose.v1.Registry/GetGraph", Some(P::ServiceRead)),
        ("/goose.v1.Registry/ListModels", Some(P::ServiceRead)),
        (
            "/goose.v1.Registry/GetProductionVersion",
            Some(P::ServiceRead),
        ),
        ("/goose.v1.Registry/ListUseCases", Some(P::ServiceRead)),
        ("/goose.v1.Evidence/ListEvidence", Some(P::EvidenceRead)),
        ("/goose.v1.Orchestrator/GetPromotion", Some(P::ServiceRead)),
        ("/goose.v1.Orchestrator/GetPackage", Some(P::ServiceRead)),
    ];
    let declared: Vec<&str> = goose_rbac::grpc::GRPC_ROUTES
        .iter()
        .chain(goose_registry::grpc::GRPC_ROUTES)
        .chain(goose_evidence_service::grpc::GRPC_ROUTES)
        .chain(goose_orchestrator::grpc::GRPC_ROUTES)
        .chain(goose_sla::grpc::GRPC_ROUTES)
        .map(|r| r.path)
        .collect();
    assert_eq!(declared.len(), grpc_rows.len());
    for (path, _) in &grpc_rows {
        assert!(declared.contains(path), "{path} has no access rule");
    }
    let channel = tonic::transport::Channel::from_shared(http.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (path, needs) in grpc_rows {
        assert_eq!(
            grpc_call(&channel, path, None).await.unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "{path}"
        );
        for (role, token) in tokens
            .iter()
            .map(|(r, t)| (Some(*r), t))
            .chain([(None, &nobody)])
        {
            let allowed = match (needs, role) {
                (None, _) => true,
                (Some(p), Some(r)) => r.permissions().contains(p),
                (Some(_), None) => false,
            };
            let r = grpc_call(&channel, path, Some(token)).await;
            if allowed {
                assert!(r.is_ok(), "{role:?} should pass {path}: {r:?}");
            } else {
                let e = r.unwrap_err();
                assert_eq!(
                    e.code(),
                    tonic::Code::PermissionDenied,
                    "{role:?} {path}: {e:?}"
                );
                assert!(e.message().contains("lacks permission"), "{e:?}");
            }
        }
    }
    // Arrow Flight SQL (analytics), through the same middleware: every method x every role.
    // A role with `analytics.query` reaches the service (which may still say a method is not
    // offered, or refuse a write: never "lacks permission").
    let flight_declared: Vec<&str> = goose_analytics_service::flight::GRPC_ROUTES
        .iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(flight_declared.len(), 10);
    for path in flight_declared {
        let e = flight_call(&channel, path, None).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{path}: {e:?}");
        for (role, token) in tokens
            .iter()
            .map(|(r, t)| (Some(*r), t))
            .chain([(None, &nobody)])
        {
            let allowed = role.is_some_and(|r| r.permissions().contains(P::AnalyticsQuery));
            let r = flight_call(&channel, path, Some(token)).await;
            match r {
                Ok(()) => assert!(allowed, "{role:?} should be denied {path}"),
                Err(e) if allowed => {
                    assert!(
                        e.code() != tonic::Code::Unauthenticated
                            && !e.message().contains("lacks permission"),
                        "{role:?} should pass {path}: {e:?}"
                    );
                }
                Err(e) => {
                    assert_eq!(
                        e.code(),
                        tonic::Code::PermissionDenied,
                        "{role:?} {path}: {e:?}"
                    );
                    assert!(e.message().contains("lacks permission"), "{e:?}");
                }
            }
        }
    }
    // Every service's OpenAPI document lists its routes.
    let (s, doc) = http.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(
        doc["paths"]["/v1/approvals/{id}/grant"]["post"].is_object(),
        "{doc}"
    );
    // An undeclared method on a served path: 405 naming the allowed ones, as problem+json.
    let client = reqwest::Client::new();
    let resp = client
        .delete(format!("{}/v1/services", http.base))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // A body that is not JSON, on a route whose body is optional: problem+json, not text/plain.
    let promote = format!("{}/v1/packages/{}/promote", http.base, uuid::Uuid::now_v7());
    let operator = &tokens.iter().find(|(r, _)| *r == Role::Operator).unwrap().1;
    for (ct, body, status) in [
        ("application/json", "{", 400),
        ("text/plain", "reason=x", 415),
    ] {
        let resp = client
            .post(&promote)
            .bearer_auth(operator)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{ct}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{ct}"
        );
    }
    // No route at all: 404 problem+json, before any token is asked for.
    let (s, v) = http.call("GET", "/v1/no-such-thing", None, None).await;
    assert_eq!((s, v["status"].as_u64()), (404, Some(404)), "{v}");
    // The bearer scheme is case-insensitive (RFC 9110), in the middleware and in handlers.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = client
            .get(format!("{}/v1/services", http.base))
            .header("authorization", format!("{scheme} {root}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "scheme {scheme}");
    }
    platform.shutdown().await;
}

/// Calls one gRPC method with an optional bearer token; `Ok` carries nothing but success.
/// One call of a Flight method, with a small valid request.
async fn flight_call(
    channel: &tonic::transport::Channel,
    path: &str,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    use arrow_flight::flight_service_client::FlightServiceClient;
    use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
    use arrow_flight::{Action, Criteria, Empty, FlightData, FlightDescriptor, HandshakeRequest};
    use prost::Message as _;
    fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }
    let mut c = FlightServiceClient::new(channel.clone());
    let select = FlightDescriptor::new_cmd(
        CommandStatementQuery {
            query: "SELECT 1 AS one".into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec(),
    );
    let method = path.rsplit('/').next().unwrap_or_default();
    match method {
        "Handshake" => c
            .handshake(req(
                futures::stream::iter([HandshakeRequest::default()]),
                token,
            ))
            .await
            .map(|_| ()),
        "ListFlights" => c
            .list_flights(req(Criteria::default(), token))
            .await
            .map(|_| ()),
        "GetFlightInfo" => c.get_flight_info(req(select, token)).await.map(|_| ()),
        "PollFlightInfo" => c.poll_flight_info(req(select, token)).await.map(|_| ()),
        "GetSchema" => c.get_schema(req(select, token)).await.map(|_| ()),
        "DoGet" => {
            let ticket = arrow_flight::sql::TicketStatementQuery {
                statement_handle: "SELECT 1 AS one".into(),
            };
            let t = arrow_flight::Ticket::new(ticket.as_any().encode_to_vec());
            let mut s = c.do_get(req(t, token)).await?.into_inner();
            while let Some(m) = futures::StreamExt::next(&mut s).await {
                m?;
            }
            Ok(())
        }
        "DoPut" => c
            .do_put(req(
                futures::stream::iter([FlightData::new().with_descriptor(select)]),
                token,
            ))
            .await
            .map(|_| ()),
        "DoExchange" => c
            .do_exchange(req(
                futures::stream::iter([FlightData::new().with_descriptor(select)]),
                token,
            ))
            .await
            .map(|_| ()),
        "DoAction" => c
            .do_action(req(Action::new("CancelQuery", Vec::<u8>::new()), token))
            .await
            .map(|_| ()),
        "ListActions" => c.list_actions(req(Empty {}, token)).await.map(|_| ()),
        other => panic!("no call for Flight method {other}"),
    }
}

async fn grpc_call(
    channel: &tonic::transport::Channel,
    path: &str,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    use goose_proto::v1 as pb;
    fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }
    match path {
        "/goose.v1.Rbac/WhoAmI" => pb::rbac_client::RbacClient::new(channel.clone())
            .who_am_i(req(pb::WhoAmIRequest {}, token))
            .await
            .map(|_| ()),
        "/goose.v1.Registry/ListServices" => {
            pb::registry_client::RegistryClient::new(channel.clone())
                .list_services(req(pb::ListServicesRequest {}, token))
                .await
                .map(|_| ())
        }
        "/goose.v1.Registry/ListModels" => {
            pb::registry_client::RegistryClient::new(channel.clone())
                .list_models(req(pb::ListModelsRequest {}, token))
                .await
                .map(|_| ())
        }
        // A model that does not exist: NotFound past the authorization check.
        "/goose.v1.Registry/GetProductionVersion" => {
            match pb::registry_client::RegistryClient::new(channel.clone())
                .get_production_version(req(
                    pb::GetProductionVersionRequest {
                        model: "matrix-none".into(),
                        at: String::new(),
                    },
                    token,
                ))
                .await
            {
                Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                other => other.map(|_| ()),
            }
        }
        "/goose.v1.Registry/ListUseCases" => {
            pb::registry_client::RegistryClient::new(channel.clone())
                .list_use_cases(req(pb::ListUseCasesRequest {}, token))
                .await
                .map(|_| ())
        }
        "/goose.v1.Registry/GetGraph" => pb::registry_client::RegistryClient::new(channel.clone())
            .get_graph(req(
                pb::GetGraphRequest {
                    format: "dot".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "/goose.v1.Evidence/ListEvidence" => {
            pb::evidence_client::EvidenceClient::new(channel.clone())
                .list_evidence(req(pb::ListEvidenceRequest::default(), token))
                .await
                .map(|_| ())
        }
        // Allowed callers reach the handler, which finds no such promotion or package.
        "/goose.v1.Orchestrator/GetPromotion" => {
            pb::orchestrator_client::OrchestratorClient::new(channel.clone())
                .get_promotion(req(pb::GetPromotionRequest { id: "none".into() }, token))
                .await
                .map(|_| ())
                .or_else(|e| {
                    if e.code() == tonic::Code::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
        }
        "/goose.v1.Orchestrator/GetPackage" => {
            pb::orchestrator_client::OrchestratorClient::new(channel.clone())
                .get_package(req(pb::GetPackageRequest { id: "none".into() }, token))
                .await
                .map(|_| ())
                .or_else(|e| {
                    if e.code() == tonic::Code::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
        }
        "/goose.v1.Sla/ListSlos" => pb::sla_client::SlaClient::new(channel.clone())
            .list_slos(req(pb::ListSlosRequest {}, token))
            .await
            .map(|_| ()),
        // Allowed callers reach the handler, which finds no such SLO.
        "/goose.v1.Sla/GetSloStatus" => pb::sla_client::SlaClient::new(channel.clone())
            .get_slo_status(req(
                pb::GetSloStatusRequest {
                    name: "none".into(),
                    at: 0,
                },
                token,
            ))
            .await
            .map(|_| ())
            .or_else(|e| {
                if e.code() == tonic::Code::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
        "/goose.v1.Sla/ListIncidents" => pb::sla_client::SlaClient::new(channel.clone())
            .list_incidents(req(pb::ListIncidentsRequest::default(), token))
            .await
            .map(|_| ()),
        other => panic!("no client call for {other}"),
    }
}

/// Requesters and approvers in the owning team, in another team, in none, and an admin
/// operator in none, against a service the catalog says `matrix-team` owns.
async fn teams_decide_over_owned_services(
    http: &crate::support::Http,
    root: &str,
    tokens: &[(Role, String)],
) {
    let operator = &tokens.iter().find(|(r, _)| *r == Role::Operator).unwrap().1;
    http.ok(
        "POST",
        "/v1/services",
        operator,
        Some(&json!([
            {"service": {"name": "matrix-owned", "owner": "matrix-team", "spec": {"api_version": "v1", "compliance_mode": "sandbox"}}},
            {"service": {"name": "matrix-owned-2", "owner": "matrix-team", "spec": {"api_version": "v1", "compliance_mode": "sandbox"}}},
        ])),
    )
    .await;
    let member = |name: &'static str, roles: &'static [&'static str], teams: Value| async move {
        let t = user_with_token(http, root, name, roles).await;
        http.ok(
            "PUT",
            &format!("/v1/users/{name}/teams"),
            root,
            Some(&json!({"teams": teams})),
        )
        .await;
        t
    };
    let own = member("t-own", &["operator"], json!(["matrix-team"])).await;
    let other = member("t-other", &["operator"], json!(["elsewhere"])).await;
    let none = member("t-none", &["operator"], json!([])).await;
    let admin_op = member("t-admin", &["operator", "admin"], json!([])).await;
    let promote = |t: String, service: &'static str| async move {
        http.call(
            "POST",
            "/v1/promotions",
            Some(&t),
            Some(&json!({"service": service, "version": "1.0.0", "impact": "high"})),
        )
        .await
    };
    for (who, t) in [("another team", other), ("no team", none)] {
        let (s, v) = promote(t, "matrix-owned").await;
        assert_eq!(s, 403, "{who}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("matrix-owned (owned by matrix-team)"),
            "{who}: {v}"
        );
    }
    let (s, v) = promote(admin_op, "matrix-owned-2").await;
    assert_eq!(s, 202, "an admin operator of no team: {v}");
    let (s, v) = promote(own, "matrix-owned").await;
    assert_eq!(s, 202, "the owning team's operator: {v}");
    let approval = v["request"]["approval_id"].as_str().unwrap().to_owned();
    let grant = |t: String| {
        let path = format!("/v1/approvals/{approval}/grant");
        async move { http.call("POST", &path, Some(&t), Some(&json!({}))).await }
    };
    let a1 = member("t-appr-own1", &["approver"], json!(["matrix-team"])).await;
    let a2 = member(
        "t-appr-own2",
        &["approver"],
        json!(["matrix-team", "elsewhere"]),
    )
    .await;
    let a3 = member("t-appr-out", &["approver"], json!(["elsewhere"])).await;
    assert_eq!(grant(a1).await.0, 200);
    let (s, v) = grant(a2).await;
    assert_eq!(s, 403, "a second approver of the owning team: {v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("outside the owning team"),
        "{v}"
    );
    let (s, v) = grant(a3).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("approved")), "{v}");
}

async fn sqlx_pool(url: &str) -> sqlx::PgPool {
    sqlx::PgPool::connect(url).await.unwrap()
}
