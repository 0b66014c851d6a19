//! The AsyncAPI 3 document of the events on the bus, generated from the domain's event enums
//! (`goose_domain::events`): one channel per event type (`<prefix>.<aggregate>.<type>`), its
//! CloudEvents headers, and a JSON Schema for each event type's payload. Served at
//! `/asyncapi.json`; docs/events.md is rendered from it (`goosectl asyncapi --markdown`).

use goose_domain::events::{families, Family};
use serde_json::{json, Map, Value};

/// Content type of a message body: the canonical record (docs/chain-format.md), whose
/// payload field is the event's JSON.
pub const RECORD_CONTENT_TYPE: &str = "application/vnd.golden-goose.record.v2";

/// The variants of an event enum's schema: `(type name, schema)`.
fn variants(f: &Family) -> Vec<(String, Value)> {
    let items = f
        .schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![f.schema.clone()]);
    items
        .into_iter()
        .filter_map(|item| Some((type_name(&item)?, item)))
        .collect()
}

/// The `type` tag a variant's schema fixes (found wherever it sits: the object itself or one
/// part of an `allOf`).
fn type_name(schema: &Value) -> Option<String> {
    if let Some(t) = schema
        .pointer("/properties/type/enum/0")
        .and_then(Value::as_str)
    {
        return Some(t.to_owned());
    }
    schema
        .get("allOf")
        .and_then(Value::as_array)?
        .iter()
        .find_map(type_name)
}

fn headers_schema() -> Value {
    json!({
        "type": "object",
        "description": "CloudEvents 1.0 attributes in NATS headers (binary content mode), plus the event's log position.",
        "required": ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-subject", "ce-time", "Nats-Msg-Id", "Goose-Position"],
        "properties": {
            "ce-specversion": {"const": "1.0"},
            "ce-id": {"type": "string", "format": "uuid", "description": "The event id (UUIDv7); equals Nats-Msg-Id."},
            "ce-type": {"type": "string", "description": "The event type: the payload's `type` and the subject's last token."},
            "ce-source": {"const": goose_bus::jetstream::CE_SOURCE},
            "ce-subject": {"type": "string", "description": "The stream: `<aggregate>/<id>`."},
            "ce-time": {"type": "string", "format": "date-time", "description": "When the event was recorded (RFC 3339)."},
            "Nats-Msg-Id": {"type": "string", "description": "The event id: JetStream drops duplicates by it."},
            "Goose-Position": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's position in the log (also inside the record)."}
        }
    })
}

/// The document, for events published under `subject_prefix` (default `goose.evt`).
pub fn document(subject_prefix: &str) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    schemas.insert("CloudEventsHeaders".into(), headers_schema());
    for f in families() {
        for (name, schema) in &f.components {
            schemas.insert(name.clone(), schema.clone());
        }
        for (ty, schema) in variants(&f) {
            let id = format!("{}.{ty}", f.aggregate);
            let schema_name = format!("{}.{ty}", f.name);
            schemas.insert(schema_name.clone(), schema);
            messages.insert(
                id.clone(),
                json!({
                    "name": ty,
                    "title": format!("{ty} ({} stream)", f.aggregate),
                    "summary": format!("Written by {} to `{}/<id>` streams.", f.writer, f.aggregate),
                    "contentType": RECORD_CONTENT_TYPE,
                    "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                    "payload": {
                        "schemaFormat": "application/schema+json;version=draft-2020-12",
                        "schema": {"$ref": format!("#/components/schemas/{schema_name}")}
                    },
                    "x-goose-aggregate": f.aggregate,
                    "x-goose-writer": f.writer,
                    "x-goose-event-enum": f.name,
                }),
            );
            channels.insert(
                id.clone(),
                json!({
                    "address": format!("{subject_prefix}.{}.{ty}", f.aggregate),
                    "messages": {ty.clone(): {"$ref": format!("#/components/messages/{id}")}},
                }),
            );
            operations.insert(
                format!("receive.{id}"),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{id}")},
                    "messages": [{"$ref": format!("#/channels/{id}/messages/{ty}")}],
                }),
            );
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Golden Goose events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Every committed ledger event is published once to NATS JetStream (stream `GOOSE_EVENTS` by default) on `{subject_prefix}.<aggregate>.<type>`. \
    The body is the canonical record ({RECORD_CONTENT_TYPE}, docs/chain-format.md): its SHA3-256 is the event's leaf in the log, and its payload field is JSON valid against the message's payload schema. \
    Headers carry CloudEvents 1.0 attributes (binary mode). A message may be delivered more than once (dedupe by ce-id) and, across subjects, out of order (order by Goose-Position)."
            )
        },
        "defaultContentType": RECORD_CONTENT_TYPE,
        "servers": {
            "nats": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "The deployment's NATS server (JetStream)."}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas}
    })
}

/// docs/events.md: the document as a table per aggregate.
pub fn markdown(subject_prefix: &str) -> String {
    let mut out = String::from(
        "# Events\n\n<!-- Generated by `goosectl asyncapi --markdown`; a test fails when it is stale. -->\n\n\
Every committed event is published on NATS JetStream. The machine-readable contract is the AsyncAPI 3 document every \
service serves at `/asyncapi.json` (also `goosectl asyncapi`): one channel per event type, the CloudEvents headers, \
and a JSON Schema per payload.\n\n\
- Subject: `<prefix>.<aggregate>.<type>` (prefix `goose.evt` by default).\n\
- Body: the canonical record (`application/vnd.golden-goose.record.v2`, [chain-format.md](chain-format.md)); \
its SHA3-256 is the event's Merkle leaf, its payload field is the event's JSON.\n\
- Headers: `ce-specversion` (1.0), `ce-id` (= `Nats-Msg-Id`, the event id), `ce-type`, `ce-source` \
(`urn:golden-goose:ledger`), `ce-subject` (the stream), `ce-time`, `Goose-Position`.\n\
- Delivery: at least once (dedupe by `ce-id`); order by `Goose-Position`.\n",
    );
    for f in families() {
        out.push_str(&format!(
            "\n## `{}` streams — {} (written by {})\n\n| Type | Subject | Fields |\n|---|---|---|\n",
            f.aggregate, f.name, f.writer
        ));
        for (ty, schema) in variants(&f) {
            let fields = field_names(&schema).join(", ");
            out.push_str(&format!(
                "| {ty} | `{subject_prefix}.{}.{ty}` | {fields} |\n",
                f.aggregate
            ));
        }
    }
    out
}

fn field_names(schema: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        names.extend(
            props
                .keys()
                .filter(|k| *k != "type")
                .map(|k| format!("`{k}`")),
        );
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        names.push(format!("see `{}`", r.rsplit('/').next().unwrap_or(r)));
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        names.extend(field_names(part));
    }
    names
}
