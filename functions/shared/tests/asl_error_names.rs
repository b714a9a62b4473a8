//! The state machines may only branch on errors that exist: Step Functions
//! built-ins (`States.*`, `Lambda.*`) or the names the Lambdas return.

use std::path::{Path, PathBuf};
use stepdeploy_shared::error_names::ALL;

fn asl_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    files.sort();
    files
}

/// Every `ErrorEquals` entry, and every error a Pass state sets for the Fail state to report.
fn error_names(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("ErrorEquals", serde_json::Value::Array(names)) => {
                        found.extend(names.iter().filter_map(|n| n.as_str()).map(str::to_string))
                    }
                    ("Error", serde_json::Value::String(name)) => found.push(name.clone()),
                    _ => error_names(v, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| error_names(v, found)),
        _ => {}
    }
}

const BUILT_IN: &[&str] = &[
    // The Step Functions integration (`states:startExecution`) names a
    // refused call `StepFunctions.<exception>`, an unmodelled one
    // `StepFunctions.AWSStepFunctionsException`.
    "StepFunctions.AWSStepFunctionsException",
    "StepFunctions.ExecutionLimitExceededException",
    "StepFunctions.ExecutionAlreadyExistsException",
    "States.ALL",
    "States.Timeout",
    "States.TaskFailed",
    "States.HeartbeatTimeout",
    "States.Runtime",
    "States.Permissions",
    "States.DataLimitExceeded",
    "States.IntrinsicFailure",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
];

#[test]
fn every_error_the_asl_names_exists() {
    let files = asl_files();
    assert!(!files.is_empty(), "no statemachines/*.asl.json found");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let doc: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut names = Vec::new();
        error_names(&doc, &mut names);
        assert!(!names.is_empty(), "{} names no errors", file.display());
        for name in names {
            assert!(
                BUILT_IN.contains(&name.as_str()) || ALL.contains(&name.as_str()),
                "{}: {name:?} is neither a Step Functions built-in nor one of stepdeploy_shared::error_names",
                file.display()
            );
        }
    }
}

#[test]
fn validation_errors_are_never_retried() {
    for file in asl_files() {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable")).expect("json");
        let states = doc["States"].as_object().expect("States");
        for (state, body) in states {
            for retrier in body["Retry"].as_array().into_iter().flatten() {
                let names: Vec<&str> = retrier["ErrorEquals"]
                    .as_array()
                    .expect("ErrorEquals")
                    .iter()
                    .filter_map(|n| n.as_str())
                    .collect();
                let invokes_lambda = body["Resource"]
                    .as_str()
                    .is_some_and(|r| r.contains("lambda:invoke"));
                let retries_validation = names.contains(&"ValidationFailed")
                    || names.contains(&"ConfigInvalid")
                    || (invokes_lambda && names.contains(&"States.ALL"));
                assert!(
                    !retries_validation,
                    "{}: {state} retries {names:?}; validation errors must fail fast",
                    file.display()
                );
            }
        }
    }
}

/// Every Task state catches every error: a failed task goes to rollback (or,
/// after a deployment or teardown that already happened, to its end state;
/// in a rollout, to its report or a Fail naming the error), never straight
/// to a failed execution with its lock held and nothing undone or said.
#[test]
fn every_task_state_catches_everything() {
    let mut missing = Vec::new();
    for file in asl_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        let asl: serde_json::Value = serde_json::from_str(&text).expect("json");
        let states = asl["States"].as_object().expect("States");
        for (name, state) in states {
            if state["Type"] != "Task" {
                continue;
            }
            let catches_all = state["Catch"].as_array().is_some_and(|catches| {
                catches.iter().any(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|n| n == "States.ALL"))
                })
            });
            if !catches_all {
                missing.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "Task states without a States.ALL Catch: {missing:#?}"
    );
}
