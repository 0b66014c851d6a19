//! A real OpenID provider for the tests — `oidc-provider` (panva), an OpenID Certified
//! implementation, run with Node — and a scripted browser that signs a person in through it.
//! Its script is `oidc_provider.mjs` (clients, keys, accounts; see its header).

use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The pinned provider release.
pub const OIDC_PROVIDER: &str = "oidc-provider@9.13.3";

/// The public clients it knows, by the algorithm their ID tokens are signed with.
pub const CLIENT_RS256: &str = "goosectl";
pub const CLIENT_ES256: &str = "goosectl-es256";
pub const CLIENT_EDDSA: &str = "goosectl-eddsa";
/// The confidential client of a CI job (client credentials; JWT access tokens for
/// audience `golden-goose`, `sub` = the client id).
pub const CI_CLIENT: (&str, &str) = ("ci-payments-main", "ci-payments-secret");

/// How the provider's signing keys change at a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Keep them.
    None,
    /// A new RSA key signs from now on; the old one is still published.
    Add,
    /// Only the newest RSA key stays published.
    Retire,
}

/// A running provider; killed when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    script: PathBuf,
}

impl OidcProvider {
    /// Starts a provider whose state (keys, accounts) lives in `dir`; `accounts` maps a login
    /// name to `{"sub": ..., "name": ..., "groups": [...]}`.
    pub async fn start(dir: &Path, accounts: &serde_json::Value) -> Result<Self> {
        let modules = crate::npm_env(&[OIDC_PROVIDER])?;
        // ES modules resolve packages from the script's own folder: it runs from there.
        let script = modules.join("goose-oidc-provider.mjs");
        std::fs::write(&script, include_str!("oidc_provider.mjs"))?;
        std::fs::create_dir_all(dir)?;
        let mut p = Self {
            child: None,
            port: crate::free_port()?,
            dir: dir.to_owned(),
            script,
        };
        p.set_accounts(accounts)?;
        p.launch(Rotation::None).await?;
        Ok(p)
    }

    async fn launch(&mut self, rotation: Rotation) -> Result<()> {
        let node = crate::find_binary("node", "nodejs")?;
        self.child = Some(
            Command::new(node)
                .arg(&self.script)
                .env("PORT", self.port.to_string())
                .env("GOOSE_OIDC_DIR", &self.dir)
                .env(
                    "GOOSE_OIDC_ROTATE",
                    match rotation {
                        Rotation::None => "",
                        Rotation::Add => "add",
                        Rotation::Retire => "retire",
                    },
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting node")?,
        );
        let url = format!("{}/.well-known/openid-configuration", self.issuer());
        let client = reqwest::Client::new();
        crate::eventually(Duration::from_secs(30), "the OpenID provider", || async {
            client
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await?;
        Ok(())
    }

    /// Restarts it (same port, same accounts), changing its keys as asked.
    pub async fn restart(&mut self, rotation: Rotation) -> Result<()> {
        self.stop();
        self.launch(rotation).await
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its issuer identifier (`http://127.0.0.1:<port>`).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the accounts (read at every sign-in: a group removed here is gone from the
    /// next token).
    pub fn set_accounts(&self, accounts: &serde_json::Value) -> Result<()> {
        std::fs::write(
            self.dir.join("accounts.json"),
            serde_json::to_vec(accounts)?,
        )?;
        Ok(())
    }

    /// A CI job's token: the client credentials grant of [`CI_CLIENT`].
    pub async fn ci_token(&self) -> Result<String> {
        let resp: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CI_CLIENT.0),
                ("client_secret", CI_CLIENT.1),
                ("scope", "deploy"),
            ])
            .send()
            .await?
            .json()
            .await?;
        resp.get("access_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no access_token: {resp}"))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A scripted browser: opens `url` (an authorization request), signs `login` in at the
/// provider's login page, presses its consent button, and follows the redirects back to the
/// client's redirect URI (which it requests, as a browser would). Returns that last URL.
pub async fn browser_sign_in(url: &str, login: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = url.to_owned();
    let mut method = reqwest::Method::GET;
    let mut form: Option<Vec<(&str, String)>> = None;
    for _ in 0..12 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut rb = client.request(method.clone(), &next);
        if !jar.is_empty() {
            rb = rb.header(reqwest::header::COOKIE, jar);
        }
        if let Some(f) = form.take() {
            rb = rb.form(&f);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("requesting {next}"))?;
        for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((k, v)) = c
                .to_str()
                .ok()
                .and_then(|c| c.split(';').next())
                .and_then(|kv| kv.split_once('='))
            {
                cookies.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("a redirect without Location")?;
            next = reqwest::Url::parse(&next)?.join(location)?.to_string();
            method = reqwest::Method::GET;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{next} answered {status}: {text}");
        }
        if next.contains("/interaction/") && method == reqwest::Method::GET {
            let page: serde_json::Value = serde_json::from_str(&text)?;
            let base = next.split('?').next().unwrap_or(&next).to_owned();
            match page["prompt"].as_str() {
                Some("login") => {
                    next = format!("{base}/login");
                    form = Some(vec![("login", login.to_owned())]);
                }
                Some("consent") => {
                    next = format!("{base}/confirm");
                    form = Some(Vec::new());
                }
                other => bail!("unexpected prompt {other:?} at {next}"),
            }
            method = reqwest::Method::POST;
            continue;
        }
        // The client's redirect URI answered: signed in.
        return Ok(next);
    }
    bail!("too many redirects signing in at {url}")
}
