//! Property tests over bad input: event parsing, environment config loading
//! and execution names. Nothing may panic; every rejection names the field it
//! is about, on one line; and what is accepted is decided here a second time,
//! by an oracle written from the rules in the README ("Events", "Environment
//! configuration"), not from the code under test.
//!
//! Case counts are fixed per property (`cases(N)`), so a run always tries the
//! same number of inputs; `PROPTEST_CASES` does not change them.

use proptest::prelude::*;
use proptest::string::string_regex;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::names::{execution_name, parse_execution_name};
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::{EnvironmentConfig, EnvironmentSet, Request};
use unicode_normalization::UnicodeNormalization;

/// A fixed number of cases, and no regression files written into the source tree.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn regex(pattern: &str) -> BoxedStrategy<String> {
    string_regex(pattern).expect("valid regex").boxed()
}

fn environments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments")
}

fn environments() -> &'static EnvironmentSet {
    static SET: OnceLock<EnvironmentSet> = OnceLock::new();
    SET.get_or_init(|| EnvironmentSet::load_dir(&environments_dir()).expect("checked-in configs"))
}

/// Text that must stay on one line: no control characters, no Unicode line or paragraph separators.
fn is_one_line(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

// ---------------------------------------------------------------------------
// The oracle: the README's rules, written independently of validate.rs.

fn tenant_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=20).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn environment_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=8).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The identity rules (`stepdeploy_shared::identity`), written out again:
/// letters, digits and `. _ @ + - '` only; in an environment with approvers,
/// a plain-ASCII address `local@domain.tld` (the local part's `+tag` aside).
fn requested_by_ok(raw: &str, email: bool) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let s = &raw.nfkc().collect::<String>().to_lowercase();
    let plain = !raw.trim().is_empty()
        && s.chars().count() <= 128
        && s.chars()
            .all(|c| c.is_alphanumeric() || "._@+-'".contains(c))
        && !s
            .chars()
            .any(|c| ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'].contains(&c));
    if !plain || !email {
        return plain;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local = local.split('+').next().unwrap_or_default();
    let dotted =
        |p: &str| !p.is_empty() && !p.starts_with('.') && !p.ends_with('.') && !p.contains("..");
    s.is_ascii()
        && !domain.contains('@')
        && dotted(local)
        && dotted(domain)
        && domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn request_id_ok(s: &str) -> bool {
    (1..=36).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Images with a known verdict (the image grammar itself is validate.rs's unit tests' business).
const GOOD_IMAGES: &[&str] = &[
    "wordpress",
    "wordpress:6.4-apache",
    "library/wordpress:latest",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp/site:v1.2.3",
    "localhost:5000/wp:dev",
    "wordpress:6.4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];
const BAD_IMAGES: &[&str] = &[
    "",
    "WordPress:6",
    "wordpress:",
    "wordpress:-x",
    "word press",
    "wordpress@sha256:abc",
    "bad_host!.io/wp:1",
    "reg.io:99999/wp",
    "/wordpress",
    "wordpress\n:6",
];

const DEPLOY_FIELDS: &[&str] = &[
    "tenant",
    "environment",
    "requested_by",
    "image",
    "alb_priority",
    "auto_promote",
    "request_id",
];
const TEARDOWN_FIELDS: &[&str] = &["tenant", "environment", "requested_by", "request_id"];

/// The `detail` fields an event breaks the rules with (empty: it must be accepted).
fn invalid_detail_fields(deploy: bool, detail: &Map<String, Value>) -> BTreeSet<String> {
    let known = if deploy {
        DEPLOY_FIELDS
    } else {
        TEARDOWN_FIELDS
    };
    let mut bad = BTreeSet::new();
    let mut flag = |name: &str, ok: bool| {
        if !ok {
            bad.insert(format!("detail.{name}"));
        }
    };
    for key in detail.keys() {
        flag(key, known.contains(&key.as_str()));
    }
    let required_str = |name: &str, rule: fn(&str) -> bool| {
        detail.get(name).and_then(Value::as_str).is_some_and(rule)
    };
    // An optional field may be absent or null.
    let optional = |name: &str, rule: &dyn Fn(&Value) -> bool| match detail.get(name) {
        None | Some(Value::Null) => true,
        Some(v) => rule(v),
    };
    flag("tenant", required_str("tenant", tenant_ok));
    let env = detail
        .get("environment")
        .and_then(Value::as_str)
        .filter(|e| environment_name_ok(e))
        .and_then(|e| environments().get(e).ok());
    flag("environment", env.is_some());
    let approvers = env.is_some_and(|c| c.approval.is_some());
    flag(
        "requested_by",
        detail
            .get("requested_by")
            .and_then(Value::as_str)
            .is_some_and(|s| requested_by_ok(s, approvers)),
    );
    flag(
        "request_id",
        optional("request_id", &|v| v.as_str().is_some_and(request_id_ok)),
    );
    if deploy {
        flag(
            "image",
            optional("image", &|v| {
                v.as_str().is_some_and(|s| GOOD_IMAGES.contains(&s))
            }),
        );
        flag(
            "auto_promote",
            optional("auto_promote", &|v| v.is_boolean()),
        );
        flag(
            "alb_priority",
            optional("alb_priority", &|v| {
                match v.as_u64().and_then(|p| u32::try_from(p).ok()) {
                    // Not a whole number that fits a u32: a type error whatever the environment.
                    None => false,
                    // Only an environment that exists has a range to be inside.
                    Some(p) => env.is_none_or(|c| {
                        c.alb_priority_range.min <= p && p <= c.alb_priority_range.max
                    }),
                }
            }),
        );
    }
    bad
}

/// Every rejection of an event: `<field path>: <reason>`, one line, short.
fn check_event_error(e: &FieldError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert_eq!(&text, &format!("{}: {}", e.field, e.reason));
    prop_assert!(!e.field.is_empty() && !e.reason.is_empty(), "{text}");
    // Outside a quoted key, the field path has no ": " to confuse where the reason starts.
    let unquoted = e.field.split('"').next().unwrap_or_default();
    prop_assert!(!unquoted.contains(": "), "field path {:?}", e.field);
    prop_assert!(is_one_line(&text), "not one line: {text:?}");
    prop_assert!(
        text.chars().count() <= 400,
        "{} characters: {text:?}",
        text.chars().count()
    );
    Ok(())
}

fn event(detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type, "source": "stepdeploy", "account": "123456789012",
        "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": detail
    })
}

const DEPLOY: &str = "Tenant Deployment Requested";
const TEARDOWN: &str = "Tenant Teardown Requested";

// ---------------------------------------------------------------------------
// Generators.

/// Any JSON value, nested a little, with keys that are sometimes the ones we read.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        arb_key().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "version", "id", "detail-type", "source", "account", "time", "region",
            "resources", "detail", "tenant", "environment", "requested_by", "image",
            "alb_priority", "auto_promote", "request_id", "Tenant Deployment Requested",
            "stepdeploy",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
        1 => regex("[a-z_: .\\n\\t\"`\\[\\]]{0,12}"),
    ]
    .boxed()
}

