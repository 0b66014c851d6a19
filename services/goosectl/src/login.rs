//! `goosectl login`: sign in through the organisation's OpenID provider and print a Golden
//! Goose access token. A person signs in in their browser (OAuth 2.0 authorization code with
//! PKCE, RFC 7636, the browser coming back to a loopback address, RFC 8252); a CI job hands
//! its own OIDC token over (`--id-token-file`). Either way the provider's token is exchanged
//! at rbac (`POST /v1/auth/sso/token`, RFC 8693), which maps its groups to roles and teams.

use crate::api::{joined, send, Svc};
use crate::cli::{Api, LoginArgs};
use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::process::ExitCode;
use std::time::Duration;

pub async fn login(api: &Api, args: &LoginArgs) -> Result<ExitCode> {
    let rbac = api.base(Svc::Rbac).to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let id_token = match &args.id_token_file {
        Some(path) => read_token(path)?,
        None => browser_flow(&http, &rbac, args).await?,
    };
    let body = send(http.post(format!("{rbac}/v1/auth/sso/token")).json(&json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": id_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
    })))
    .await
    .context("rbac refused the sign-in")?
    .json()?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .context("no access_token in rbac's answer")?;
    let list = |k: &str| joined(body.get(k), ", ");
    eprintln!(
        "signed in as {} (roles: {}; teams: {})",
        body.get("user").and_then(Value::as_str).unwrap_or("?"),
        list("roles"),
        list("teams"),
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn read_token(path: &std::path::Path) -> Result<String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the token from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let token = text.trim();
    if token.is_empty() {
        bail!("{} holds no token", path.display());
    }
    Ok(token.to_owned())
}

/// 32 random bytes, base64url: PKCE verifiers, `state`, `nonce`.
fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn browser_flow(http: &reqwest::Client, rbac: &str, args: &LoginArgs) -> Result<String> {
    let issuers: Vec<Value> = send(http.get(format!("{rbac}/v1/auth/sso")))
        .await?
        .json()
        .and_then(|v| Ok(serde_json::from_value(v)?))?;
    let named: Vec<&str> = issuers
        .iter()
        .filter_map(|i| i.get("issuer").and_then(Value::as_str))
        .collect();
    let chosen = match &args.issuer {
        Some(want) => issuers
            .iter()
            .find(|i| i.get("issuer").and_then(Value::as_str) == Some(want.as_str()))
            .with_context(|| format!("rbac does not trust {want} (it trusts: {named:?})"))?,
        None => match issuers.as_slice() {
            [one] => one,
            [] => {
                bail!("rbac trusts no OpenID provider: sign in with an API key (`goosectl token`)")
            }
            _ => bail!("rbac trusts several providers: pick one with --issuer ({named:?})"),
        },
    };
    let issuer = chosen
        .get("issuer")
        .and_then(Value::as_str)
        .context("an issuer without a name")?;
    let (client_id, scopes) = match (&args.client_id, chosen.get("client")) {
        (Some(id), c) => (id.clone(), scopes_of(c)),
        (None, Some(c)) if !c.is_null() => (
            c.get("client_id")
                .and_then(Value::as_str)
                .context("a client without client_id")?
                .to_owned(),
            scopes_of(Some(c)),
        ),
        _ => bail!("rbac names no public client for {issuer}: pass --client-id"),
    };
    let discovery: Value = send(http.get(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )))
    .await
    .with_context(|| format!("reading {issuer}'s discovery document"))?
    .json()?;
    let endpoint = |k: &str| {
        discovery
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("{issuer}'s discovery document has no {k}"))
    };
    let (authorize, token_url) = (
        endpoint("authorization_endpoint")?,
        endpoint("token_endpoint")?,
    );
    let verifier = random_text();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (state, nonce) = (random_text(), random_text());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .context("opening the loopback address the browser comes back to")?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let mut url = reqwest::Url::parse(&authorize)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &scopes)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    eprintln!("Open this address in your browser to sign in at {issuer}:\n\n  {url}\n");
    let params = tokio::time::timeout(Duration::from_secs(args.timeout), callback(listener))
        .await
        .context("timed out waiting for the browser to come back")??;
    if let Some(e) = params.get("error") {
        bail!(
            "the provider refused: {e}: {}",
            params.get("error_description").map_or("", String::as_str)
        );
    }
    if params.get("state") != Some(&state) {
        bail!("the browser came back with another sign-in's state: refused");
    }
    let code = params
        .get("code")
        .context("the browser came back without a code")?;
    let answer: Value = send(http.post(&token_url).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ]))
    .await
    .context("the provider's token endpoint refused the code")?
    .json()?;
    let id_token = answer
        .get("id_token")
        .and_then(Value::as_str)
        .context("the provider answered without an id_token (is `openid` among the scopes?)")?;
    // The token came straight from the provider's token endpoint: its signature is rbac's to
    // check; the nonce binds it to this sign-in.
    let claims: Value = id_token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .context("the id_token is not a JWT")?;
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce.as_str()) {
        bail!("the id_token's nonce is not this sign-in's: refused");
    }
    Ok(id_token.to_owned())
}

fn scopes_of(client: Option<&Value>) -> String {
    Some(joined(client.and_then(|c| c.get("scopes")), " "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "openid profile groups".into())
}

/// Serves the loopback redirect until the browser arrives; returns its query parameters.
async fn callback(
    listener: tokio::net::TcpListener,
) -> Result<std::collections::HashMap<String, String>> {
    use axum::extract::Query;
    use std::collections::HashMap;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<HashMap<String, String>>(1);
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(q).await;
                "Signed in: you can close this page and return to goosectl."
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let params = rx.recv().await.context("the callback server stopped")?;
    server.abort();
    Ok(params)
}
