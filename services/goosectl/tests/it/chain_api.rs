//! The chain HTTP API, request by request.

use crate::support::{fill, sqlite_ledger};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use goose_ledger::merkle;
use goosectl::chain_api::{routes, ConsistencyResponse, InclusionResponse};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

fn b64(s: &str) -> [u8; 32] {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn checkpoint_and_proofs_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let k = sqlite_ledger(&dir.path().join("l.db")).await;
    let (app, _) = routes(
        (*k.ledger).clone(),
        goose_ledger::Vkey::parse(&k.log_key.vkey()).unwrap(),
    );

    let (status, ctype, body) = get(&app, "/v1/chain/checkpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");
    assert!(body.contains("no checkpoint"), "{body}");

    let ids = fill(&k.ledger, 11).await;
    let (status, _, body) = get(&app, &format!("/v1/chain/proofs/inclusion/{}", ids[3])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let cp = k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    let (status, _, body) = get(&app, "/v1/chain/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, cp.note);

    let (status, _, body) = get(&app, &format!("/v1/chain/proofs/inclusion/{}", ids[3])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let proof: InclusionResponse = serde_json::from_str(&body).unwrap();
    assert_eq!((proof.index, proof.tree_size), (3, 11));
    let leaf: Vec<u8> = hex::decode(&proof.leaf_digest).unwrap();
    let hashes: Vec<[u8; 32]> = proof.hashes.iter().map(|h| b64(h)).collect();
    merkle::verify_inclusion(
        3,
        11,
        &merkle::leaf_hash(&leaf),
        &hashes,
        &cp.checkpoint.root,
    )
    .unwrap();

    let (status, _, body) = get(
        &app,
        &format!("/v1/chain/proofs/inclusion/{}?format=tlog-proof", ids[3]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("c2sp.org/tlog-proof@v1\n"), "{body}");

    let old_root = k.ledger.root(4).await.unwrap();
    let (status, _, body) = get(&app, "/v1/chain/proofs/consistency?from=4&to=11").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c: ConsistencyResponse = serde_json::from_str(&body).unwrap();
    let hashes: Vec<[u8; 32]> = c.hashes.iter().map(|h| b64(h)).collect();
    merkle::verify_consistency(4, 11, &old_root, &cp.checkpoint.root, &hashes).unwrap();
}

#[tokio::test]
async fn bad_requests_get_problem_details() {
    let dir = tempfile::tempdir().unwrap();
    let k = sqlite_ledger(&dir.path().join("l.db")).await;
    fill(&k.ledger, 3).await;
    let (app, _) = routes(
        (*k.ledger).clone(),
        goose_ledger::Vkey::parse(&k.log_key.vkey()).unwrap(),
    );
    for (uri, status, words) in [
        (
            "/v1/chain/proofs/inclusion/not-a-uuid",
            StatusCode::BAD_REQUEST,
            "not an event id",
        ),
        (
            "/v1/chain/proofs/inclusion/00000000-0000-0000-0000-000000000001",
            StatusCode::NOT_FOUND,
            "not in the log",
        ),
        (
            "/v1/chain/proofs/consistency",
            StatusCode::BAD_REQUEST,
            "`from`",
        ),
        (
            "/v1/chain/proofs/consistency?from=-1",
            StatusCode::BAD_REQUEST,
            "not a tree size",
        ),
        (
            "/v1/chain/proofs/consistency?from=2&to=9",
            StatusCode::BAD_REQUEST,
            "beyond the log",
        ),
        (
            "/v1/chain/proofs/consistency?from=3&to=2",
            StatusCode::BAD_REQUEST,
            "smaller",
        ),
    ] {
        let (got, ctype, body) = get(&app, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(ctype, "application/problem+json", "{uri}");
        assert!(body.contains(words), "{uri}: {body}");
    }
    let k2 = k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    assert_eq!(k2.checkpoint.size, 3);
    let (status, _, body) = get(
        &app,
        &format!(
            "/v1/chain/proofs/inclusion/{}?format=xml",
            uuid_of(&k).await
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn uuid_of(k: &crate::support::KeyedLedger) -> uuid::Uuid {
    k.ledger.read_all(0, 1).await.unwrap()[0].event_id
}