/// A value of some JSON type, for a field that wants another.
fn wrong_type() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!([])),
        Just(json!(["dev"])),
        Just(json!({})),
        Just(json!({"tenant": "goldencrust"})),
    ]
    .boxed()
}

/// Mostly `good` strings, often near misses, sometimes anything.
fn text(good: &str, near: &str) -> BoxedStrategy<Value> {
    prop_oneof![
        12 => regex(good),
        1 => regex(near),
        1 => any::<String>(),
        1 => regex("[^\\n]{100,600}"),
    ]
    .prop_map(Value::String)
    .boxed()
}

fn tenant_value() -> BoxedStrategy<Value> {
    text("[a-z][a-z0-9]{1,19}", "[a-zA-Z0-9_ -]{0,24}")
}

fn environment_value() -> BoxedStrategy<Value> {
    prop_oneof![
        10 => prop::sample::select(vec!["dev", "sit", "prod"]).prop_map(Value::from),
        1 => prop::sample::select(vec!["qa", "Dev", "", "production", "dev ", " dev", "staging2", "d", "dév", "dev\n"])
            .prop_map(Value::from),
        1 => text("[a-z][a-z0-9]{1,8}", "[a-zA-Z0-9]{0,10}"),
    ]
    .boxed()
}

fn requested_by_value() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => text("[a-z0-9.]{1,20}@[a-z]{1,10}\\.io", "[ -~]{0,40}"),
        1 => regex("[a-z]{120,136}").prop_map(Value::String),
        1 => regex("[a-z]{0,4}[ \\t\\u{a0}\\u{3000}\\u{1}\\u{7f}][a-z]{0,4}").prop_map(Value::String),
    ]
    .boxed()
}

fn request_id_value() -> BoxedStrategy<Value> {
    text("[A-Za-z0-9_-]{1,36}", "[A-Za-z0-9_ .-]{0,40}")
}

fn image_value() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(GOOD_IMAGES.to_vec()),
        1 => prop::sample::select(BAD_IMAGES.to_vec()),
    ]
    .prop_map(Value::from)
    .boxed()
}

