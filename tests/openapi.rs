//! The committed OpenAPI document must match the code. Regenerate with
//! `cargo run -- openapi > openapi/openapi.json`.

#[test]
fn committed_spec_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let generated = switchboard::http::openapi::spec_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_reference_resolves_and_every_operation_documents_errors() {
    let spec: serde_json::Value =
        serde_json::from_str(&switchboard::http::openapi::spec_json()).expect("json");
    let text = spec.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "unresolved $ref {name}"
        );
    }
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses
                    .keys()
                    .any(|k| k.starts_with('2') || k.starts_with('3')),
                "{method} {path} documents no success"
            );
            if path.starts_with("/api/") {
                assert!(
                    responses.keys().any(|k| k.starts_with('4')),
                    "{method} {path} documents no error"
                );
            }
        }
    }
}
