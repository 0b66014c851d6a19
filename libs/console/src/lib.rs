//! The web console (docs/console.md): a Preact + TypeScript front end in `web/`, built by
//! esbuild into `web/dist/` (committed; `web/build.mjs --check` in the tests keeps it equal to
//! its sources), embedded here and served at `/` next to the APIs it calls.
//!
//! The browser talks to the same origin's REST API with a bearer token it keeps in memory;
//! this crate only serves files, with a content security policy that allows nothing but this
//! origin (and the token endpoints of the configured OpenID providers, for sign-in).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The bundle, as `web/build.mjs` writes it.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../web/dist/index.html"),
    },
    Asset {
        path: "/console/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/dist/app.js"),
    },
    Asset {
        path: "/console/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/dist/app.css"),
    },
];

/// What the console's policy must allow beyond its own origin.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// Origins (`https://idp.example`) of the OpenID providers people sign in with: the
    /// browser fetches their discovery documents and redeems codes at their token endpoints.
    pub sso_origins: Vec<String>,
}

/// The content security policy: scripts, styles, images and connections from this origin
/// only (plus the providers' origins for `fetch`); no framing, no plugins, no inline code.
pub fn content_security_policy(config: &ConsoleConfig) -> String {
    let mut connect = String::from("'self'");
    for origin in &config.sso_origins {
        // An origin with characters a policy cannot carry is left out (sign-in with that
        // provider then fails visibly in the browser) rather than corrupting the policy.
        if origin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/.-_[]".contains(c))
        {
            connect.push(' ');
            connect.push_str(origin);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The console's routes: `/` and its two files.
pub fn router(config: &ConsoleConfig) -> Router {
    let csp = HeaderValue::from_str(&content_security_policy(config))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let mut router = Router::new();
    for asset in ASSETS {
        let csp = csp.clone();
        router = router.route(asset.path, get(move || async move { serve(asset, csp) }));
    }
    router
}

fn serve(asset: &'static Asset, csp: HeaderValue) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CONTENT_SECURITY_POLICY, csp),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // Always revalidate: a new binary must not run with an old script.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_this_origin_and_the_providers() {
        let csp = content_security_policy(&ConsoleConfig {
            sso_origins: vec![
                "https://idp.example".into(),
                "https://x; script-src *".into(),
            ],
        });
        assert!(
            csp.contains("connect-src 'self' https://idp.example;"),
            "{csp}"
        );
        assert!(!csp.contains("script-src *"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }

    #[test]
    fn the_bundle_is_embedded_and_the_page_loads_only_its_own_files() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap_or_default();
        assert!(index.contains("/console/app.js"), "{index}");
        assert!(
            !index.contains("http://") && !index.contains("https://"),
            "{index}"
        );
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
    }
}