fn priority_value() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => (10u32..=109).prop_map(Value::from),
        3 => (0u32..400).prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (0.0f64..400.0).prop_map(Value::from),
        1 => Just(json!(140.0)),
        1 => (0u32..400).prop_map(|p| Value::String(p.to_string())),
    ]
    .boxed()
}

fn auto_promote_value() -> BoxedStrategy<Value> {
    prop_oneof![
        10 => any::<bool>().prop_map(Value::Bool),
        1 => Just(json!("true")),
        1 => Just(json!(1)),
    ]
    .boxed()
}

/// A field: present with a value of its own kind (mostly), of another type, or absent.
fn field(
    name: &'static str,
    value: BoxedStrategy<Value>,
    absent_weight: u32,
) -> BoxedStrategy<(&'static str, Option<Value>)> {
    prop_oneof![
        24 => value.prop_map(Some),
        1 => wrong_type().prop_map(Some),
        absent_weight => Just(None),
    ]
    .prop_map(move |v| (name, v))
    .boxed()
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// A deployment `detail` whose every field varies.
fn deploy_detail() -> impl Strategy<Value = Map<String, Value>> {
    (
        field("tenant", tenant_value(), 1),
        field("environment", environment_value(), 1),
        field("requested_by", requested_by_value(), 1),
        field("image", image_value(), 8),
        field("alb_priority", priority_value(), 6),
        field("auto_promote", auto_promote_value(), 6),
        field("request_id", request_id_value(), 6),
    )
        .prop_map(|(a, b, c, d, e, f, g)| object(vec![a, b, c, d, e, f, g]))
}

fn teardown_detail() -> impl Strategy<Value = Map<String, Value>> {
    (
        field("tenant", tenant_value(), 1),
        field("environment", environment_value(), 1),
        field("requested_by", requested_by_value(), 1),
        field("request_id", request_id_value(), 6),
    )
        .prop_map(|(a, b, c, d)| object(vec![a, b, c, d]))
}

/// A detail that passes every rule.
fn valid_deploy_detail() -> impl Strategy<Value = Map<String, Value>> {
    (
        regex("[a-z][a-z0-9]{1,19}"),
        prop::sample::select(vec!["dev", "sit", "prod"]),
        regex("[a-z0-9][a-z0-9.]{0,18}[a-z0-9]@[a-z]{1,10}\\.io")
            .prop_filter("no ..", |s| !s.contains("..")),
        prop::option::of(prop::sample::select(GOOD_IMAGES.to_vec())),
        prop::option::of(10u32..=109),
        prop::option::of(any::<bool>()),
        prop::option::of(regex("[A-Za-z0-9_-]{1,36}")),
    )
        .prop_map(|(t, e, r, i, p, a, id)| {
            let mut d = Map::new();
            d.insert("tenant".into(), t.into());
            d.insert("environment".into(), e.into());
            d.insert("requested_by".into(), r.into());
            if let Some(i) = i {
                d.insert("image".into(), i.into());
            }
            if let Some(p) = p {
                d.insert("alb_priority".into(), p.into());
            }
            if let Some(a) = a {
                d.insert("auto_promote".into(), a.into());
            }
            if let Some(id) = id {
                d.insert("request_id".into(), id.into());
            }
            d
        })
}

/// Checks one event against the oracle and the error rules.
fn check_detail(deploy: bool, detail: &Map<String, Value>) -> Result<(), TestCaseError> {
    let detail_type = if deploy { DEPLOY } else { TEARDOWN };
    let bad = invalid_detail_fields(deploy, detail);
    let result = Request::from_event(
        &event(detail_type, Value::Object(detail.clone())),
        environments(),
    );
    match result {
        Ok(request) => {
            prop_assert!(
                bad.is_empty(),
                "accepted, but {bad:?} break the rules: {detail:?}"
            );
            prop_assert_eq!(
                request.tenant().as_str(),
                detail["tenant"].as_str().unwrap_or_default()
            );
            prop_assert_eq!(
                request.environment().as_str(),
                detail["environment"].as_str().unwrap_or_default()
            );
            // Kept in canonical form: NFKC, lower case, without an address's `+tag`.
            let raw = detail["requested_by"]
                .as_str()
                .unwrap_or_default()
                .nfkc()
                .collect::<String>()
                .to_lowercase();
            let canonical = match raw.split_once('@') {
                Some((local, domain)) => {
                    format!("{}@{domain}", local.split('+').next().unwrap_or_default())
                }
                None => raw,
            };
            prop_assert_eq!(request.requested_by(), canonical);
            prop_assert_eq!(matches!(request, Request::Deploy(_)), deploy);
        }
        Err(e) => {
            check_event_error(&e)?;
            prop_assert!(!bad.is_empty(), "rejected a valid event ({e}): {detail:?}");
            prop_assert!(
                bad.contains(&e.field),
                "the error names {:?}, but the broken fields are {bad:?}: {e}",
                e.field
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Event parsing.

proptest! {
    #![proptest_config(cases(3_000))]

    /// (a) Any JSON value at all, as the whole event.
    #[test]
    fn event_any_json_is_rejected_cleanly(value in arb_json()) {
        if let Err(e) = Request::from_event(&value, environments()) {
            check_event_error(&e)?;
        }
    }

    /// (a') Any JSON as `detail` (and as extra top-level fields) of an event that gets that far.
    #[test]
    fn event_any_detail_is_rejected_cleanly(
        deploy in any::<bool>(),
        detail in arb_json(),
        extra in prop::collection::btree_map(arb_key(), arb_json(), 0..3),
    ) {
        let mut value = event(if deploy { DEPLOY } else { TEARDOWN }, detail.clone());
        for (k, v) in extra {
            if !["detail", "detail-type", "source", "time"].contains(&k.as_str()) {
                value[k] = v;
            }
        }
        let result = Request::from_event(&value, environments());
        match (&result, detail.as_object()) {
            (Ok(_), Some(d)) => prop_assert!(invalid_detail_fields(deploy, d).is_empty(), "{value}"),
            (Ok(_), None) => prop_assert!(false, "accepted a non-object detail: {value}"),
            (Err(e), d) => {
                check_event_error(e)?;
                // A top-level field of the wrong type may be found first.
                let top = ["version", "id", "account", "region", "resources"];
                let at_top = top.contains(&e.field.as_str()) || e.field.starts_with("resources[");
                if d.is_none() && !at_top {
                    prop_assert_eq!(&e.field, "detail");
                }
            }
        }
    }

    /// (b) Well-formed deployment events with any value in each detail field.
    #[test]
    fn deploy_fields_follow_the_rules(detail in deploy_detail()) {
        check_detail(true, &detail)?;
    }

    /// (b) The same for teardown events.
    #[test]
    fn teardown_fields_follow_the_rules(detail in teardown_detail()) {
        check_detail(false, &detail)?;
    }

    /// (b) Source and detail-type: only ours.
    #[test]
    fn source_and_detail_type(
        source in prop_oneof![Just("stepdeploy".to_string()), regex("[a-zA-Z. ]{0,20}"), any::<String>()],
        detail_type in prop_oneof![
            Just(DEPLOY.to_string()),
            Just(TEARDOWN.to_string()),
            Just("Tenant Deployment Succeeded".to_string()),
            any::<String>(),
            regex("[^\\n]{300,900}"),
        ],
    ) {
        let mut value = event(&detail_type, json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}));
        value["source"] = Value::String(source.clone());
        let result = Request::from_event(&value, environments());
        let ours = source == "stepdeploy" && (detail_type == DEPLOY || detail_type == TEARDOWN);
        match result {
            Ok(_) => prop_assert!(ours),
            Err(e) => {
                check_event_error(&e)?;
                prop_assert!(!ours, "{e}");
                prop_assert!(e.field == "source" || e.field == "detail-type", "{e}");
            }
        }
    }

    /// (c) A valid event with one more field in `detail`: rejected, naming that field.
    #[test]
    fn unknown_detail_field_is_named(
        deploy in any::<bool>(),
        mut detail in valid_deploy_detail(),
        key in arb_key(),
        value in arb_json(),
    ) {
        if !deploy {
            for k in ["image", "alb_priority", "auto_promote"] {
                detail.remove(k);
            }
        }
        let known = if deploy { DEPLOY_FIELDS } else { TEARDOWN_FIELDS };
        prop_assume!(!known.contains(&key.as_str()));
        detail.insert(key.clone(), value);
        let e = Request::from_event(&event(if deploy { DEPLOY } else { TEARDOWN }, Value::Object(detail)), environments())
            .expect_err("an unknown field is rejected");
        check_event_error(&e)?;
        prop_assert!(e.field.starts_with("detail."), "{e}");
        prop_assert!(e.reason.starts_with("unknown field"), "{e}");
        // A plain key is named as it is; any other is quoted (and cut short).
        let plain = !key.is_empty() && key.len() <= 64
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            prop_assert_eq!(e.field, format!("detail.{key}"));
        } else {
            prop_assert!(e.field.starts_with("detail.\""), "{e}");
            if key.chars().count() <= 30 && key.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation() || c == ' ') {
                prop_assert_eq!(e.field, format!("detail.{key:?}"));
            }
        }
    }

    /// (c) Unknown top-level fields are EventBridge's business: ignored.
    #[test]
    fn unknown_top_level_field_is_ignored(
        detail in valid_deploy_detail(),
        key in arb_key().prop_filter("an unknown key", |k| {
            !["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"].contains(&k.as_str())
        }),
        value in arb_json(),
    ) {
        let mut event = event(DEPLOY, Value::Object(detail));
        event[key] = value;
        prop_assert!(Request::from_event(&event, environments()).is_ok());
    }

    /// A valid detail written as an array of its values, in the struct's order:
    /// serde reads structs from arrays too, so this was accepted.
    #[test]
    fn detail_as_array_is_refused(detail in valid_deploy_detail(), deploy in any::<bool>()) {
        let order: &[&str] = if deploy {
            &["tenant", "environment", "image", "alb_priority", "auto_promote", "requested_by", "request_id"]
        } else {
            &["tenant", "environment", "requested_by", "request_id"]
        };
        let values: Vec<Value> = order.iter().map(|k| detail.get(*k).cloned().unwrap_or(Value::Null)).collect();
        let e = Request::from_event(&event(if deploy { DEPLOY } else { TEARDOWN }, Value::Array(values)), environments())
            .expect_err("an array is not a detail");
        check_event_error(&e)?;
        prop_assert_eq!(e.field, "detail");
    }

    /// (d) A valid event with one field removed: only an optional one may go.
    #[test]
    fn removed_field(
        detail in valid_deploy_detail(),
        which in 0usize..17,
    ) {
        let mut event = event(DEPLOY, Value::Object(detail));
        let top = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"];
        let (field, required) = if which < top.len() {
            let name = top[which];
            event.as_object_mut().expect("object").remove(name);
            (name.to_string(), ["detail-type", "source", "detail"].contains(&name))
        } else {
            let name = DEPLOY_FIELDS[(which - top.len()) % DEPLOY_FIELDS.len()];
            event["detail"].as_object_mut().expect("object").remove(name);
            (format!("detail.{name}"), ["tenant", "environment", "requested_by"].contains(&name))
        };
        match Request::from_event(&event, environments()) {
            Ok(_) => prop_assert!(!required, "accepted without {field}"),
            Err(e) => {
                check_event_error(&e)?;
                prop_assert!(required, "rejected without optional {field}: {e}");
                prop_assert_eq!(e.to_string(), format!("{field}: is missing"));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Environment config loading.

const CONFIG_FILE: &str = "infra/environments/dev.json";

fn dev_json() -> &'static Value {
    static DEV: OnceLock<Value> = OnceLock::new();
    DEV.get_or_init(|| {
        let text = std::fs::read_to_string(environments_dir().join("dev.json")).expect("dev.json");
        serde_json::from_str(&text).expect("json")
    })
}

fn load(text: &str) -> Result<EnvironmentConfig, ConfigError> {
    EnvironmentConfig::from_json(Path::new(CONFIG_FILE), text)
}

/// One step into a document.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every value's path in dev.json (objects and arrays too), with `approval`'s inner fields.
fn config_paths() -> Vec<Vec<Seg>> {
    fn walk(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    at.push(Seg::Key(k.clone()));
                    out.push(at.clone());
                    walk(v, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    at.push(Seg::Index(i));
                    out.push(at.clone());
                    walk(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dev_json(), &mut Vec::new(), &mut out);
    out
}

/// `rds.port`, `private_subnets[0]`: as errors name fields.
fn dotted(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn parent_mut<'a>(doc: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    let mut v = doc;
    for seg in &path[..path.len() - 1] {
        v = match seg {
            Seg::Key(k) => &mut v[k.as_str()],
            Seg::Index(i) => &mut v[*i],
        };
    }
    v
}

fn get<'a>(doc: &'a Value, path: &[Seg]) -> &'a Value {
    path.iter().fold(doc, |v, seg| match seg {
        Seg::Key(k) => &v[k.as_str()],
        Seg::Index(i) => &v[*i],
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Set(Value),
    AddUnknown(String, Value),
}

fn apply(doc: &mut Value, path: &[Seg], m: &Mutation) {
    let parent = parent_mut(doc, path);
    match (m, path.last().expect("non-empty path")) {
        (Mutation::Remove, Seg::Key(k)) => {
            parent.as_object_mut().expect("object").remove(k);
        }
        (Mutation::Remove, Seg::Index(i)) => {
            parent.as_array_mut().expect("array").remove(*i);
        }
        (Mutation::Set(v), Seg::Key(k)) => parent[k.as_str()] = v.clone(),
        (Mutation::Set(v), Seg::Index(i)) => parent[*i] = v.clone(),
        (Mutation::AddUnknown(k, v), _) => {
            if let Some(obj) = parent.as_object_mut() {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::Remove),
        2 => wrong_type().prop_map(Mutation::Set),
        3 => prop_oneof![
            any::<String>(),
            regex("[a-z0-9:/. -]{0,30}"),
            regex("[0-9]{10,14}"),
            Just(String::new()),
            Just(" ".to_string()),
            regex("[^\\n]{200,400}"),
        ]
        .prop_map(|s| Mutation::Set(Value::String(s))),
        3 => prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..70_000).prop_map(Value::from),
            prop::sample::select(vec![256u64, 512, 1024, 2048, 4096, 8192, 16384, 30720, 122880]).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
        ]
        .prop_map(Mutation::Set),
        1 => (arb_key(), arb_json()).prop_map(|(k, v)| Mutation::AddUnknown(k, v)),
    ]
}

/// Fields serde may leave out (they have defaults, or are optional).
const OPTIONAL_CONFIG_FIELDS: &[&str] = &[
    "alb_priority_range",
    "rds.port",
    "rds.tls",
    "approval",
    "verify.interval_seconds",
    "verify.max_attempts",
    "verify.base_url",
    "dns.check_base_url",
    "promote_to",
    // Removing one of two subnets leaves a valid list.
    "private_subnets[0]",
    "private_subnets[1]",
];

/// Fields that may be `null` (they are `Option`s); `null` anywhere else is a type error.
const NULLABLE_CONFIG_FIELDS: &[&str] = &["approval", "promote_to"];

/// Whether a rejection naming `named` is about a change to `changed`: the same
/// field, one inside the other, or a field checked against it.
fn related(changed: &str, named: &str) -> bool {
    let within = |outer: &str, inner: &str| {
        inner == outer
            || inner.starts_with(&format!("{outer}."))
            || inner.starts_with(&format!("{outer}["))
    };
    let checked_against: &[(&str, &[&str])] = &[
        (
            "account_id",
            &[
                "deploy_role_arn",
                "task_execution_role_arn",
                "task_role_arn",
                "alb_listener_arn",
                "rds.master_secret_arn",
            ],
        ),
        ("region", &["alb_listener_arn", "rds.master_secret_arn"]),
        ("defaults.cpu", &["defaults.memory"]),
        ("alb_priority_range.min", &["alb_priority_range"]),
        ("alb_priority_range.max", &["alb_priority_range"]),
        ("verify.interval_seconds", &["verify"]),
        ("verify.max_attempts", &["verify"]),
    ];
    within(changed, named)
        || within(named, changed)
        || checked_against
            .iter()
            .any(|(c, fields)| *c == changed && fields.contains(&named))
}

/// For the fields whose rule is simple, whether `value` is acceptable there (None: no opinion).
fn config_value_ok(field: &str, value: &Value) -> Option<bool> {
    let original = get(dev_json(), &path_of(field));
    let s = value.as_str();
    let non_blank = || s.is_some_and(|s| !s.trim().is_empty());
    Some(match field {
        // Everything else in the file refers to these three.
        "name" | "account_id" | "region" => value == original,
        "cluster"
        | "vpc_id"
        | "ecs_security_group"
        | "efs_id"
        | "rds.endpoint"
        | "log_group"
        | "cloudfront.domain_name"
        | "cloudfront.hosted_zone_id"
        | "state_table" => non_blank(),
        "hosted_zone_id" => non_blank() && !s.unwrap_or_default().starts_with("/hostedzone/"),
        "config_bucket" => s.is_some_and(|s| {
            (3..=63).contains(&s.len())
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        }),
        "external_id" => s.is_some_and(|s| {
            (2..=1224).contains(&s.len())
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&c))
        }),
        "domain" => s.is_some_and(|s| {
            s.len() <= 200
                && s.contains('.')
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                })
        }),
        "rds.port" => value.as_u64().is_some_and(|p| p <= 65_535),
        "rds.tls" | "verify.enabled" | "dns.enabled" => value.is_boolean(),
        // Bounded by the execution history (25,000 events) and an hour between rounds.
        "verify.interval_seconds" => value.as_u64().is_some_and(|n| (1..=3_600).contains(&n)),
        "verify.max_attempts" => value.as_u64().is_some_and(|n| (1..=500).contains(&n)),
        // The sample's range is 10..=109: at most 100 priorities (one load balancer's quota).
        "alb_priority_range.min" => value.as_u64().is_some_and(|n| (10..=109).contains(&n)),
        "alb_priority_range.max" => value.as_u64().is_some_and(|n| (10..=109).contains(&n)),
        "promote_to" => value.is_null() || s.is_some_and(|s| environment_name_ok(s) && s != "dev"),
        _ => return None,
    })
}

fn path_of(dotted_field: &str) -> Vec<Seg> {
    config_paths()
        .into_iter()
        .find(|p| dotted(p) == dotted_field)
        .unwrap_or_default()
}

/// Every rejection of a config: `<file>: <field>: <reason>`, on one line.
fn check_config_error(e: &ConfigError) -> Result<(String, String), TestCaseError> {
    let text = e.to_string();
    prop_assert!(is_one_line(&text), "not one line: {text:?}");
    let ConfigError::Invalid {
        file,
        field,
        reason,
    } = e
    else {
        return Err(TestCaseError::fail(format!("not an Invalid error: {text}")));
    };
    prop_assert_eq!(file.as_path(), Path::new(CONFIG_FILE));
    prop_assert!(!field.is_empty() && !reason.is_empty(), "{text}");
    prop_assert_eq!(&text, &format!("{CONFIG_FILE}: {field}: {reason}"));
    Ok((field.clone(), reason.clone()))
}

proptest! {
    #![proptest_config(cases(3_000))]

    /// One mutation of the valid dev.json: accepted only when the rules allow it,
    /// otherwise rejected naming the changed field (or one checked against it).
    #[test]
    fn config_single_mutation(
        path in prop::sample::select(config_paths()),
        m in mutation(),
    ) {
        let field = dotted(&path);
        let mut doc = dev_json().clone();
        apply(&mut doc, &path, &m);
        let result = load(&doc.to_string());
        // What must happen, when the oracle has an opinion.
        let expect_ok: Option<bool> = match &m {
            Mutation::Remove => Some(OPTIONAL_CONFIG_FIELDS.contains(&field.as_str())),
            Mutation::AddUnknown(key, _) => {
                // Added beside the value at `path`: refused when that is inside an object
                // and the key is none of that object's fields; an array ignores it here.
                let parent = get(dev_json(), &path[..path.len() - 1]);
                let known = parent.get(key.as_str()).is_some() || ["base_url", "check_base_url"].contains(&key.as_str());
                match (parent.is_object(), known) {
                    (false, _) => Some(true),
                    (true, false) => Some(false),
                    (true, true) => None,
                }
            }
            Mutation::Set(Value::Null) => Some(NULLABLE_CONFIG_FIELDS.contains(&field.as_str())),
            Mutation::Set(v) if v == get(dev_json(), &path) => Some(true),
            Mutation::Set(v) => {
                let original = get(dev_json(), &path);
                let same_type = std::mem::discriminant(original) == std::mem::discriminant(v)
                    || field == "approval" || field == "promote_to";
                if same_type { config_value_ok(&field, v) } else { Some(false) }
            }
        };
        match result {
            Ok(_) => prop_assert!(expect_ok != Some(false), "accepted {m:?} at {field}"),
            Err(e) => {
                let (named, reason) = check_config_error(&e)?;
                prop_assert!(expect_ok != Some(true), "rejected {m:?} at {field}: {e}");
                match &m {
                    Mutation::Remove => prop_assert_eq!(&reason, "is missing", "{}", e),
                    Mutation::AddUnknown(..) if expect_ok == Some(false) => prop_assert!(reason.starts_with("unknown field"), "{e}"),
                    Mutation::AddUnknown(..) => {}
                    Mutation::Set(_) => {}
                }
                if !matches!(m, Mutation::AddUnknown(..)) {
                    prop_assert!(related(&field, &named), "changed {field}, but the error names {named}: {e}");
                }
            }
        }
    }

    /// Several mutations at once: no panic, and a rejection is still one clear line.
    #[test]
    fn config_many_mutations(
        changes in prop::collection::vec((prop::sample::select(config_paths()), mutation()), 2..6),
    ) {
        let mut doc = dev_json().clone();
        for (path, m) in &changes {
            // An earlier change may have removed or replaced what this one wants.
            let parent = path[..path.len() - 1].iter().try_fold(&doc, |v, seg| match seg {
                Seg::Key(k) => v.get(k.as_str()),
                Seg::Index(i) => v.get(*i),
            });
            let present = parent.is_some_and(|p| match path.last() {
                Some(Seg::Key(k)) => p.get(k.as_str()).is_some(),
                Some(Seg::Index(i)) => p.get(*i).is_some(),
                None => false,
            });
            if present {
                apply(&mut doc, path, m);
            }
        }
        if let Err(e) = load(&doc.to_string()) {
            check_config_error(&e)?;
        }
    }

    /// Any text at all as a config file.
    #[test]
    fn config_any_text(
        text in prop_oneof![
            any::<String>(),
            arb_json().prop_map(|v| v.to_string()),
            regex("[{}\\[\\]\":,a-z0-9 \\n]{0,60}"),
        ],
    ) {
        match load(&text) {
            Ok(_) => prop_assert!(false, "accepted {text:?}"),
            Err(e) => { check_config_error(&e)?; }
        }
    }

    /// dev.json with text after it: refused unless that is only whitespace.
    #[test]
    fn config_trailing_text(
        tail in prop_oneof![any::<String>(), regex("[ \\n\\t]{0,3}[}\\]a-z0-9,\"{ ]{0,10}")],
    ) {
        let text = format!("{}{tail}", serde_json::to_string_pretty(dev_json()).expect("json"));
        let blank = tail.chars().all(|c| " \t\n\r".contains(c));
        match load(&text) {
            Ok(_) => prop_assert!(blank, "accepted text after the document: {tail:?}"),
            Err(e) => {
                let (field, _) = check_config_error(&e)?;
                prop_assert!(!blank, "{e}");
                prop_assert_eq!(field, "(document)");
            }
        }
    }

    /// A section (or the whole document) written as an array of its values, in
    /// order or rotated: serde reads structs from arrays, so in order this loaded.
    #[test]
    fn config_section_as_array_is_refused(
        section in prop::sample::select(vec!["(document)", "alb_priority_range", "rds", "cloudfront", "defaults", "verify", "dns"]),
        shuffle in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut doc = dev_json().clone();
        let target = if section == "(document)" { &mut doc } else { &mut doc[section] };
        let mut values: Vec<Value> = target.as_object().expect("object").values().cloned().collect();
        if shuffle {
            let n = values.len() as u64;
            values.rotate_left((seed % n) as usize);
        }
        *target = Value::Array(values);
        let e = load(&doc.to_string()).expect_err("an array is not a section");
        let (field, _) = check_config_error(&e)?;
        prop_assert_eq!(field, section);
    }

    /// dev.json cut short, or with one character replaced.
    #[test]
    fn config_damaged_text(cut in any::<prop::sample::Index>(), replace in any::<Option<char>>()) {
        let pretty = serde_json::to_string_pretty(dev_json()).expect("json");
        let chars: Vec<char> = pretty.chars().collect();
        let at = cut.index(chars.len());
        let text: String = match replace {
            None => chars[..at].iter().collect(),
            Some(c) => chars[..at].iter().chain(std::iter::once(&c)).chain(&chars[at + 1..]).collect(),
        };
        if let Err(e) = load(&text) {
            check_config_error(&e)?;
        }
    }
}

// ---------------------------------------------------------------------------
// Execution names.

proptest! {
    #![proptest_config(cases(5_000))]

    /// Any input: at most 80 characters of [a-z0-9-], as Step Functions wants.
    #[test]
    fn execution_name_is_always_legal(
        tenant in any::<String>(),
        environment in any::<String>(),
        id in prop_oneof![any::<String>(), regex("[A-Za-z0-9_-]{1,36}"), regex(".{60,200}")],
    ) {
        let name = execution_name(&tenant, &environment, &id);
        prop_assert!(name.len() <= 80, "{} characters: {name}", name.len());
        prop_assert!(!name.is_empty());
        prop_assert!(name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{name:?}");
    }

}

proptest! {
    #![proptest_config(cases(10_000))]

    /// A valid tenant and environment come back out of the name, whatever the id.
    #[test]
    fn execution_name_round_trips(
        tenant in "[a-z][a-z0-9]{1,19}",
        environment in "[a-z][a-z0-9]{1,7}",
        id in prop_oneof![any::<String>(), regex("[A-Za-z0-9_-]{1,36}"), Just(String::new()), regex("-{0,3}")],
    ) {
        let name = execution_name(&tenant, &environment, &id);
        prop_assert_eq!(parse_execution_name(&name), Some((tenant.as_str(), environment.as_str())), "{}", name);
    }

    /// Any text given to the parser: no panic; what it returns is the text's first two parts.
    #[test]
    fn parse_execution_name_any_text(name in any::<String>()) {
        if let Some((t, e)) = parse_execution_name(&name) {
            prop_assert!(!t.is_empty() && !e.is_empty());
            let prefix = format!("{t}-{e}-");
            prop_assert!(name.starts_with(&prefix));
        }
    }
}
