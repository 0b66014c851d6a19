//! The event contract as published: docs/events.md is the AsyncAPI document rendered, and the
//! document names a channel, a message and a payload schema for every event type.

#[test]
fn docs_events_md_is_the_rendered_asyncapi_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
    let expected = goose_platform::asyncapi::markdown("goose.evt");
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/events.md is stale: run `goosectl asyncapi --markdown > docs/events.md`"
    );
}

#[test]
fn every_channel_has_a_message_with_a_resolvable_payload_schema() {
    let doc = goose_platform::asyncapi::document("goose.evt");
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = doc["channels"].as_object().unwrap();
    assert!(channels.len() >= 27, "{}", channels.len());
    for (id, channel) in channels {
        let address = channel["address"].as_str().unwrap();
        let ty = id.rsplit('.').next().unwrap();
        assert!(
            address.starts_with("goose.evt.") && address.ends_with(ty),
            "{address}"
        );
        let message = &doc["components"]["messages"][id];
        let schema_ref = message["payload"]["schema"]["$ref"].as_str().unwrap();
        let name = schema_ref.rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "{id}: no schema {name}");
        // The payload's `type` tag is the event type (the subject's last token).
        let tag = schema
            .pointer("/properties/type/enum/0")
            .or_else(|| schema.pointer("/allOf/1/properties/type/enum/0"));
        assert_eq!(tag.and_then(|t| t.as_str()), Some(ty), "{id}: {schema}");
    }
}

/// Every service's OpenAPI document (and `goosectl dev`'s merged one) is valid OpenAPI 3.1
/// by an independent validator (PyPI `openapi-spec-validator`), and documents the success
/// status each route really answers with.
#[test]
fn the_openapi_documents_are_valid() {
    let python = goose_testkit::python_env(&["openapi-spec-validator>=0.7,<0.8"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, doc) in [
        ("rbac", goose_rbac::openapi()),
        ("registry", goose_registry::openapi()),
        ("evidence", goose_evidence_service::openapi()),
        ("orchestrator", goose_orchestrator::openapi()),
    ] {
        let json = serde_json::to_value(&doc).unwrap();
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
        let out = std::process::Command::new(python.with_file_name("openapi-spec-validator"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if name == "orchestrator" {
            let ok = |path: &str, method: &str, status: &str| {
                assert!(
                    json["paths"][path][method]["responses"][status].is_object(),
                    "{method} {path} documents {status}"
                );
            };
            ok("/v1/promotions", "post", "202");
            ok("/v1/packages", "post", "201");
            ok("/v1/packages/{id}/promote", "post", "202");
            ok("/v1/promotions/{id}", "get", "404");
            let id = &json["paths"]["/v1/promotions/{id}"]["get"]["parameters"][0]["schema"];
            assert!(
                id["pattern"].as_str().unwrap().starts_with("^[0-9a-f]{8}"),
                "{id}"
            );
        }
    }
}
