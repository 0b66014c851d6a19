//! One route list per service: each [`RouteSpec`] (method, path, who may call it, what the
//! OpenAPI document says) is added to a [`Routes`] together with its handler, so the same list
//! builds the router, the access table the middleware enforces, the OpenAPI document and the
//! rows of the authorization matrix test. A route cannot be served without a rule, nor
//! documented without being served.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;
use goose_domain::rbac::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (token exchange, health).
    Public,
    /// Any authenticated user.
    Authenticated,
    /// Users holding this permission.
    Permission(Permission),
    /// Users holding any of these; the handler checks the one the request needs.
    AnyOf(&'static [Permission]),
}

/// The HTTP methods a route may be declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }

    /// The `http` method.
    pub fn http(self) -> axum::http::Method {
        match self {
            Self::Get => axum::http::Method::GET,
            Self::Post => axum::http::Method::POST,
            Self::Put => axum::http::Method::PUT,
            Self::Patch => axum::http::Method::PATCH,
            Self::Delete => axum::http::Method::DELETE,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route of a service's API: method, path, access rule and OpenAPI operation.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: Method,
    /// As axum writes it: `/v1/users/{name}`.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Name of the request body's schema (in the OpenAPI components), if any.
    pub request: Option<&'static str>,
    /// Name of the success response's schema, if any.
    pub response: Option<&'static str>,
    /// The success status (200 unless the route creates, 201, or starts work, 202).
    pub status: u16,
    /// The success response is a list of `response`.
    pub list: bool,
    /// Statuses the route may answer besides those its shape implies (e.g. 401 from a public
    /// route that checks credentials itself).
    pub also: &'static [u16],
    /// Query parameters.
    pub query: &'static [QueryParam],
    /// Media types the success response may have besides JSON (chosen by a parameter or the
    /// `Accept` header): `text/csv`, `text/event-stream`, ...
    pub produces: &'static [&'static str],
}

/// A DNS label (RFC 1123) as Kubernetes names namespaces and service accounts.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Whether `s` is a DNS label ([`DNS_LABEL_PATTERN`]).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    !b.is_empty() && b.len() <= 63 && b.iter().all(inner) && b[0] != b'-' && b[b.len() - 1] != b'-'
}

/// A query parameter of a route, as OpenAPI documents it.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub required: bool,
    /// `integer`, `string`, `date-time` (RFC 3339) or `dns-label` (a Kubernetes name:
    /// [`DNS_LABEL_PATTERN`], at most 63 characters).
    pub kind: &'static str,
    /// For a string: the only values accepted (empty: any).
    pub values: &'static [&'static str],
    pub description: &'static str,
}

impl RouteSpec {
    pub const fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
            request: None,
            response: None,
            status: 200,
            list: false,
            also: &[],
            query: &[],
            produces: &[],
        }
    }

    pub const fn get(path: &'static str, access: Access, summary: &'static str) -> Self {
        Self::new(Method::Get, path, access, summary)
    }

    pub const fn post(path: &'static str, access: Access, summary: &'static str) -> Self {
        Self::new(Method::Post, path, access, summary)
    }

    pub const fn put(path: &'static str, access: Access, summary: &'static str) -> Self {
        Self::new(Method::Put, path, access, summary)
    }

    pub const fn delete(path: &'static str, access: Access, summary: &'static str) -> Self {
        Self::new(Method::Delete, path, access, summary)
    }

    /// The request body's schema (a name in the OpenAPI components).
    pub const fn body(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self
    }

    /// The success response's schema (a name in the OpenAPI components).
    pub const fn returns(mut self, schema: &'static str) -> Self {
        self.response = Some(schema);
        self
    }

    /// The success status, when not 200.
    pub const fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The success response is a list of `schema`.
    pub const fn returns_many(mut self, schema: &'static str) -> Self {
        self.response = Some(schema);
        self.list = true;
        self
    }

    /// Statuses the route may answer besides those its shape implies.
    pub const fn also(mut self, statuses: &'static [u16]) -> Self {
        self.also = statuses;
        self
    }

    /// Media types the success response may have besides JSON.
    pub const fn produces(mut self, media_types: &'static [&'static str]) -> Self {
        self.produces = media_types;
        self
    }

    /// The route's query parameters.
    pub const fn query(mut self, params: &'static [QueryParam]) -> Self {
        self.query = params;
        self
    }
}

/// A service's REST API as one list of (spec, handler).
#[derive(Debug)]
pub struct Routes<S> {
    specs: Vec<RouteSpec>,
    router: Router<S>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self {
            specs: Vec::new(),
            router: Router::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one route: `handler` serves `spec.method` on `spec.path`.
    ///
    /// # Panics
    /// When the same method and path are added twice (axum refuses overlapping routes) — a
    /// programming error every test of the service finds at once.
    #[must_use]
    pub fn route<H, T>(mut self, spec: RouteSpec, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self
            .router
            .route(spec.path, on(spec.method.filter(), handler));
        self.specs.push(spec);
        self
    }

    /// The list, for the access table, the OpenAPI document and the matrix test.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The router (state still to be supplied) and the specs.
    pub fn into_parts(self) -> (Router<S>, Vec<RouteSpec>) {
        (self.router, self.specs)
    }
}
