//! `docs/openapi.json` against the code: the route table (`ROUTES`), the error-to-wire map,
//! and the copy `local-api` serves at `GET /auth/v1/openapi.json`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use shared::error::AuthError;
use shared::http::routes::ROUTES;
use test_support::server::{Backend, Server};

const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document_text() -> String {
    std::fs::read_to_string(DOCUMENT_PATH)
        .unwrap_or_else(|e| panic!("cannot read {DOCUMENT_PATH}: {e}"))
}

fn document() -> Value {
    serde_json::from_str(&document_text()).expect("docs/openapi.json is JSON")
}

/// Follows a local `$ref` (`#/components/...`) until a value without one.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are used: {reference}"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} points at nothing"));
    }
    panic!("a reference chain is too long")
}

/// Every operation of the document: (METHOD, path) → operation object.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut found = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("paths is an object");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (key, operation) in item {
            if METHODS.contains(&key.as_str()) {
                found.insert((key.to_uppercase(), path.clone()), operation);
            } else {
                assert!(
                    ["parameters", "summary", "description", "servers"].contains(&key.as_str()),
                    "unexpected key {key} under {path}"
                );
            }
        }
    }
    found
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_a_route() {
    let doc = document();
    let documented = operations(&doc);
    let documented_keys: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_uppercase(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented_keys).collect();
    let unrouted: Vec<_> = documented_keys.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/openapi.json and ROUTES drifted apart.\n  routes missing from the document: \
         {undocumented:?}\n  documented operations that are no route: {unrouted:?}"
    );
    assert_eq!(
        documented.len(),
        ROUTES.len(),
        "a route is in ROUTES twice or the document lists one twice"
    );
    for route in ROUTES {
        let operation = documented[&(route.method.to_uppercase(), route.path.to_string())];
        assert_eq!(
            operation["operationId"].as_str(),
            Some(format!("{:?}", route.operation).as_str()),
            "operationId of {} {} is not its routes::Operation",
            route.method,
            route.path
        );
        assert_eq!(
            operation["x-lambda-function"].as_str(),
            Some(route.function),
            "x-lambda-function of {} {} is not the function that serves it",
            route.method,
            route.path
        );
    }
}

#[test]
fn path_parameters_are_declared_exactly() {
    let doc = document();
    for ((method, path), operation) in operations(&doc) {
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(
                    p["required"], true,
                    "{method} {path}: path parameters are required"
                );
                p["name"].as_str().expect("a parameter has a name")
            })
            .collect();
        assert_eq!(in_path, declared, "{method} {path}");
    }
}

#[test]
fn every_operation_answers_json_and_refuses_in_the_error_shape() {
    let doc = document();
    let error_schema = &doc["components"]["schemas"]["Error"];
    assert_eq!(
        error_schema["required"],
        serde_json::json!(["error", "error_description"])
    );
    for ((method, path), operation) in operations(&doc) {
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses.contains_key("200"),
            "{method} {path} has no 200 answer"
        );
        for status in ["500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path} does not document {status}"
            );
        }
        for (status, response) in responses {
            let response = resolve(&doc, response);
            let schema = &response["content"]["application/json"]["schema"];
            assert!(
                schema.is_object(),
                "{method} {path} {status}: no application/json body"
            );
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{method} {path} {status}: x-request-id is not documented"
            );
            if status != "200" {
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status}: a refusal must be the Error shape"
                );
            }
            if status == "429" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path}: 429 without Retry-After"
                );
            }
        }
        if let Some(body) = operation.get("requestBody") {
            let content = &resolve(&doc, body)["content"];
            for media in ["application/json", "text/plain"] {
                assert!(
                    content[media]["schema"].is_object(),
                    "{method} {path}: the request body is not described as {media}"
                );
            }
        } else {
            assert!(
                method == "GET" || method == "DELETE",
                "{method} {path} has no request body"
            );
        }
    }
}

