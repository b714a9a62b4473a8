//! `rollout`: build a `Fleet Rollout Requested` event from the flags,
//! validate it with the rollout's own rules, put it on the bus, find the
//! rollout run it started (and follow it with `--wait`), as `deploy` does
//! for one tenant.

use super::deploy::{as_delivered, new_request_id, requester_or_user, Started, START_WAIT};
use super::watch::follow;
use super::{environment, environments};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::print_json;
use crate::stack::{Machine, Stack, ROLLOUT_NAME_PREFIX};
use serde_json::{json, Map, Value};
use stepdeploy_shared::names::execution_name;
use stepdeploy_shared::rollout::{RolloutRequest, TenantSelection, WaveSpec, ROLLOUT_REQUESTED};
use stepdeploy_shared::validate::FieldError;

/// What `--wave` takes, for messages.
const WAVE_FORMS: &str =
    "label:KEY=VALUE[,KEY=VALUE], tenants:NAME[,NAME], P% (of the rollout) or N (tenants)";

fn invalid(field: &str, reason: impl Into<String>) -> CliError {
    CliError::Invalid(FieldError::new(field, reason))
}

/// `KEY=VALUE` pairs from repeated (or comma-separated) values of `flag`,
/// as a JSON object; the keys and values are checked by the request's own
/// rule when the event is validated.
pub(super) fn labels(flag: &str, values: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut labels = Map::new();
    for pair in values.iter().flat_map(|v| v.split(',')) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(invalid(
                flag,
                format!("{pair:?} is not KEY=VALUE (e.g. ring=canary)"),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some(first) = labels.insert(key.to_string(), json!(value)) {
            if first != json!(value) {
                return Err(invalid(
                    flag,
                    format!(
                        "{key:?} is given twice ({first} and {value:?}); a label has one value"
                    ),
                ));
            }
        }
    }
    Ok(labels)
}

/// One `--wave` as the event's wave object.
fn wave(spec: &str) -> Result<Value, CliError> {
    let spec = spec.trim();
    let bad = || {
        invalid(
            "--wave",
            format!("{spec:?} is not a wave; expected {WAVE_FORMS}"),
        )
    };
    if let Some((kind, rest)) = spec.split_once(':') {
        return match kind {
            "label" | "labels" => Ok(json!({"labels": labels("--wave", &[rest.to_string()])?})),
            "tenant" | "tenants" => {
                let names: Vec<&str> = rest
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect();
                Ok(json!({ "tenants": names }))
            }
            _ => Err(bad()),
        };
    }
    let number = |n: &str| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u64>().ok())
            .flatten()
    };
    if let Some(percent) = spec.strip_suffix('%') {
        return number(percent.trim())
            .map(|p| json!({ "percent": p }))
            .ok_or_else(bad);
    }
    number(spec).map(|n| json!({ "count": n })).ok_or_else(bad)
}

