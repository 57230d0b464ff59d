//! `openapi.yaml` describes exactly the routes the server has, and the server serves it.

use std::collections::BTreeSet;

use colloquy_core::api::ROUTES;
use colloquy_tests::spawn_app;
use serde_yaml::Value;

fn document() -> Value {
    serde_yaml::from_str(colloquy::server::OPENAPI).expect("openapi.yaml is YAML")
}

#[test]
fn the_document_has_exactly_the_routes_of_the_route_table() {
    let document = document();
    assert_eq!(document["openapi"].as_str(), Some("3.1.0"));
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(move |(m, _)| (m.to_string(), (*path).to_owned())))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn every_operation_documents_its_errors_and_path_parameters() {
    let document = document();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        for (method, operation) in item.as_mapping().unwrap() {
            let responses = operation["responses"].as_mapping().unwrap();
            assert!(responses.keys().any(|k| k.as_str() == Some("401")), "{method:?} {path}: 401");
            let success = responses.keys().filter_map(|k| k.as_str()).any(|k| k.starts_with('2'));
            assert!(success, "{method:?} {path}: a success status");
            let yaml = serde_yaml::to_string(&operation["parameters"]).unwrap();
            for name in path.split('{').skip(1).map(|p| p.split('}').next().unwrap()) {
                let named = yaml.contains(&format!("name: {name}"))
                    || yaml.contains(&format!("parameters/{}", to_component(name)));
                assert!(named, "{method:?} {path}: path parameter {name}");
            }
        }
    }
}

#[test]
fn each_operation_names_the_keys_its_route_takes_and_extensions_are_marked() {
    use colloquy_core::api::{Access, Endpoint};
    let document = document();
    for (path, methods) in ROUTES.iter() {
        for (method, endpoint) in methods {
            let operation = &document["paths"][*path][method.as_str().to_lowercase()];
            let schemes: BTreeSet<String> = match operation["security"].as_sequence() {
                Some(list) => list
                    .iter()
                    .flat_map(|s| s.as_mapping().unwrap().keys())
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect(),
                None => ["appKey".to_owned()].into(),
            };
            let expected: BTreeSet<String> = match endpoint.access() {
                Access::AppKey => ["appKey"].map(str::to_owned).into(),
                Access::AnyKey => ["appKey", "operatorKey"].map(str::to_owned).into(),
                Access::OperatorKey => ["operatorKey"].map(str::to_owned).into(),
            };
            assert_eq!(schemes, expected, "{method} {path}");
            if endpoint.access() == Access::OperatorKey || *endpoint == Endpoint::FileUploadUrl {
                assert_eq!(operation["x-colloquy-extension"].as_bool(), Some(true), "{method} {path}");
            }
        }
    }
}

/// The `components/parameters` entry a path parameter refers to.
#[test]
fn the_audit_log_documents_every_action() {
    let document = document();
    let documented: BTreeSet<String> = document["components"]["schemas"]["AuditEntry"]["properties"]["action"]["enum"]
        .as_sequence()
        .expect("an enum of actions")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let actions: BTreeSet<String> = colloquy_core::domain::AuditAction::all().map(|a| a.as_str().to_owned()).collect();
    assert_eq!(documented, actions);
}

fn to_component(name: &str) -> String {
    match name {
        "conversation_id" => "ConversationId".into(),
        "message_id" => "MessageId".into(),
        "annotation_id" => "AnnotationId".into(),
        "action" => "ReplyAction".into(),
        other => other.into(),
    }
}

#[tokio::test]
async fn the_local_server_serves_the_document() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    assert_eq!(response.text().await.unwrap(), colloquy::server::OPENAPI);
}