#[test]
fn signed_in_operations_name_the_bearer_scheme() {
    let doc = document();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for ((method, path), operation) in operations(&doc) {
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} states no security"));
        for requirement in security {
            for scheme in requirement.as_object().expect("a requirement").keys() {
                assert_eq!(scheme, "bearer", "{method} {path}: unknown scheme {scheme}");
            }
        }
        // What the SDK calls under `/user/` needs the caller signed in, except sign-out,
        // which also takes a refresh token in the body.
        if path.starts_with("/auth/v1/user/") && path != "/auth/v1/user/signout" {
            assert_eq!(
                operation["security"],
                serde_json::json!([{"bearer": []}]),
                "{method} {path} must require a bearer token"
            );
        }
    }
}

/// Every `AuthError` the code has, so that a new one fails to compile here until the
/// document's error names are checked against it.
fn every_error() -> Vec<AuthError> {
    let all = vec![
        AuthError::InvalidArgument("x".into()),
        AuthError::MethodNotAllowed,
        AuthError::BodyTooLarge,
        AuthError::RequestTimeout,
        AuthError::InvalidPassword("x"),
        AuthError::InvalidVerificationCode,
        AuthError::Unauthenticated("x"),
        AuthError::InvalidGrant,
        AuthError::InvalidUsernameOrPassword,
        AuthError::PermissionDenied("x"),
        AuthError::NotFound("x"),
        AuthError::AlreadyExists("x"),
        AuthError::FailedPrecondition("x"),
        AuthError::ResourceExhausted {
            retry_after_secs: 1,
        },
        AuthError::Unavailable("x".into()),
        AuthError::Internal("x".into()),
    ];
    for err in &all {
        // Exhaustive on purpose: a new variant stops this from compiling.
        match err {
            AuthError::InvalidArgument(_)
            | AuthError::MethodNotAllowed
            | AuthError::BodyTooLarge
            | AuthError::RequestTimeout
            | AuthError::InvalidPassword(_)
            | AuthError::InvalidVerificationCode
            | AuthError::Unauthenticated(_)
            | AuthError::InvalidGrant
            | AuthError::InvalidUsernameOrPassword
            | AuthError::PermissionDenied(_)
            | AuthError::NotFound(_)
            | AuthError::AlreadyExists(_)
            | AuthError::FailedPrecondition(_)
            | AuthError::ResourceExhausted { .. }
            | AuthError::Unavailable(_)
            | AuthError::Internal(_) => {}
        }
    }
    all
}

#[test]
fn error_names_and_statuses_match_the_wire_map() {
    let doc = document();
    let documented_names: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]
        ["error"]["enum"]
        .as_array()
        .expect("Error.error is an enum")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    let mut wire_names = BTreeSet::new();
    let documented_statuses: BTreeSet<u16> = operations(&doc)
        .values()
        .flat_map(|op| op["responses"].as_object().expect("responses").keys())
        .filter_map(|status| status.parse().ok())
        .collect();
    for err in every_error() {
        let wire = shared::http::error::to_wire(&err, "0123456789abcdef0123456789abcdef");
        wire_names.insert(wire.error);
        // 405 answers a method a path does not have: no operation of the document has it.
        if !matches!(err, AuthError::MethodNotAllowed) {
            assert!(
                documented_statuses.contains(&wire.status.as_u16()),
                "{err:?} answers {} which no operation documents",
                wire.status
            );
        }
    }
    assert_eq!(
        documented_names, wire_names,
        "the Error schema's names and shared::http::error::to_wire differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_api_serves_the_document_byte_for_byte() {
    let server = Server::start(env!("CARGO_BIN_EXE_local-api"), Backend::Embedded, &[]).await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let answer = client
        .get(format!("{}/auth/v1/openapi.json", server.origin))
        .send()
        .await
        .expect("GET /auth/v1/openapi.json");
    assert_eq!(answer.status(), 200);
    assert!(answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    let served = answer.text().await.expect("a body");
    assert!(
        served == document_text(),
        "local-api serves another document than docs/openapi.json: rebuild it"
    );
    // It is not a route: the Lambda functions answer 404 for it, and so must the table.
    assert!(matches!(
        shared::http::routes::find(ROUTES, "GET", "/auth/v1/openapi.json"),
        shared::http::routes::Match::None
    ));
}
