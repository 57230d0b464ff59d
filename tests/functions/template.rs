//! `template.yaml` matches the code: one function per endpoint with exactly its routes, the
//! streaming and purge functions, and the table as the DynamoDB store creates it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use colloquy_aws::dynamo::{APP_INDEX, INDEXES, TTL_ATTRIBUTE};
use colloquy_aws::s3::LIFECYCLE_RULES;
use colloquy_core::api::Endpoint;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap())
        .expect("template.yaml is YAML")
}

/// (binary, resource) for every function of the template.
fn functions(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
        .map(|r| (r["Metadata"]["BuildProperties"]["Binary"].as_str().expect("a Binary").to_owned(), r.clone()))
        .collect()
}

fn http_routes(function: &Value) -> BTreeSet<(String, String)> {
    function["Properties"]["Events"]
        .as_mapping()
        .map(|events| {
            events
                .values()
                .filter(|e| e["Type"] == "HttpApi")
                .map(|e| {
                    (
                        e["Properties"]["Method"].as_str().unwrap().to_owned(),
                        e["Properties"]["Path"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_endpoint_has_its_function_with_exactly_its_routes() {
    let template = template();
    let functions = functions(&template);
    for endpoint in Endpoint::all() {
        let name = endpoint.function_name();
        let (_, function) =
            functions.iter().find(|(binary, _)| binary == name).unwrap_or_else(|| panic!("no function {name}"));
        // HEAD is served wherever GET is.
        let expected: BTreeSet<(String, String)> = endpoint
            .routes()
            .into_iter()
            .flat_map(|(m, p)| {
                let head = (m == http::Method::GET).then(|| ("HEAD".to_owned(), p.to_owned()));
                std::iter::once((m.to_string(), p.to_owned())).chain(head)
            })
            .collect();
        assert_eq!(http_routes(function), expected, "{name}");
        let main =
            std::fs::read_to_string(root().join(format!("functions/{name}/src/main.rs"))).expect("the package exists");
        // Wiring only: which clients the function builds follows from its endpoint's spec
        // (models and speech only where used; the glue's own tests check that).
        assert!(
            main.contains(&format!("colloquy_lambda::serve!({endpoint:?})")),
            "functions/{name} serves {endpoint:?}"
        );
        let uses_bedrock =
            serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap().contains("bedrock:InvokeModel");
        assert_eq!(uses_bedrock, endpoint.uses_models(), "{name}: Bedrock access only where a model is used");
        let policies = serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap();
        assert_eq!(policies.contains("polly:"), endpoint.uses_text_to_speech(), "{name}: Polly only for text to audio");
        assert_eq!(
            policies.contains("transcribe:"),
            endpoint.uses_speech_to_text(),
            "{name}: Transcribe only for audio to text"
        );
        assert_eq!(
            policies.contains("s3:"),
            endpoint.needs().blobs,
            "{name}: the bucket only where files are kept or read"
        );
    }
    let packages: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let declared: BTreeSet<String> = functions.iter().map(|(binary, _)| binary.clone()).collect();
    assert_eq!(declared, packages, "every package is deployed and every deployed binary is a package");
}

#[test]
fn streaming_chat_and_the_purge_are_wired() {
    let template = template();
    let functions = functions(&template);
    let find = |name: &str| functions.iter().find(|(b, _)| b == name).map(|(_, f)| f.clone()).unwrap();
    let stream = find("chat-messages-stream");
    assert_eq!(stream["Properties"]["FunctionUrlConfig"]["InvokeMode"], "RESPONSE_STREAM");
    let main = std::fs::read_to_string(root().join("functions/chat-messages-stream/src/main.rs")).unwrap();
    assert!(main.contains("colloquy_lambda::serve_streaming!(ChatMessages)"));
    let purge = find("purge-conversation");
    let event = &purge["Properties"]["Events"]["Tombstones"];
    assert_eq!(event["Type"], "DynamoDB");
    assert!(
        event["Properties"]["FunctionResponseTypes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
    );
    let pattern = event["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"].as_str().unwrap();
    assert!(pattern.contains(r#""deleted": {"BOOL": [true]}"#));
}

#[test]
fn the_table_is_the_one_the_store_creates() {
    let template = template();
    let table = &template["Resources"]["Table"]["Properties"];
    let indexes: Vec<(String, String)> = table["LocalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["IndexName"].as_str().unwrap().to_owned(),
                i["KeySchema"][1]["AttributeName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = INDEXES.iter().map(|(i, k)| ((*i).to_owned(), (*k).to_owned())).collect();
    assert_eq!(indexes, expected);
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], TTL_ATTRIBUTE);
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    let global = table["GlobalSecondaryIndexes"].as_sequence().expect("the app-wide index");
    assert_eq!(global.len(), 1);
    assert_eq!(global[0]["IndexName"], APP_INDEX.0);
    assert_eq!(global[0]["KeySchema"][0]["AttributeName"], APP_INDEX.1);
    assert_eq!(global[0]["KeySchema"][1]["AttributeName"], APP_INDEX.2);
    assert_eq!(global[0]["Projection"]["ProjectionType"], "ALL");
}

#[tokio::test]
async fn the_buckets_lifecycle_is_the_one_aws_init_sets() {
    let template = template();
    let rules = template["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"].as_sequence().unwrap();
    let declared: Vec<(String, String, i32)> = rules
        .iter()
        .map(|r| {
            let days = r["ExpirationInDays"].as_i64().unwrap() as i32;
            (r["Id"].as_str().unwrap().to_owned(), r["Prefix"].as_str().unwrap().to_owned(), days)
        })
        .collect();
    let mirrored: Vec<(String, String, i32)> =
        LIFECYCLE_RULES.iter().map(|(id, prefix, days)| ((*id).to_owned(), (*prefix).to_owned(), *days)).collect();
    assert_eq!(declared, mirrored);
    // What `colloquy aws init` sets is what the bucket then has (on moto).
    let bucket = colloquy_tests::aws::s3_blobs().await;
    bucket.apply_lifecycle().await.unwrap();
    assert_eq!(bucket.lifecycle().await.unwrap(), mirrored);
}

#[test]
fn operator_functions_write_the_audit_log_and_app_key_functions_do_not() {
    let template = template();
    let functions = functions(&template);
    for endpoint in Endpoint::all() {
        let (_, function) = functions.iter().find(|(binary, _)| binary == endpoint.function_name()).unwrap();
        let statements = function["Properties"]["Policies"][0]["Statement"].as_sequence().unwrap();
        let audit_scoped = statements.iter().any(|s| {
            s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0] == "AUDIT#*"
                && s["Action"].as_sequence().unwrap().iter().all(|a| a == "dynamodb:PutItem")
        });
        let puts_anywhere = statements.iter().any(|s| {
            s["Condition"].is_null() && s["Action"].as_sequence().unwrap().iter().any(|a| a == "dynamodb:PutItem")
        });
        if endpoint.audited() {
            assert!(audit_scoped || puts_anywhere, "{}: records its requests", endpoint.function_name());
        } else {
            assert!(!audit_scoped, "{}: writes no audit log", endpoint.function_name());
        }
    }
}

#[test]
fn every_function_that_authenticates_can_note_a_keys_use_and_no_more() {
    let template = template();
    for (binary, function) in functions(&template) {
        // The stream consumers serve no requests.
        if ["purge-conversation", "run-export", "run-erasure", "console"].contains(&binary.as_str()) {
            continue;
        }
        let statements = function["Properties"]["Policies"][0]["Statement"].as_sequence().unwrap().clone();
        let updates: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Action"].as_sequence().unwrap().iter().any(|a| a == "dynamodb:UpdateItem"))
            .collect();
        assert!(!updates.is_empty(), "{binary}: authentication writes a key's last use");
        for statement in updates {
            let actions = statement["Action"].as_sequence().unwrap();
            if !statement["Condition"].is_null() {
                let keys = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                if keys[0] == "IDEM#*" {
                    // The records of requests made with an Idempotency-Key, and nothing else.
                    assert_eq!(keys.as_sequence().map(Vec::len), Some(1), "{binary}");
                    continue;
                }
                // The scoped grant: UpdateItem of key items only.
                assert_eq!(actions.len(), 1, "{binary}");
                assert_eq!(keys[0], "KEY#*");
            }
        }
    }
}

#[test]
fn a_chat_can_store_its_outcome_before_its_function_times_out() {
    let template = template();
    let functions = functions(&template);
    let stream = functions.iter().find(|(b, _)| b == "chat-messages-stream").map(|(_, f)| f.clone()).unwrap();
    let timeout = stream["Properties"]["Timeout"].as_u64().expect("the streaming chat sets its own timeout");
    // The margin between the deadline and the abandoned threshold covers opening and storing.
    assert!(timeout > colloquy_core::domain::GENERATION_DEADLINE.as_secs() + 10, "{timeout} s");
    assert!(
        timeout < colloquy_core::domain::ABANDONED_AFTER.as_secs(),
        "a live generation is never taken for abandoned"
    );
    for (binary, function) in &functions {
        let policies = serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap();
        // Feedback checks the conversation is live by updating its counts, a new message by
        // counting it; storing an answer checks it apart
        // (the operators' feedback checks its message exists: theirs is not copied onto it).
        let checks = ["chat-messages", "chat-messages-stream", "regenerate-message", "app-message-feedback"]
            .contains(&binary.as_str());
        assert_eq!(
            policies.contains("dynamodb:ConditionCheckItem"),
            checks,
            "{binary}: answers are stored with a check that the conversation is live"
        );
    }
}

#[test]
fn endpoints_that_take_an_idempotency_key_keep_its_record_and_no_other_does() {
    let template = template();
    let functions = functions(&template);
    for endpoint in Endpoint::all() {
        let name = endpoint.function_name();
        let (_, function) = functions.iter().find(|(binary, _)| binary == name).unwrap();
        let policies = serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap();
        assert_eq!(policies.contains("IDEM#*"), endpoint.idempotent(), "{name}");
    }
    // The streaming chat serves the same endpoint through its own function.
    let (_, stream) = functions.iter().find(|(b, _)| b == "chat-messages-stream").unwrap();
    assert!(serde_yaml::to_string(&stream["Properties"]["Policies"]).unwrap().contains("IDEM#*"));
}

#[test]
fn the_console_function_serves_its_routes_and_touches_nothing() {
    let template = template();
    let functions = functions(&template);
    let (_, console) = functions.iter().find(|(binary, _)| binary == "console").expect("the console function");
    let expected: BTreeSet<(String, String)> =
        [("GET", "/console"), ("HEAD", "/console"), ("GET", "/console/{proxy+}"), ("HEAD", "/console/{proxy+}")]
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
    assert_eq!(http_routes(console), expected);
    assert_eq!(console["Properties"]["Policies"].as_sequence().map(Vec::len), Some(0), "no table, bucket or model");
    let main = std::fs::read_to_string(root().join("functions/console/src/main.rs")).unwrap();
    assert!(main.contains("colloquy_lambda::serve_console()"));
}