/// `per_wave=1,overall=10%` as the event's `failure_budget`: a number
/// stays a number, anything else is passed on as text for the request's
/// rule to judge (`"10%"`).
fn failure_budget(spec: &str) -> Result<Value, CliError> {
    let mut budget = Map::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(invalid(
                "--failure-budget",
                format!("{pair:?} is not KEY=VALUE; expected per_wave=N|P%,overall=N|P% (e.g. per_wave=1,overall=10%)"),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let value = match value.parse::<u64>() {
            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => json!(n),
            _ => json!(value),
        };
        if budget.insert(key.to_string(), value).is_some() {
            return Err(invalid(
                "--failure-budget",
                format!("{key:?} is given twice"),
            ));
        }
    }
    if budget.is_empty() {
        return Err(invalid(
            "--failure-budget",
            "is empty; expected per_wave=N|P%,overall=N|P% (e.g. per_wave=1,overall=10%)",
        ));
    }
    Ok(Value::Object(budget))
}

/// `--tenants all`, `--tenant NAME…` or `--label KEY=VALUE…` as the event's `tenants`.
fn selection(a: &args::Rollout) -> Result<Value, CliError> {
    if let Some(all) = &a.tenants {
        if all != "all" {
            return Err(invalid(
                "--tenants",
                format!("{all:?} is not a selection; say --tenants all, --tenant NAME (repeatable) or --label KEY=VALUE (repeatable)"),
            ));
        }
        if !a.tenant.is_empty() || !a.labels.is_empty() {
            return Err(invalid(
                "--tenants",
                "all selects every tenant: leave out --tenant and --label, or --tenants",
            ));
        }
    }
    match (a.tenant.is_empty(), a.labels.is_empty()) {
        (false, false) => Err(invalid(
            "--tenant",
            "a rollout selects tenants by name or by label, not both: leave out --tenant or --label (a label wave picks labelled tenants among named ones: --wave label:KEY=VALUE)",
        )),
        (false, true) => {
            let names: Vec<&str> = a
                .tenant
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .collect();
            Ok(json!(names))
        }
        (true, false) => Ok(json!({"labels": labels("--label", &a.labels)?})),
        (true, true) => Ok(json!("all")),
    }
}

/// The request's event `detail`, from the flags.
fn detail(a: &args::Rollout, env: &str, request_id: &str) -> Result<Value, CliError> {
    let mut detail = json!({
        "environment": env, "image": a.image, "tenants": selection(a)?,
        "requested_by": requester_or_user(a.request.requested_by.clone())?,
        "request_id": request_id,
    });
    if !a.waves.is_empty() {
        let waves: Vec<Value> = a.waves.iter().map(|w| wave(w)).collect::<Result<_, _>>()?;
        detail["waves"] = json!(waves);
    }
    if let Some(n) = a.max_parallel {
        detail["max_parallel"] = json!(n);
    }
    if let Some(budget) = &a.failure_budget {
        detail["failure_budget"] = failure_budget(budget)?;
    }
    if let Some(bake) = a.bake {
        detail["bake_seconds"] = json!(bake);
    }
    Ok(detail)
}

/// What the validated request asks for, in one line.
fn described(r: &RolloutRequest) -> String {
    let tenants = match &r.tenants {
        TenantSelection::All => format!("every tenant of {}", r.environment),
        TenantSelection::Named(names) => {
            let names: Vec<&str> = names.iter().map(|t| t.as_str()).collect();
            format!("{} in {}", names.join(", "), r.environment)
        }
        TenantSelection::Labels(s) => format!("the tenants of {} with {s}", r.environment),
    };
    let mut waves: Vec<String> = r
        .waves
        .iter()
        .map(|w| match w {
            WaveSpec::Tenants(names) => names
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            WaveSpec::Labels(s) => s.to_string(),
            WaveSpec::Percent(p) => format!("{p}%"),
            WaveSpec::Count(1) => "1 tenant".to_string(),
            WaveSpec::Count(n) => format!("{n} tenants"),
        })
        .collect();
    waves.push(
        if waves.is_empty() {
            "all in one"
        } else {
            "the rest"
        }
        .into(),
    );
    format!(
        "{} to {tenants}; waves: {}; at most {} at once; failure budget per wave {}, overall {}; bake {} s",
        r.image,
        waves.join(" then "),
        r.max_parallel,
        r.failure_budget.per_wave,
        r.failure_budget.overall,
        r.bake_seconds
    )
}

/// `stepdeploy rollout`.
pub async fn rollout(stack: &Stack, global: &Global, a: &args::Rollout) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    let request_id = match &a.request.request_id {
        Some(id) => id.clone(),
        None => new_request_id(),
    };
    let detail = detail(a, env.name.as_str(), &request_id)?;
    let parsed = RolloutRequest::from_event(
        &as_delivered(ROLLOUT_REQUESTED, &detail, &request_id),
        &envs,
    )?;
    let event_id = stack
        .put_event(ROLLOUT_REQUESTED, &detail.to_string())
        .await?;
    let name = execution_name(
        ROLLOUT_NAME_PREFIX,
        parsed.environment.as_str(),
        &request_id,
    );
    let run = stack.await_run(Machine::Rollout, &name, START_WAIT).await?;
    let started = Started {
        execution: run.name.clone(),
        execution_arn: run.arn.clone(),
        status: run.status.clone(),
        console_url: stack.console_url(&run.arn),
        event_id,
        request_id,
    };
    if a.request.wait {
        if global.output == Output::Text {
            println!(
                "started {}: {}\nconsole: {}",
                started.execution,
                described(&parsed),
                started.console_url
            );
        }
        return follow(stack, &run, global.output).await;
    }
    match global.output {
        Output::Json => print_json(&started),
        Output::Text => {
            println!(
                "started {} ({})\nrollout: {}\nconsole: {}\nfollow:  stepdeploy watch {}",
                started.execution,
                started.status,
                described(&parsed),
                started.console_url,
                started.execution
            );
            if let Some(approval) = &env.approval {
                println!(
                    "approval: {} of {} approvers must approve the whole rollout ({}); the requester cannot; its deployments do not ask again",
                    approval.approvals_required,
                    approval.approvers.len(),
                    approval.approvers.join(", ")
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parsed(args: &[&str]) -> args::Rollout {
        let mut argv = vec!["stepdeploy", "rollout"];
        argv.extend_from_slice(args);
        match args::Cli::try_parse_from(argv).expect("arguments").command {
            args::Command::Rollout(a) => a,
            other => panic!("a rollout, got {other:?}"),
        }
    }

    fn detail_of(args: &[&str]) -> Result<Value, CliError> {
        let mut all = vec!["--env", "dev", "--image", "wordpress:6.5-apache"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--requested-by", "jane@kimmyai.io"]);
        detail(&parsed(&all), "dev", "r1")
    }

    fn error_of(args: &[&str]) -> String {
        detail_of(args).expect_err("refused").to_string()
    }

    #[test]
    fn flags_become_the_event_detail() {
        let d = detail_of(&[
            "--label",
            "fleet=web",
            "--label",
            "zone=a",
            "--wave",
            "label:ring=canary",
            "--wave",
            "tenants:alpha, bravo",
            "--wave",
            "25%",
            "--wave",
            "3",
            "--max-parallel",
            "10",
            "--failure-budget",
            "per_wave=1,overall=10%",
            "--bake",
            "300",
        ])
        .expect("detail");
        assert_eq!(
            d,
            json!({
                "environment": "dev", "image": "wordpress:6.5-apache",
                "tenants": {"labels": {"fleet": "web", "zone": "a"}},
                "waves": [{"labels": {"ring": "canary"}}, {"tenants": ["alpha", "bravo"]},
                          {"percent": 25}, {"count": 3}],
                "max_parallel": 10, "failure_budget": {"per_wave": 1, "overall": "10%"},
                "bake_seconds": 300, "requested_by": "jane@kimmyai.io", "request_id": "r1"
            })
        );
        assert_eq!(detail_of(&[]).expect("detail")["tenants"], "all");
        assert_eq!(
            detail_of(&["--tenants", "all"]).expect("detail")["tenants"],
            "all"
        );
        assert_eq!(
            detail_of(&["--tenant", "alpha", "--tenant", "bravo,charlie"]).expect("detail")
                ["tenants"],
            json!(["alpha", "bravo", "charlie"])
        );
        assert_eq!(
            detail_of(&["--label", "ring=canary,zone=a"]).expect("detail")["tenants"],
            json!({"labels": {"ring": "canary", "zone": "a"}})
        );
    }

    #[test]
    fn malformed_flags_name_the_flag() {
        for (args, says) in [
            (
                &["--wave", "canary"][..],
                "--wave: \"canary\" is not a wave",
            ),
            (&["--wave", "ten%"], "--wave: \"ten%\" is not a wave"),
            (&["--wave=-1"], "--wave: \"-1\" is not a wave"),
            (
                &["--wave", "ring:canary"],
                "--wave: \"ring:canary\" is not a wave",
            ),
            (
                &["--wave", "label:ring"],
                "--wave: \"ring\" is not KEY=VALUE",
            ),
            (
                &["--label", "canary"],
                "--label: \"canary\" is not KEY=VALUE",
            ),
            (
                &["--label", "ring=canary", "--label", "ring=main"],
                "--label: \"ring\" is given twice",
            ),
            (
                &["--tenants", "some"],
                "--tenants: \"some\" is not a selection",
            ),
            (
                &["--tenants", "all", "--tenant", "alpha"],
                "--tenants: all selects every tenant",
            ),
            (
                &["--tenant", "alpha", "--label", "ring=canary"],
                "--tenant: a rollout selects tenants by name or by label, not both",
            ),
            (
                &["--failure-budget", "1"],
                "--failure-budget: \"1\" is not KEY=VALUE",
            ),
            (
                &["--failure-budget", "overall=1,overall=2"],
                "--failure-budget: \"overall\" is given twice",
            ),
            (&["--failure-budget", ""], "--failure-budget: is empty"),
        ] {
            let err = error_of(args);
            assert!(err.starts_with(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_request_rules_judge_the_values() {
        let envs = stepdeploy_shared::config::EnvironmentSet::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/environments"),
        )
        .expect("configs");
        let check = |args: &[&str]| {
            let d = detail_of(args).expect("detail");
            RolloutRequest::from_event(&as_delivered(ROLLOUT_REQUESTED, &d, "r1"), &envs)
        };
        let ok = check(&["--wave", "label:ring=canary", "--wave", "25%"]).expect("valid");
        assert_eq!(
            described(&ok),
            "wordpress:6.5-apache to every tenant of dev; waves: ring=canary then 25% then the rest; at most 5 at once; failure budget per wave 0, overall 0; bake 0 s"
        );
        for (args, field) in [
            (
                &["--max-parallel", "0"][..],
                "detail.max_parallel: 0 is outside 1..=100",
            ),
            (
                &["--wave", "150%"],
                "detail.waves[0].percent: 150 is outside 1..=100",
            ),
            (&["--wave", "0"], "detail.waves[0].count: 0 is outside"),
            (
                &["--wave", "tenants:alpha", "--wave", "tenants:alpha"],
                "detail.waves[1].tenants[0]: \"alpha\" is already in detail.waves[0]",
            ),
            (
                &["--failure-budget", "overall=150%"],
                "detail.failure_budget.overall: 150% is more than 100%",
            ),
            (
                &["--failure-budget", "total=1"],
                "detail.failure_budget.total: unknown field",
            ),
            (
                &["--label", "Ring=canary"],
                "detail.tenants.labels: key \"Ring\" must match",
            ),
            (&["--tenant", "Alpha"], "detail.tenants[0]:"),
            (
                &["--bake", "90000"],
                "detail.bake_seconds: 90000 is outside 0..=86400",
            ),
        ] {
            let err = check(args).expect_err("refused").to_string();
            assert!(err.starts_with(field), "{args:?}: {err}");
        }
    }
}
