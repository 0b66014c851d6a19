//! The OpenAPI 3 document of a service, built from its [`RouteSpec`] table (the same table
//! the authorization middleware enforces) and its schemas (utoipa `ToSchema` derives).

use crate::routes::{Access, Method, RouteSpec};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required,
    ResponseBuilder, ResponsesBuilder,
};

fn method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Delete => HttpMethod::Delete,
        Method::Patch => HttpMethod::Patch,
    }
}

fn access_text(a: Access) -> String {
    match a {
        Access::Public => "Public: no token needed.".into(),
        Access::Authenticated => "Any authenticated user.".into(),
        Access::Permission(p) => format!("Requires permission `{p}`."),
        Access::AnyOf(ps) => format!(
            "Requires one of {} (which one depends on the request).",
            ps.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The schema of a path parameter: the pattern the server enforces for it, so a client
/// generated from the document never sends what the server refuses.
fn path_param(path: &str, name: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::Type;
    let string = utoipa::openapi::ObjectBuilder::new().schema_type(Type::String);
    const SERVICE: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
    const USER: &str = "^[a-z][a-z0-9._-]{0,63}$";
    const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    match name {
        "name" if path.starts_with("/v1/users/") => string.pattern(Some(USER)),
        "name" | "service" => string.pattern(Some(SERVICE)),
        "version" => string.pattern(Some("^[A-Za-z0-9._+-]{1,64}$")),
        "id" | "event_id" => string.pattern(Some(UUID)),
        "digest" => string.pattern(Some("^[0-9a-f]{64}$")),
        "key_id" => string.pattern(Some("^[0-9a-f]{8}$")),
        "role" => string.enum_values(Some(
            goose_domain::rbac::Role::ALL.iter().map(|r| r.as_str()),
        )),
        _ => string,
    }
    .build()
}

/// Builds the document.
pub fn document(title: &str, routes: &[RouteSpec], schemas: Option<Components>) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for r in routes {
        let mut op = OperationBuilder::new()
            .summary(Some(r.summary))
            .description(Some(access_text(r.access)))
            .operation_id(Some(format!(
                "{}_{}",
                r.method.as_str().to_lowercase(),
                r.path.trim_matches('/').replace(['/', '{', '}', '-'], "_")
            )));
        for seg in r.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(path_param(r.path, name))),
                );
            }
        }
        for q in r.query {
            let schema =
                utoipa::openapi::ObjectBuilder::new().schema_type(if q.kind == "integer" {
                    utoipa::openapi::schema::Type::Integer
                } else {
                    utoipa::openapi::schema::Type::String
                });
            op = op.parameter(
                ParameterBuilder::new()
                    .name(q.name)
                    .parameter_in(ParameterIn::Query)
                    .required(if q.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(q.description))
                    .schema(Some(match q.kind {
                        "integer" => schema.minimum(Some(0)),
                        "dns-label" => schema.pattern(Some(crate::routes::DNS_LABEL_PATTERN)),
                        "date-time" => {
                            schema.format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                utoipa::openapi::KnownFormat::DateTime,
                            )))
                        }
                        _ if !q.values.is_empty() => {
                            schema.enum_values(Some(q.values.iter().copied()))
                        }
                        _ => schema,
                    })),
            );
        }
        if let Some(req) = r.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(req)))
                            .build(),
                    )
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        let ok = match (r.response, r.list) {
            (Some(s), false) => ResponseBuilder::new().description("Success").content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(s)))
                    .build(),
            ),
            (Some(s), true) => ResponseBuilder::new().description("Success").content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ArrayBuilder::new().items(Ref::from_schema_name(s)),
                    ))
                    .build(),
            ),
            (None, _) => ResponseBuilder::new().description("Success"),
        };
        let ok = r.produces.iter().fold(ok, |ok, media_type| {
            ok.content(*media_type, ContentBuilder::new().build())
        });
        let problem = |d: &str| {
            ResponseBuilder::new().description(d).content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
        };
        let mut responses = ResponsesBuilder::new()
            .response(r.status.to_string(), ok)
            .response(
                "400",
                problem("Invalid request: the detail says what is wrong"),
            );
        if r.access != Access::Public {
            responses = responses
                .response("401", problem("Missing, expired or invalid token"))
                .response(
                    "403",
                    problem("The caller lacks the permission; the detail names it"),
                )
                .response(
                    "503",
                    problem("The ledger or a service it needs is unavailable, or the read model is behind (Retry-After)"),
                );
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        if r.path.contains('{') {
            responses = responses.response("404", problem("No such resource"));
        }
        if r.request.is_some() {
            responses = responses.response("415", problem("The body is not `application/json`"));
        }
        for status in r.also {
            let what = match status {
                401 => "Credentials refused",
                409 => "Conflicts with the current state",
                429 => "Too many requests (Retry-After)",
                _ => "See the detail",
            };
            responses = responses.response(status.to_string(), problem(what));
        }
        if r.method != Method::Get {
            responses = responses
                .response(
                    "409",
                    problem("Conflicts with the current state (the detail says with what)"),
                )
                .response("413", problem("The body is over the limit"))
                .response(
                    "422",
                    problem("Well-formed but refused by a rule (the detail names it)"),
                )
                .response(
                    "429",
                    problem("Over the rate limit of this address or user (Retry-After)"),
                );
        }
        op = op.responses(responses.build());
        paths = paths.path(r.path, PathItem::new(method(r.method), op.build()));
    }
    let mut components = schemas.unwrap_or_default();
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.schemas.insert(
        "Problem".into(),
        utoipa::openapi::RefOr::T(
            <crate::problem::Problem as utoipa::PartialSchema>::schema().into(),
        ),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}
