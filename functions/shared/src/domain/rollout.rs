//! Fleet rollouts in waves (issue #14), the pure part: what a
//! `Fleet Rollout Requested` event may say, how it selects tenants and puts
//! them in waves, when the failure budget halts the rollout, what the child
//! deployments are named, and the report a rollout leaves behind.
//!
//! Nothing here calls AWS. The rollout state machine's Lambdas read the
//! registry into [`FleetTenant`]s, call [`plan`] once, start each wave's
//! children under [`child_execution_name`], call [`verdict`] after each wave
//! and write a [`RolloutReport`] at the end; every rule they follow is here,
//! so it is tested once and the same for the CLI.
//!
//! The event is validated with the rigour of the tenant events
//! ([`crate::request`]): exactly the known fields, each value checked, and an
//! error names the field (`detail.waves[1].percent: 0 is outside 1..=100`).

use crate::config::EnvironmentSet;
use crate::request::{check_request_id, json_kind, EVENT_SOURCE};
use crate::validate::{shown, typed, EnvironmentName, FieldError, ImageRef, TenantName};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// `detail-type` asking for a fleet rollout. It belongs in
/// `request::KNOWN_DETAIL_TYPES` (and the trigger's routing) with the two below.
pub const ROLLOUT_REQUESTED: &str = "Fleet Rollout Requested";
/// `detail-type` published when every wave ran within the failure budget.
pub const ROLLOUT_SUCCEEDED: &str = "Fleet Rollout Succeeded";
/// `detail-type` published when the failure budget stopped the rollout.
pub const ROLLOUT_HALTED: &str = "Fleet Rollout Halted";

/// `max_parallel` when the event does not say: small enough that a bad image
/// fails a handful of tenants before the budget can act, large enough that a
/// 13-tenant wave does not run one after another.
pub const MAX_PARALLEL_DEFAULT: u32 = 5;
/// Highest `max_parallel`. An inline Map runs at most 40 iterations at once,
/// so above 40 the state machine needs a Distributed Map; and every child
/// deployment makes its own calls (ECS task definitions, listener rules,
/// Route 53 changes, StartExecution itself) against per-account throttles
/// that do not grow with the fleet. Past about 100 children at once more
/// parallelism only turns into throttling retries, not speed.
pub const MAX_PARALLEL_MAX: u32 = 100;
/// Longest wait between waves: one day. A longer bake is a second rollout
/// the operator starts when satisfied, not a run left sleeping.
pub const BAKE_SECONDS_MAX: u32 = 86_400;
/// Most waves one rollout may list. Each wave is a budget check and a bake in
/// the rollout's history; more than 20 is a list better written as counts or
/// percentages.
pub const MAX_WAVES: usize = 20;
/// Longest label key or value.
pub const LABEL_MAX_LEN: usize = 63;

// ---------------------------------------------------------------- labels

/// Checks a label key or value: `^[a-z0-9][a-z0-9._-]{0,62}$`.
///
/// Lower case only, so `Ring` and `ring` cannot be two labels; no `=`, `,`
/// or spaces, so `--label ring=canary` and `ring=canary,zone=a` need no
/// quoting; 63 characters, like a DNS label or a Kubernetes label value.
/// The registry's labels on tenant deployments follow the same rule.
pub fn check_label(field: &str, value: &str) -> Result<(), FieldError> {
    let valid = value.len() <= LABEL_MAX_LEN
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{} must match ^[a-z0-9][a-z0-9._-]{{0,62}}$ (a lowercase letter or digit, \
                 then lowercase letters, digits, . _ or -; 1 to 63 characters)",
                shown(value)
            ),
        ))
    }
}

/// A selector over tenant labels: a tenant matches when it has every one of
/// the pairs (`{"ring": "canary", "zone": "a"}` is canaries in zone a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "BTreeMap<String, String>")]
pub struct LabelSelector(BTreeMap<String, String>);

impl LabelSelector {
    /// Reads `{"key": "value", …}` (at least one pair) as the field `field`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        let Value::Object(pairs) = value else {
            return Err(FieldError::new(
                field,
                format!(
                    "invalid type: {}, expected an object of label pairs, e.g. {{\"ring\": \"canary\"}}",
                    json_kind(value)
                ),
            ));
        };
        if pairs.is_empty() {
            return Err(FieldError::new(
                field,
                "is empty; name at least one label (to select every tenant, say \"all\")",
            ));
        }
        let mut labels = BTreeMap::new();
        for (key, value) in pairs {
            check_label(field, key)
                .map_err(|e| FieldError::new(e.field, format!("key {}", e.reason)))?;
            let at = format!("{field}.{key}");
            let Value::String(value) = value else {
                return Err(FieldError::new(
                    at,
                    format!(
                        "invalid type: {}, expected a label value (a string)",
                        json_kind(value)
                    ),
                ));
            };
            check_label(&at, value)?;
            labels.insert(key.clone(), value.clone());
        }
        Ok(Self(labels))
    }

    /// Whether a tenant with `labels` has every pair of the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The pairs, sorted by key.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl fmt::Display for LabelSelector {
    /// `ring=canary,zone=a`, as the CLI's `--label` takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&pairs.join(","))
    }
}

impl TryFrom<Value> for LabelSelector {
    type Error = FieldError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse("labels", &value)
    }
}

impl From<LabelSelector> for BTreeMap<String, String> {
    fn from(selector: LabelSelector) -> Self {
        selector.0
    }
}

// ---------------------------------------------------------------- tenants

/// Which tenants of the environment a rollout is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum TenantSelection {
    /// `"all"`: every tenant the registry knows in the environment.
    All,
    /// `["a", "b"]`: these tenants, each of which must be deployed there.
    Named(Vec<TenantName>),
    /// `{"labels": {"ring": "canary"}}`: the tenants whose labels match.
    Labels(LabelSelector),
}

impl TenantSelection {
    /// Reads `"all"`, a list of tenant names or `{"labels": {…}}` as `field`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        const EXPECTED: &str =
            "expected \"all\", a list of tenant names or {\"labels\": {\"key\": \"value\"}}";
        match value {
            Value::String(s) if s == "all" => Ok(Self::All),
            Value::String(s) => Err(FieldError::new(
                field,
                format!("{} is not a selection; {EXPECTED}", shown(s)),
            )),
            Value::Array(_) => Ok(Self::Named(tenant_list(field, value)?)),
            Value::Object(map) => {
                if let Some(other) = map.keys().find(|k| *k != "labels") {
                    return Err(FieldError::new(
                        child(field, other),
                        format!("unknown field; {EXPECTED}"),
                    ));
                }
                match map.get("labels") {
                    Some(labels) => Ok(Self::Labels(LabelSelector::parse(
                        &format!("{field}.labels"),
                        labels,
                    )?)),
                    None => Err(FieldError::new(field, format!("is empty; {EXPECTED}"))),
                }
            }
            other => Err(FieldError::new(
                field,
                format!("invalid type: {}, {EXPECTED}", json_kind(other)),
            )),
        }
    }
}

impl TryFrom<Value> for TenantSelection {
    type Error = FieldError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse("tenants", &value)
    }
}

impl From<TenantSelection> for Value {
    fn from(selection: TenantSelection) -> Self {
        match selection {
            TenantSelection::All => Value::from("all"),
            TenantSelection::Named(names) => names.iter().map(|t| t.as_str()).collect(),
            TenantSelection::Labels(s) => serde_json::json!({ "labels": s.labels() }),
        }
    }
}

/// A non-empty JSON list of distinct tenant names, as `field`.
fn tenant_list(field: &str, value: &Value) -> Result<Vec<TenantName>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            field,
            format!(
                "invalid type: {}, expected a list of tenant names",
                json_kind(value)
            ),
        ));
    };
    if items.is_empty() {
        return Err(FieldError::new(field, "is empty; name at least one tenant"));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::String(name) = item else {
            return Err(FieldError::new(
                at,
                format!("invalid type: {}, expected a tenant name", json_kind(item)),
            ));
        };
        let tenant = TenantName::parse(name).map_err(|e| FieldError::new(&at, e.reason))?;
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Err(FieldError::new(
                at,
                format!("{} is listed twice (also {field}[{first}])", shown(name)),
            ));
        }
        names.push(tenant);
    }
    Ok(names)
}

// ---------------------------------------------------------------- waves

/// One wave as the event describes it. Waves run in the order listed; the
/// tenants no listed wave takes form one final wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", rename_all = "snake_case")]
pub enum WaveSpec {
    /// `{"tenants": ["a", "b"]}`: these tenants (named canaries).
    Tenants(Vec<TenantName>),
    /// `{"labels": {"ring": "canary"}}`: the selected tenants with these labels.
    Labels(LabelSelector),
    /// `{"percent": 25}`: this share of the rollout's size, rounded up.
    Percent(u8),
    /// `{"count": 10}`: this many tenants.
    Count(u32),
}

/// What a wave may be, for messages.
const WAVE_SHAPES: &str = "a wave is exactly one of {\"tenants\": [...]}, {\"labels\": {...}}, \
                           {\"percent\": 1 to 100} or {\"count\": 1 or more}";

impl WaveSpec {
    /// Reads one wave as `field` (e.g. `detail.waves[1]`).
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        let Value::Object(map) = value else {
            return Err(FieldError::new(
                field,
                format!("invalid type: {}; {WAVE_SHAPES}", json_kind(value)),
            ));
        };
        const KINDS: [&str; 4] = ["tenants", "labels", "percent", "count"];
        if let Some(other) = map.keys().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                child(field, other),
                format!("unknown field; {WAVE_SHAPES}"),
            ));
        }
        let mut kinds = map.iter();
        let (Some((kind, inner)), None) = (kinds.next(), kinds.next()) else {
            let reason = if map.is_empty() {
                format!("is empty; {WAVE_SHAPES}")
            } else {
                let mut keys: Vec<String> = map.keys().map(|k| format!("{k:?}")).collect();
                keys.sort();
                format!("has {}; {WAVE_SHAPES}", keys.join(" and "))
            };
            return Err(FieldError::new(field, reason));
        };
        let at = format!("{field}.{kind}");
        match kind.as_str() {
            "tenants" => Ok(Self::Tenants(tenant_list(&at, inner)?)),
            "labels" => Ok(Self::Labels(LabelSelector::parse(&at, inner)?)),
            "percent" => {
                let p = whole_number(&at, inner, "1 to 100")?;
                if !(1..=100).contains(&p) {
                    return Err(FieldError::new(at, format!("{p} is outside 1..=100")));
                }
                Ok(Self::Percent(p as u8))
            }
            _ => {
                let n = whole_number(&at, inner, "1 or more")?;
                match u32::try_from(n) {
                    Ok(n) if n >= 1 => Ok(Self::Count(n)),
                    _ => Err(FieldError::new(
                        at,
                        format!("{n} is outside 1..={}", u32::MAX),
                    )),
                }
            }
        }
    }
}

impl TryFrom<Value> for WaveSpec {
    type Error = FieldError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse("wave", &value)
    }
}

/// A JSON number without a fraction, at least 0.
fn whole_number(field: &str, value: &Value, expected: &str) -> Result<u64, FieldError> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            FieldError::new(
                field,
                format!("{n} is not a whole number of 0 or more; expected {expected}"),
            )
        }),
        other => Err(FieldError::new(
            field,
            format!(
                "invalid type: {}, expected a whole number, {expected}",
                json_kind(other)
            ),
        )),
    }
}

// ---------------------------------------------------------------- budget

/// How many failures a wave, or the whole rollout, may have before it halts.
///
/// A percentage is of the wave's or the rollout's size and rounds **down**:
/// `"10%"` of 5 tenants allows no failure, of 10 allows one. Rounding up
/// would let a 1-tenant canary wave fail under any percentage, which is the
/// failure a canary exists to catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Budget {
    /// At most this many failures.
    Count(u32),
    /// At most this share (0 to 100) of the tenants, rounded down.
    Percent(u8),
}

impl Default for Budget {
    /// No failure: the first failed tenant halts the rollout.
    fn default() -> Self {
        Self::Count(0)
    }
}

impl Budget {
    /// Reads `N` (a count) or `"P%"` (0 to 100 percent) as `field`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        const EXPECTED: &str =
            "expected a number of failures (e.g. 2) or a percentage (e.g. \"10%\")";
        match value {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Count)
                .ok_or_else(|| {
                    FieldError::new(
                        field,
                        format!("{n} is not a whole number of 0 or more; {EXPECTED}"),
                    )
                }),
            Value::String(s) => {
                let percent = s
                    .strip_suffix('%')
                    .filter(|p| {
                        !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|p| p.parse::<u8>().ok());
                match percent {
                    Some(p) if p <= 100 => Ok(Self::Percent(p)),
                    Some(p) => Err(FieldError::new(field, format!("{p}% is more than 100%"))),
                    None => Err(FieldError::new(
                        field,
                        format!("{} is not a percentage like \"10%\"; {EXPECTED}", shown(s)),
                    )),
                }
            }
            other => Err(FieldError::new(
                field,
                format!("invalid type: {}, {EXPECTED}", json_kind(other)),
            )),
        }
    }

    /// How many failures among `of` tenants this budget tolerates.
    pub fn allowance(&self, of: usize) -> usize {
        match *self {
            Self::Count(n) => n as usize,
            Self::Percent(p) => of * usize::from(p) / 100,
        }
    }

    /// Whether `failed` failures among `of` tenants are within the budget.
    pub fn allows(&self, failed: usize, of: usize) -> bool {
        failed <= self.allowance(of)
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl TryFrom<Value> for Budget {
    type Error = FieldError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse("budget", &value)
    }
}

impl From<Budget> for Value {
    fn from(budget: Budget) -> Self {
        match budget {
            Budget::Count(n) => Value::from(n),
            Budget::Percent(p) => Value::from(format!("{p}%")),
        }
    }
}

/// `failure_budget`: per wave and for the whole rollout. Either left out
/// allows **no** failure: a rollout that should tolerate failures says so,
/// and the default is the safe one (the first failure stops the fleet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureBudget {
    /// Failures one wave may have (percent: of that wave's tenants).
    #[serde(default)]
    pub per_wave: Budget,
    /// Failures the rollout may have in all (percent: of the rollout's size).
    #[serde(default)]
    pub overall: Budget,
}

impl FailureBudget {
    /// Reads `{"per_wave": …, "overall": …}` (both optional) as `field`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        let Value::Object(map) = value else {
            return Err(FieldError::new(
                field,
                format!(
                    "invalid type: {}, expected {{\"per_wave\": N or \"P%\", \"overall\": N or \"P%\"}}",
                    json_kind(value)
                ),
            ));
        };
        if let Some(other) = map.keys().find(|k| *k != "per_wave" && *k != "overall") {
            return Err(FieldError::new(
                child(field, other),
                "unknown field, expected `per_wave` or `overall`",
            ));
        }
        let budget = |key: &str| {
            map.get(key)
                .map(|v| Budget::parse(&format!("{field}.{key}"), v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(Self {
            per_wave: budget("per_wave")?,
            overall: budget("overall")?,
        })
    }
}

// ---------------------------------------------------------------- request

/// `detail` of a rollout request, exactly as it may appear on the bus; the
/// structured fields are read by hand so their errors name the inner field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutDetail {
    environment: String,
    image: String,
    tenants: Value,
    #[serde(default)]
    waves: Option<Vec<Value>>,
    #[serde(default)]
    max_parallel: Option<u32>,
    #[serde(default)]
    failure_budget: Option<Value>,
    #[serde(default)]
    bake_seconds: Option<u32>,
    requested_by: String,
    #[serde(default)]
    request_id: Option<String>,
}

/// A validated `Fleet Rollout Requested` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// Environment whose fleet moves (known to the config).
    pub environment: EnvironmentName,
    /// Image every selected tenant ends up on. Required: "the environment's
    /// default" would mean a different image depending on when it is read.
    pub image: ImageRef,
    /// Which tenants. Required: a whole fleet moves only when asked in words.
    pub tenants: TenantSelection,
    /// Waves in order; empty: one wave of every tenant.
    pub waves: Vec<WaveSpec>,
    /// Most child deployments running at once (1 to [`MAX_PARALLEL_MAX`]).
    pub max_parallel: u32,
    /// When a wave's failures halt the rollout.
    pub failure_budget: FailureBudget,
    /// Seconds to wait between waves, after one found within budget and
    /// before the next starts; none after the last (0 to a day).
    pub bake_seconds: u32,
    /// Who asked, in canonical form; always an e-mail address (see [`Self::from_event`]).
    pub requested_by: String,
    /// The sender's idempotency key, under the tenant events' rule.
    pub request_id: Option<String>,
}

impl RolloutRequest {
    /// Parses and validates a raw EventBridge event against the known environments.
    ///
    /// `requested_by` must be an e-mail address in every environment (for
    /// tenant events only where a quorum decides): a rollout touches many
    /// tenants, reports to its requester, and the same request is meant to
    /// be re-sent for sit then prod, where the address is needed anyway.
    pub fn from_event(event: &Value, environments: &EnvironmentSet) -> Result<Self, FieldError> {
        if !event.is_object() {
            return Err(FieldError::new(
                "event",
                format!(
                    "invalid type: {}, expected a JSON object (an EventBridge event)",
                    json_kind(event)
                ),
            ));
        }
        let event: EventBridgeEvent<Value> = typed(event.clone(), "", "event")?;
        if event.source != EVENT_SOURCE {
            return Err(FieldError::new(
                "source",
                format!(
                    "is {}; stepdeploy only reads events from source {EVENT_SOURCE:?}",
                    shown(&event.source)
                ),
            ));
        }
        if event.detail_type != ROLLOUT_REQUESTED {
            return Err(FieldError::new(
                "detail-type",
                format!(
                    "is {}; expected {ROLLOUT_REQUESTED:?}",
                    shown(&event.detail_type)
                ),
            ));
        }
        if !event.detail.is_object() {
            return Err(FieldError::new(
                "detail",
                format!(
                    "invalid type: {}, expected a JSON object with the rollout's fields",
                    json_kind(&event.detail)
                ),
            ));
        }
        let detail: RolloutDetail = typed(event.detail, "detail", "event")?;
        Self::validate(detail, environments)
    }

    fn validate(detail: RolloutDetail, environments: &EnvironmentSet) -> Result<Self, FieldError> {
        let environment =
            EnvironmentName::parse(&detail.environment).map_err(|e| e.within("detail"))?;
        if environments.get(environment.as_str()).is_err() {
            return Err(FieldError::new(
                "detail.environment",
                format!(
                    "unknown environment {:?} (known: {})",
                    environment.as_str(),
                    environments.names().join(", ")
                ),
            ));
        }
        let image = ImageRef::parse(&detail.image).map_err(|e| e.within("detail"))?;
        let tenants = TenantSelection::parse("detail.tenants", &detail.tenants)?;
        let raw_waves = detail.waves.unwrap_or_default();
        if raw_waves.len() > MAX_WAVES {
            return Err(FieldError::new(
                "detail.waves",
                format!(
                    "lists {} waves; at most {MAX_WAVES} (use counts or percentages for the rest: \
                     the tenants no wave takes form one final wave)",
                    raw_waves.len()
                ),
            ));
        }
        let mut waves = Vec::with_capacity(raw_waves.len());
        // A tenant named by two waves: which one runs it would be a guess.
        let mut named_in: BTreeMap<TenantName, usize> = BTreeMap::new();
        for (i, raw) in raw_waves.iter().enumerate() {
            let wave = WaveSpec::parse(&format!("detail.waves[{i}]"), raw)?;
            if let WaveSpec::Tenants(names) = &wave {
                for (j, t) in names.iter().enumerate() {
                    if let Some(first) = named_in.insert(t.clone(), i) {
                        return Err(FieldError::new(
                            format!("detail.waves[{i}].tenants[{j}]"),
                            format!("\"{t}\" is already in detail.waves[{first}]"),
                        ));
                    }
                }
            }
            waves.push(wave);
        }
        let max_parallel = detail.max_parallel.unwrap_or(MAX_PARALLEL_DEFAULT);
        if !(1..=MAX_PARALLEL_MAX).contains(&max_parallel) {
            return Err(FieldError::new(
                "detail.max_parallel",
                format!(
                    "{max_parallel} is outside 1..={MAX_PARALLEL_MAX} (child deployments at once; \
                     more only meets the account's API throttles)"
                ),
            ));
        }
        let failure_budget = match &detail.failure_budget {
            Some(v) => FailureBudget::parse("detail.failure_budget", v)?,
            None => FailureBudget::default(),
        };
        let bake_seconds = detail.bake_seconds.unwrap_or(0);
        if bake_seconds > BAKE_SECONDS_MAX {
            return Err(FieldError::new(
                "detail.bake_seconds",
                format!("{bake_seconds} is outside 0..={BAKE_SECONDS_MAX} (one day)"),
            ));
        }
        let requested_by =
            crate::identity::canonical_email("detail.requested_by", &detail.requested_by)?;
        check_request_id(detail.request_id.as_deref())?;
        Ok(Self {
            environment,
            image,
            tenants,
            waves,
            max_parallel,
            failure_budget,
            bake_seconds,
            requested_by,
            request_id: detail.request_id,
        })
    }
}

/// `parent.key`, the key quoted when it is not a plain name.
fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}.{}", shown(key))
    }
}

// ---------------------------------------------------------------- plan

/// A tenant of the environment as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetTenant {
    /// The tenant.
    pub name: TenantName,
    /// Its labels (`ring: canary`), as recorded with its deployment.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Image it runs now; `None` when the registry has none recorded (it is
    /// deployed, never skipped).
    pub image: Option<ImageRef>,
}

/// One wave of the plan: the tenants one Map runs, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// 1-based; empty waves are dropped before numbering, so numbers have no gaps.
    pub number: u32,
    /// The tenants, sorted by name.
    pub tenants: Vec<TenantName>,
}

/// Which tenants the rollout deploys, in which waves, and which it skips.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// Waves in the order they run; every deployed tenant is in exactly one.
    pub waves: Vec<Wave>,
    /// Selected tenants already on the image: no run, in no wave (sorted).
    pub skipped: Vec<TenantName>,
    /// The rollout's size: tenants in the waves (skipped ones not counted).
    /// Wave percentages and the overall budget's percentage are of this.
    pub total: usize,
}

/// Selects the tenants of `fleet` the request names, skips those already on
/// its image, and puts the rest in waves.
///
/// - Selection: a named tenant not in `fleet` is an error naming it; a
///   label selector or `"all"` that finds no tenant is an error (a rollout
///   of nothing is a typo).
/// - Skipping: a tenant whose recorded image is the request's image (the
///   same reference, compared as written) gets no run.
/// - Waves take tenants in two passes. First the `tenants` and `labels`
///   waves claim theirs, in wave order (a tenant both waves find goes to the
///   earlier); then `percent` and `count` waves take, in wave order, the
///   next unclaimed tenants by name. A percentage is of the rollout's size
///   ([`RolloutPlan::total`]), rounded up, so `{"percent": 10}` is never
///   empty while tenants are left; it is not of those left, so listed
///   percentages read as shares of the fleet. Whatever is left forms one
///   final wave. Empty waves are dropped.
/// - A tenant a wave names must be deployed and selected; a label wave must
///   match a selected tenant. A misspelt canary would otherwise vanish and
///   leave the whole fleet to the later waves, without the canary's brake.
pub fn plan(request: &RolloutRequest, fleet: &[FleetTenant]) -> Result<RolloutPlan, FieldError> {
    let mut by_name: BTreeMap<&TenantName, &FleetTenant> = BTreeMap::new();
    for tenant in fleet {
        by_name.entry(&tenant.name).or_insert(tenant);
    }
    let selected = select(request, &by_name)?;
    check_waves(request, &by_name, &selected)?;
    let on_image = |t: &TenantName| {
        by_name[t]
            .image
            .as_ref()
            .is_some_and(|i| i.as_str() == request.image.as_str())
    };
    let (skipped, deploy): (BTreeSet<&TenantName>, BTreeSet<&TenantName>) =
        selected.into_iter().partition(|t| on_image(t));
    let waves = assign(&request.waves, &by_name, &deploy)
        .into_iter()
        .filter(|tenants| !tenants.is_empty())
        .zip(1..)
        .map(|(tenants, number)| Wave { number, tenants })
        .collect();
    Ok(RolloutPlan {
        waves,
        skipped: skipped.into_iter().cloned().collect(),
        total: deploy.len(),
    })
}

type Fleet<'a> = BTreeMap<&'a TenantName, &'a FleetTenant>;

/// The tenants `request.tenants` selects from the fleet, in name order.
fn select<'a>(
    request: &RolloutRequest,
    fleet: &Fleet<'a>,
) -> Result<BTreeSet<&'a TenantName>, FieldError> {
    let env = &request.environment;
    let selected: BTreeSet<&TenantName> = match &request.tenants {
        TenantSelection::All => fleet.keys().copied().collect(),
        TenantSelection::Named(names) => names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                fleet.get_key_value(t).map(|(k, _)| *k).ok_or_else(|| {
                    FieldError::new(
                        format!("detail.tenants[{i}]"),
                        format!("\"{t}\" is not deployed in {env}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        TenantSelection::Labels(selector) => fleet
            .iter()
            .filter(|(_, t)| selector.matches(&t.labels))
            .map(|(k, _)| *k)
            .collect(),
    };
    if selected.is_empty() {
        return Err(match &request.tenants {
            TenantSelection::Labels(s) => FieldError::new(
                "detail.tenants.labels",
                format!("no tenant deployed in {env} has {s}"),
            ),
            _ => FieldError::new("detail.tenants", format!("no tenant is deployed in {env}")),
        });
    }
    Ok(selected)
}

/// Every tenant a wave names is deployed and selected; every label wave
/// matches a selected tenant.
fn check_waves(
    request: &RolloutRequest,
    fleet: &Fleet,
    selected: &BTreeSet<&TenantName>,
) -> Result<(), FieldError> {
    let env = &request.environment;
    for (i, spec) in request.waves.iter().enumerate() {
        match spec {
            WaveSpec::Tenants(names) => {
                for (j, t) in names.iter().enumerate() {
                    let at = format!("detail.waves[{i}].tenants[{j}]");
                    if !fleet.contains_key(t) {
                        return Err(FieldError::new(
                            at,
                            format!("\"{t}\" is not deployed in {env}"),
                        ));
                    }
                    if !selected.contains(t) {
                        return Err(FieldError::new(
                            at,
                            format!("\"{t}\" is not among the tenants this rollout selects (detail.tenants)"),
                        ));
                    }
                }
            }
            WaveSpec::Labels(selector)
                if !selected.iter().any(|t| selector.matches(&fleet[*t].labels)) =>
            {
                return Err(FieldError::new(
                    format!("detail.waves[{i}].labels"),
                    format!("no tenant this rollout selects in {env} has {selector}"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The tenants of each listed wave and, last, the final wave (any may be
/// empty), each in name order: named and label waves claim first, then
/// percentages and counts take from the rest (see [`plan`]).
fn assign(
    specs: &[WaveSpec],
    fleet: &Fleet,
    deploy: &BTreeSet<&TenantName>,
) -> Vec<Vec<TenantName>> {
    let mut wave_of: BTreeMap<&TenantName, usize> = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let claims: Vec<&TenantName> = match spec {
            WaveSpec::Tenants(names) => names
                .iter()
                .filter_map(|t| deploy.get(t).copied())
                .collect(),
            WaveSpec::Labels(s) => deploy
                .iter()
                .copied()
                .filter(|t| s.matches(&fleet[*t].labels))
                .collect(),
            WaveSpec::Percent(_) | WaveSpec::Count(_) => continue,
        };
        for t in claims {
            wave_of.entry(t).or_insert(i);
        }
    }
    let mut left: VecDeque<&TenantName> = deploy
        .iter()
        .copied()
        .filter(|t| !wave_of.contains_key(t))
        .collect();
    for (i, spec) in specs.iter().enumerate() {
        let want = match *spec {
            WaveSpec::Percent(p) => (deploy.len() * usize::from(p)).div_ceil(100),
            WaveSpec::Count(n) => n as usize,
            WaveSpec::Tenants(_) | WaveSpec::Labels(_) => continue,
        };
        for t in left.drain(..want.min(left.len())) {
            wave_of.insert(t, i);
        }
    }
    for t in left {
        wave_of.insert(t, specs.len());
    }
    let mut waves: Vec<Vec<TenantName>> = vec![Vec::new(); specs.len() + 1];
    // `wave_of` iterates in name order, so every wave comes out sorted.
    for (t, i) in wave_of {
        waves[i].push(t.clone());
    }
    waves
}

// ---------------------------------------------------------------- verdict

/// How one tenant's deployment in the rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantOutcome {
    /// Its run succeeded: it is on the image.
    Succeeded,
    /// Its run failed (and rolled itself back): counts against the budget.
    Failed,
    /// Already on the image: no run.
    Skipped,
    /// Another run held the tenant (`DeploymentLocked`); not deployed.
    ///
    /// The rule: a rollout does not wait for a lock, it reports the tenant.
    /// Locked is not a failure: the image was not tried, so it says nothing
    /// about the image, which is what the budget judges. Re-sending the
    /// rollout under a new `request_id` touches only the tenants not yet on
    /// the image (the others are skipped), so a lock costs one cheap re-run.
    Locked,
}

/// What the rollout learned about one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantResult {
    /// The tenant.
    pub tenant: TenantName,
    /// How its deployment ended.
    pub outcome: TenantOutcome,
    /// Its child execution's name or ARN, when one was started.
    #[serde(default)]
    pub execution: Option<String>,
    /// The child's error and cause, when it failed or was locked.
    #[serde(default)]
    pub error: Option<String>,
    /// How long its run took.
    #[serde(default)]
    pub duration_seconds: Option<u64>,
}

/// What the rollout does after a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Within budget and waves remain: bake, then run the next wave.
    Continue,
    /// Over budget: no later wave starts; the reason is one line.
    Halt {
        /// Which budget, how many failed, and who.
        reason: String,
    },
    /// Every wave ran within budget.
    Done,
}

/// Tenants named in messages before "and N more".
const NAMED_MAX: usize = 5;

/// The verdict after waves `1..=completed` of `plan` ran, given every
/// result so far.
///
/// Failed tenants count, and so does a tenant of a completed wave with no
/// result (its outcome is unknown, so not known to be good); succeeded,
/// skipped and locked ones do not. When one tenant has several results the
/// last one counts. Every completed wave is held to the per-wave budget
/// (of its own size) and all of them together to the overall budget (of
/// [`RolloutPlan::total`]), so the answer does not depend on having asked
/// after every wave. A breach halts even after the last wave: the rollout
/// then ends as halted, not succeeded.
pub fn verdict(
    plan: &RolloutPlan,
    budget: &FailureBudget,
    completed: u32,
    results: &[TenantResult],
) -> Verdict {
    let latest = latest_results(results);
    let done = plan.waves.iter().take(completed as usize);
    let mut failed_overall: Vec<String> = Vec::new();
    for wave in done {
        let failed: Vec<String> = wave
            .tenants
            .iter()
            .filter_map(|t| match latest.get(t) {
                None => Some(format!("{t} (no result)")),
                Some(r) if r.outcome == TenantOutcome::Failed => Some(t.to_string()),
                Some(_) => None,
            })
            .collect();
        if !budget.per_wave.allows(failed.len(), wave.tenants.len()) {
            return Verdict::Halt {
                reason: format!(
                    "wave {}: {} of {} tenants failed ({}); the per-wave failure budget ({}) allows {}",
                    wave.number,
                    failed.len(),
                    wave.tenants.len(),
                    named(&failed),
                    budget.per_wave,
                    budget.per_wave.allowance(wave.tenants.len())
                ),
            };
        }
        failed_overall.extend(failed);
    }
    if !budget.overall.allows(failed_overall.len(), plan.total) {
        return Verdict::Halt {
            reason: format!(
                "{} of {} tenants failed by wave {} ({}); the overall failure budget ({}) allows {}",
                failed_overall.len(),
                plan.total,
                completed.min(plan.waves.len() as u32),
                named(&failed_overall),
                budget.overall,
                budget.overall.allowance(plan.total)
            ),
        };
    }
    if completed as usize >= plan.waves.len() {
        Verdict::Done
    } else {
        Verdict::Continue
    }
}

/// The last result of each tenant.
fn latest_results(results: &[TenantResult]) -> BTreeMap<&TenantName, &TenantResult> {
    results.iter().map(|r| (&r.tenant, r)).collect()
}

/// `a, b, c, d, e and 3 more`.
fn named(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(NAMED_MAX).map(String::as_str).collect();
    match names.len().saturating_sub(NAMED_MAX) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

// ---------------------------------------------------------------- names

/// The execution name of `tenant`'s deployment in the rollout `rollout_name`
/// (the rollout's own execution name): `{tenant}-{env}-{rollout}_{hash}`,
/// at most 80 of `[A-Za-z0-9_-]`.
///
/// - Deterministic, so a redelivered or redriven wave starts nothing twice
///   (Step Functions refuses a second execution under a used name).
/// - It starts `{tenant}-{env}-` like every deployment's name
///   ([`crate::names::execution_name`]), so `status` and `history` find the
///   child under its tenant (`names::parse_execution_name`).
/// - It ends `_{hash}`, ten hex digits of SHA-256 of the whole rollout name,
///   the same for every child of one rollout (a listing finds them with
///   [`is_child_of`]). Names the trigger gives tenant events never hold `_`,
///   so an event cannot take a child's name, nor a child an event's.
/// - The rollout name in the middle is cut to fit 80 (characters outside
///   `[A-Za-z0-9_-]` become `-`); the tenant is never cut, so children of one
///   rollout are distinct for distinct tenants whatever the length, and the
///   hash keeps rollouts whose names share a long prefix apart.
pub fn child_execution_name(
    rollout_name: &str,
    environment: &EnvironmentName,
    tenant: &TenantName,
) -> String {
    let prefix = format!("{tenant}-{environment}-");
    let suffix = rollout_suffix(rollout_name);
    let room = crate::names::limits::EXECUTION_NAME.saturating_sub(prefix.len() + suffix.len());
    let middle: String = rollout_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    format!("{prefix}{middle}{suffix}")
}

/// Whether `execution_name` is a child deployment of the rollout `rollout_name`.
pub fn is_child_of(execution_name: &str, rollout_name: &str) -> bool {
    execution_name.ends_with(&rollout_suffix(rollout_name))
}

/// `_` and ten hex digits of SHA-256 of the rollout's name.
fn rollout_suffix(rollout_name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(rollout_name.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

// ---------------------------------------------------------------- report

/// Where the rollout's report lives in the config bucket:
/// `_rollouts/{env}/{rollout}.json`. Tenant documents live under
/// `{env}/…`, and no environment name starts with `_`, so no tenant or
/// environment can collide with a report.
pub fn report_key(environment: &EnvironmentName, rollout_name: &str) -> String {
    let name: String = rollout_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("_rollouts/{environment}/{name}.json")
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Waves remain (a report written mid-way, for `watch`).
    InProgress,
    /// Every wave ran within the failure budget.
    Succeeded,
    /// The failure budget stopped it; later waves were not touched.
    Halted,
}

/// One tenant's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantReport {
    /// The tenant.
    pub tenant: TenantName,
    /// Its wave; `None` for a tenant skipped because it was on the image.
    pub wave: Option<u32>,
    /// How it ended.
    pub outcome: TenantOutcome,
    /// Its child execution, when one ran.
    pub execution: Option<String>,
    /// How long its run took.
    pub duration_seconds: Option<u64>,
    /// Why it failed or was not deployed.
    pub error: Option<String>,
}

/// How many tenants ended which way. `selected` is the sum of the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutCounts {
    /// Tenants the request selected (deployed and skipped).
    pub selected: usize,
    /// On the image after their run.
    pub succeeded: usize,
    /// Their run failed (a tenant of a finished wave without a result too).
    pub failed: usize,
    /// Already on the image.
    pub skipped: usize,
    /// Held by another run.
    pub locked: usize,
    /// In waves that did not start (after a halt, or not yet).
    pub untouched: usize,
}

/// What a rollout did, per tenant, for the config bucket, the outcome
/// message and the `Fleet Rollout Succeeded` / `Halted` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutReport {
    /// The rollout's execution name.
    pub rollout: String,
    /// Its environment.
    pub environment: EnvironmentName,
    /// Its image.
    pub image: ImageRef,
    /// Who asked.
    pub requested_by: String,
    /// Where it stands.
    pub status: RolloutStatus,
    /// Why it halted.
    pub reason: Option<String>,
    /// Waves that ran to the end.
    pub waves_completed: u32,
    /// Waves in the plan.
    pub waves: u32,
    /// The tallies.
    pub counts: RolloutCounts,
    /// Every tenant with an outcome: by wave, then name; skipped ones last.
    pub tenants: Vec<TenantReport>,
    /// Tenants of waves that did not start, by wave then name.
    pub untouched: Vec<TenantName>,
}

impl RolloutReport {
    /// The report after waves `1..=completed` of `plan`, from every result
    /// so far; its status is [`verdict`]'s, so the two never disagree. A
    /// tenant of a completed wave without a result is reported failed, one
    /// of a later wave without a result untouched.
    pub fn new(
        rollout: &str,
        request: &RolloutRequest,
        plan: &RolloutPlan,
        completed: u32,
        results: &[TenantResult],
    ) -> Self {
        let completed = completed.min(plan.waves.len() as u32);
        let (status, reason) = match verdict(plan, &request.failure_budget, completed, results) {
            Verdict::Continue => (RolloutStatus::InProgress, None),
            Verdict::Halt { reason } => (RolloutStatus::Halted, Some(reason)),
            Verdict::Done => (RolloutStatus::Succeeded, None),
        };
        let latest = latest_results(results);
        let mut tenants = Vec::new();
        let mut untouched = Vec::new();
        for wave in &plan.waves {
            for t in &wave.tenants {
                let line = match latest.get(t) {
                    Some(r) => TenantReport {
                        tenant: t.clone(),
                        wave: Some(wave.number),
                        outcome: r.outcome,
                        execution: r.execution.clone(),
                        duration_seconds: r.duration_seconds,
                        error: r.error.clone(),
                    },
                    None if wave.number <= completed => TenantReport {
                        tenant: t.clone(),
                        wave: Some(wave.number),
                        outcome: TenantOutcome::Failed,
                        execution: None,
                        duration_seconds: None,
                        error: Some("no result was recorded for this tenant's deployment".into()),
                    },
                    None => {
                        untouched.push(t.clone());
                        continue;
                    }
                };
                tenants.push(line);
            }
        }
        tenants.extend(plan.skipped.iter().map(|t| TenantReport {
            tenant: t.clone(),
            wave: None,
            outcome: TenantOutcome::Skipped,
            execution: None,
            duration_seconds: None,
            error: None,
        }));
        let count = |o: TenantOutcome| tenants.iter().filter(|r| r.outcome == o).count();
        let counts = RolloutCounts {
            selected: plan.total + plan.skipped.len(),
            succeeded: count(TenantOutcome::Succeeded),
            failed: count(TenantOutcome::Failed),
            skipped: count(TenantOutcome::Skipped),
            locked: count(TenantOutcome::Locked),
            untouched: untouched.len(),
        };
        Self {
            rollout: rollout.to_string(),
            environment: request.environment.clone(),
            image: request.image.clone(),
            requested_by: request.requested_by.clone(),
            status,
            reason,
            waves_completed: completed,
            waves: plan.waves.len() as u32,
            counts,
            tenants,
            untouched,
        }
    }

    /// The event to publish for a finished rollout (`None` while in progress).
    pub fn detail_type(&self) -> Option<&'static str> {
        match self.status {
            RolloutStatus::InProgress => None,
            RolloutStatus::Succeeded => Some(ROLLOUT_SUCCEEDED),
            RolloutStatus::Halted => Some(ROLLOUT_HALTED),
        }
    }

    /// One line for the outcome message, e.g. `rollout r1: wordpress:6.5 to
    /// sit halted after wave 2 of 3 (wave 2: …); 4 deployed, 2 failed (a, b),
    /// 0 locked, 7 untouched, 3 already on the image`.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let state = match self.status {
            RolloutStatus::InProgress => format!(
                "in progress, wave {} of {} done",
                self.waves_completed, self.waves
            ),
            RolloutStatus::Succeeded => "succeeded".to_string(),
            RolloutStatus::Halted => format!(
                "halted after wave {} of {} ({})",
                self.waves_completed,
                self.waves,
                self.reason.as_deref().unwrap_or("over the failure budget")
            ),
        };
        let who = |o: TenantOutcome| {
            let names: Vec<String> = self
                .tenants
                .iter()
                .filter(|r| r.outcome == o)
                .map(|r| r.tenant.to_string())
                .collect();
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", named(&names))
            }
        };
        let line = format!(
            "rollout {}: {} to {} {state}; {} deployed, {} failed{}, {} locked{}, {} untouched, {} already on the image",
            self.rollout,
            self.image,
            self.environment,
            c.succeeded,
            c.failed,
            who(TenantOutcome::Failed),
            c.locked,
            who(TenantOutcome::Locked),
            c.untouched,
            c.skipped,
        );
        // The rollout name comes from outside; nothing else can break the line.
        crate::validate::one_line(&line, 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Request, DEPLOY_REQUESTED};
    use serde_json::json;
    use std::path::Path;

    fn environments() -> EnvironmentSet {
        EnvironmentSet::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments"),
        )
        .expect("configs")
    }

    fn event(detail_type: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": "stepdeploy", "account": "123456789012",
            "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": detail
        })
    }

    fn base() -> Value {
        json!({"environment": "sit", "image": "wordpress:6.5-apache", "tenants": "all",
               "requested_by": "jane@kimmyai.io"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut d = base();
        d[key] = value;
        d
    }

    fn parse(detail: Value) -> Result<RolloutRequest, FieldError> {
        RolloutRequest::from_event(&event(ROLLOUT_REQUESTED, detail), &environments())
    }

    fn request(detail: Value) -> RolloutRequest {
        let text = detail.to_string();
        parse(detail).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn t(name: &str) -> TenantName {
        TenantName::parse(name).expect("tenant")
    }

    fn names(list: &[TenantName]) -> Vec<&str> {
        list.iter().map(TenantName::as_str).collect()
    }

    fn tenant(name: &str, labels: &[(&str, &str)], image: Option<&str>) -> FleetTenant {
        FleetTenant {
            name: t(name),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            image: image.map(|i| ImageRef::parse(i).expect("image")),
        }
    }

    /// Thirteen tenants like the seed's, on 6.4; `alpha` and `bravo` are canaries.
    fn fleet() -> Vec<FleetTenant> {
        [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
            "juliet", "kilo", "lima", "mike",
        ]
        .iter()
        .map(|n| {
            let ring = if ["alpha", "bravo"].contains(n) {
                "canary"
            } else {
                "main"
            };
            tenant(n, &[("ring", ring)], Some("wordpress:6.4-apache"))
        })
        .collect()
    }

    fn waves(plan: &RolloutPlan) -> Vec<Vec<&str>> {
        plan.waves.iter().map(|w| names(&w.tenants)).collect()
    }

    fn result(name: &str, outcome: TenantOutcome) -> TenantResult {
        TenantResult {
            tenant: t(name),
            outcome,
            execution: Some(format!("{name}-sit-r1_0123456789")),
            error: (outcome == TenantOutcome::Failed).then(|| "VerificationFailed".to_string()),
            duration_seconds: Some(300),
        }
    }

    fn results(plan: &RolloutPlan, waves: u32, failed: &[&str]) -> Vec<TenantResult> {
        plan.waves
            .iter()
            .take(waves as usize)
            .flat_map(|w| &w.tenants)
            .map(|n| {
                let outcome = if failed.contains(&n.as_str()) {
                    TenantOutcome::Failed
                } else {
                    TenantOutcome::Succeeded
                };
                result(n.as_str(), outcome)
            })
            .collect()
    }

    // ------------------------------------------------------------ request

    #[test]
    fn minimal_request_takes_the_documented_defaults() {
        let r = request(base());
        assert_eq!(r.environment.as_str(), "sit");
        assert_eq!(r.image.as_str(), "wordpress:6.5-apache");
        assert_eq!(r.tenants, TenantSelection::All);
        assert!(r.waves.is_empty());
        assert_eq!(r.max_parallel, 5);
        assert_eq!(
            r.failure_budget,
            FailureBudget {
                per_wave: Budget::Count(0),
                overall: Budget::Count(0)
            }
        );
        assert_eq!(r.bake_seconds, 0);
        assert_eq!(r.requested_by, "jane@kimmyai.io");
        assert_eq!(r.request_id, None);
        // Explicit nulls read as absent, like the tenant events' optional fields.
        let mut d = base();
        for k in [
            "waves",
            "max_parallel",
            "failure_budget",
            "bake_seconds",
            "request_id",
        ] {
            d[k] = Value::Null;
        }
        assert_eq!(request(d), r);
    }

    #[test]
    fn full_request_round_trips_through_serde() {
        let r = request(json!({
            "environment": "prod", "image": "wordpress:6.5-apache",
            "tenants": {"labels": {"ring": "main", "zone": "eu-1"}},
            "waves": [{"tenants": ["alpha", "bravo"]}, {"labels": {"tier": "gold"}}, {"percent": 25}, {"count": 3}],
            "max_parallel": 100, "failure_budget": {"per_wave": 1, "overall": "10%"},
            "bake_seconds": 86400, "requested_by": "Ops+Fleet@Example.com",
            "request_id": "2f1c7a52-5d8e-4a51-9d0e-0c8d1b1e8f01"
        }));
        assert_eq!(r.requested_by, "ops@example.com", "canonical form");
        assert_eq!(
            r.waves,
            vec![
                WaveSpec::Tenants(vec![t("alpha"), t("bravo")]),
                WaveSpec::Labels(LabelSelector(
                    [("tier".to_string(), "gold".to_string())].into()
                )),
                WaveSpec::Percent(25),
                WaveSpec::Count(3),
            ]
        );
        assert_eq!(
            r.failure_budget,
            FailureBudget {
                per_wave: Budget::Count(1),
                overall: Budget::Percent(10)
            }
        );
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(
            json["tenants"],
            json!({"labels": {"ring": "main", "zone": "eu-1"}})
        );
        assert_eq!(json["waves"][0], json!({"tenants": ["alpha", "bravo"]}));
        assert_eq!(json["waves"][2], json!({"percent": 25}));
        assert_eq!(
            json["failure_budget"],
            json!({"per_wave": 1, "overall": "10%"})
        );
        let back: RolloutRequest = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, r);
        for selection in [
            TenantSelection::All,
            TenantSelection::Named(vec![t("alpha"), t("bravo")]),
        ] {
            let json = serde_json::to_value(&selection).expect("serialises");
            assert_eq!(
                serde_json::from_value::<TenantSelection>(json).expect("back"),
                selection
            );
        }
        // What comes back through serde is validated again.
        let bad = json!({"percent": 0});
        assert!(serde_json::from_value::<WaveSpec>(bad).is_err());
    }

    #[test]
    fn tenant_selections() {
        assert_eq!(
            request(with("tenants", json!(["alpha", "bravo"]))).tenants,
            TenantSelection::Named(vec![t("alpha"), t("bravo")])
        );
        let r = request(with("tenants", json!({"labels": {"ring": "canary"}})));
        let TenantSelection::Labels(s) = r.tenants else {
            panic!("labels")
        };
        assert_eq!(s.to_string(), "ring=canary");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases = [
            (
                with("environment", json!("qa")),
                "detail.environment",
                "unknown environment \"qa\" (known: dev, prod, sit)",
            ),
            (
                with("environment", json!("Sit")),
                "detail.environment",
                "must start with a lowercase letter",
            ),
            (
                with("image", json!("Not An Image")),
                "detail.image",
                "is not an image reference",
            ),
            (
                with("tenants", json!("everyone")),
                "detail.tenants",
                "\"everyone\" is not a selection",
            ),
            (
                with("tenants", json!(null)),
                "detail.tenants",
                "invalid type: null",
            ),
            (
                with("tenants", json!(3)),
                "detail.tenants",
                "invalid type: number",
            ),
            (with("tenants", json!([])), "detail.tenants", "is empty"),
            (
                with("tenants", json!(["alpha", "Bravo"])),
                "detail.tenants[1]",
                "must start with a lowercase letter",
            ),
            (
                with("tenants", json!(["alpha", 7])),
                "detail.tenants[1]",
                "expected a tenant name",
            ),
            (
                with("tenants", json!(["alpha", "bravo", "alpha"])),
                "detail.tenants[2]",
                "\"alpha\" is listed twice (also detail.tenants[0])",
            ),
            (with("tenants", json!({})), "detail.tenants", "is empty"),
            (
                with("tenants", json!({"ring": "canary"})),
                "detail.tenants.ring",
                "unknown field",
            ),
            (
                with("tenants", json!({"labels": {}})),
                "detail.tenants.labels",
                "is empty",
            ),
            (
                with("tenants", json!({"labels": ["ring"]})),
                "detail.tenants.labels",
                "invalid type: array",
            ),
            (
                with("tenants", json!({"labels": {"Ring": "canary"}})),
                "detail.tenants.labels",
                "key \"Ring\" must match",
            ),
            (
                with("tenants", json!({"labels": {"ring": "Canary"}})),
                "detail.tenants.labels.ring",
                "\"Canary\" must match",
            ),
            (
                with("tenants", json!({"labels": {"ring": ""}})),
                "detail.tenants.labels.ring",
                "must match",
            ),
            (
                with("tenants", json!({"labels": {"ring": 1}})),
                "detail.tenants.labels.ring",
                "expected a label value",
            ),
            (
                with("waves", json!({"percent": 10})),
                "detail.waves",
                "invalid type: map, expected a sequence",
            ),
            (
                with("waves", json!([{"percent": 10}, "canary"])),
                "detail.waves[1]",
                "invalid type: string",
            ),
            (
                with("waves", json!([{"percent": 10}, {}])),
                "detail.waves[1]",
                "is empty; a wave is exactly one of",
            ),
            (
                with("waves", json!([{"percent": 10}, {"percent": 0}])),
                "detail.waves[1].percent",
                "0 is outside 1..=100",
            ),
            (
                with("waves", json!([{"percent": 101}])),
                "detail.waves[0].percent",
                "101 is outside 1..=100",
            ),
            (
                with("waves", json!([{"percent": 12.5}])),
                "detail.waves[0].percent",
                "12.5 is not a whole number",
            ),
            (
                with("waves", json!([{"percent": "10%"}])),
                "detail.waves[0].percent",
                "invalid type: string",
            ),
            (
                with("waves", json!([{"count": 0}])),
                "detail.waves[0].count",
                "0 is outside 1..=",
            ),
            (
                with("waves", json!([{"count": -2}])),
                "detail.waves[0].count",
                "-2 is not a whole number",
            ),
            (
                with("waves", json!([{"percent": 10, "count": 2}])),
                "detail.waves[0]",
                "has \"count\" and \"percent\"",
            ),
            (
                with("waves", json!([{"size": 2}])),
                "detail.waves[0].size",
                "unknown field",
            ),
            (
                with("waves", json!([{"tenants": []}])),
                "detail.waves[0].tenants",
                "is empty",
            ),
            (
                with("waves", json!([{"tenants": ["alpha", "alpha"]}])),
                "detail.waves[0].tenants[1]",
                "listed twice",
            ),
            (
                with(
                    "waves",
                    json!([{"tenants": ["alpha"]}, {"tenants": ["bravo", "alpha"]}]),
                ),
                "detail.waves[1].tenants[1]",
                "\"alpha\" is already in detail.waves[0]",
            ),
            (
                with("waves", json!([{"labels": {"ring": "Canary"}}])),
                "detail.waves[0].labels.ring",
                "must match",
            ),
            (
                with("waves", Value::Array(vec![json!({"count": 1}); 21])),
                "detail.waves",
                "lists 21 waves; at most 20",
            ),
            (
                with("max_parallel", json!(0)),
                "detail.max_parallel",
                "0 is outside 1..=100",
            ),
            (
                with("max_parallel", json!(101)),
                "detail.max_parallel",
                "101 is outside 1..=100",
            ),
            (
                with("max_parallel", json!("5")),
                "detail.max_parallel",
                "invalid type: string \"5\"",
            ),
            (
                with("failure_budget", json!(2)),
                "detail.failure_budget",
                "invalid type: number",
            ),
            (
                with("failure_budget", json!({"per_wave": -1})),
                "detail.failure_budget.per_wave",
                "-1 is not a whole number",
            ),
            (
                with("failure_budget", json!({"overall": "110%"})),
                "detail.failure_budget.overall",
                "110% is more than 100%",
            ),
            (
                with("failure_budget", json!({"overall": "ten%"})),
                "detail.failure_budget.overall",
                "not a percentage",
            ),
            (
                with("failure_budget", json!({"overall": "10"})),
                "detail.failure_budget.overall",
                "not a percentage",
            ),
            (
                with("failure_budget", json!({"overall": "1.5%"})),
                "detail.failure_budget.overall",
                "not a percentage",
            ),
            (
                with("failure_budget", json!({"per_wave": true})),
                "detail.failure_budget.per_wave",
                "invalid type: boolean",
            ),
            (
                with("failure_budget", json!({"total": 1})),
                "detail.failure_budget.total",
                "unknown field",
            ),
            (
                with("bake_seconds", json!(86401)),
                "detail.bake_seconds",
                "86401 is outside 0..=86400",
            ),
            (
                with("bake_seconds", json!(-1)),
                "detail.bake_seconds",
                "invalid value: integer `-1`",
            ),
            (
                with("requested_by", json!("jane")),
                "detail.requested_by",
                "not an e-mail address",
            ),
            (
                with("requested_by", json!("jane@kimmyai.io\u{200B}")),
                "detail.requested_by",
                "U+200B",
            ),
            (
                with("requested_by", json!("")),
                "detail.requested_by",
                "is empty",
            ),
            (
                with("request_id", json!("no spaces")),
                "detail.request_id",
                "must be 1 to 36",
            ),
            (
                with("colour", json!("blue")),
                "detail.colour",
                "unknown field `colour`",
            ),
            (
                json!({"environment": "sit", "image": "wordpress", "requested_by": "a@b.io"}),
                "detail.tenants",
                "is missing",
            ),
            (
                json!({"environment": "sit", "tenants": "all", "requested_by": "a@b.io"}),
                "detail.image",
                "is missing",
            ),
            (
                json!(["sit"]),
                "detail",
                "invalid type: array, expected a JSON object",
            ),
        ];
        for (detail, field, why) in cases {
            let e = parse(detail.clone()).expect_err(&detail.to_string());
            assert_eq!(e.field, field, "{detail}: {e}");
            assert!(e.reason.contains(why), "{detail}: {}", e.reason);
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn only_stepdeploy_rollout_events() {
        let mut e = event(ROLLOUT_REQUESTED, base());
        e["source"] = json!("aws.ec2");
        assert_eq!(
            RolloutRequest::from_event(&e, &environments())
                .expect_err("source")
                .field,
            "source"
        );
        let err = RolloutRequest::from_event(&event(DEPLOY_REQUESTED, base()), &environments())
            .expect_err("type");
        assert_eq!(err.field, "detail-type");
        assert!(
            err.reason.contains("expected \"Fleet Rollout Requested\""),
            "{err}"
        );
        let err = RolloutRequest::from_event(&json!(["x"]), &environments()).expect_err("shape");
        assert_eq!(err.field, "event");
    }

    #[test]
    fn request_ids_follow_the_tenant_events_rule() {
        for id in [
            "2f1c7a52-5d8e-4a51-9d0e-0c8d1b1e8f01",
            "Release_7",
            "a",
            "",
            "no spaces",
            &"x".repeat(37),
            "ümlaut",
            "a/b",
        ] {
            let rollout = parse(with("request_id", json!(id))).is_ok();
            let deploy = Request::from_event(
                &event(DEPLOY_REQUESTED, json!({"tenant": "alpha", "environment": "sit", "requested_by": "jane", "request_id": id})),
                &environments(),
            )
            .is_ok();
            assert_eq!(rollout, deploy, "{id:?}");
        }
    }

    #[test]
    fn labels_use_a_conservative_charset() {
        for good in [
            "ring",
            "canary",
            "0",
            "eu-west-1",
            "v6.5",
            "a_b",
            &"a".repeat(63),
        ] {
            assert!(check_label("l", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Ring",
            "-a",
            ".a",
            "_a",
            "a=b",
            "a,b",
            "a b",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(check_label("l", bad).is_err(), "{bad:?}");
        }
        let selector =
            LabelSelector::parse("s", &json!({"ring": "canary", "zone": "a"})).expect("valid");
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selector.matches(&labels(&[
            ("ring", "canary"),
            ("zone", "a"),
            ("tier", "gold")
        ])));
        assert!(
            !selector.matches(&labels(&[("ring", "canary")])),
            "every pair must match"
        );
        assert!(!selector.matches(&labels(&[("ring", "canary"), ("zone", "b")])));
        assert_eq!(selector.to_string(), "ring=canary,zone=a");
    }

    // ------------------------------------------------------------ plan

    #[test]
    fn without_waves_one_wave_takes_everyone() {
        let p = plan(&request(base()), &fleet()).expect("plan");
        assert_eq!(p.waves.len(), 1);
        assert_eq!(p.waves[0].number, 1);
        assert_eq!(p.waves[0].tenants.len(), 13);
        assert!(
            p.waves[0].tenants.windows(2).all(|w| w[0] < w[1]),
            "sorted by name"
        );
        assert_eq!((p.total, p.skipped.len()), (13, 0));
    }

    #[test]
    fn canaries_then_percentages_then_the_rest() {
        let r = request(with(
            "waves",
            json!([{"tenants": ["bravo", "alpha"]}, {"percent": 25}, {"count": 2}]),
        ));
        let p = plan(&r, &fleet()).expect("plan");
        // 25% of 13 is 3.25: rounded up to 4, taken by name from those left.
        assert_eq!(
            waves(&p),
            vec![
                vec!["alpha", "bravo"],
                vec!["charlie", "delta", "echo", "foxtrot"],
                vec!["golf", "hotel"],
                vec!["india", "juliet", "kilo", "lima", "mike"],
            ]
        );
        assert_eq!(
            p.waves.iter().map(|w| w.number).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(p.total, 13);
    }

    #[test]
    fn named_and_label_waves_claim_before_percentages() {
        // `mike` is named in the last listed wave: the percentage before it
        // must not deploy it early.
        let r = request(with(
            "waves",
            json!([{"labels": {"ring": "canary"}}, {"percent": 100}, {"tenants": ["mike"]}]),
        ));
        let p = plan(&r, &fleet()).expect("plan");
        assert_eq!(waves(&p)[0], vec!["alpha", "bravo"]);
        assert_eq!(p.waves[1].tenants.len(), 10);
        assert!(!p.waves[1].tenants.contains(&t("mike")));
        assert_eq!(waves(&p)[2], vec!["mike"]);
        assert_eq!(p.waves.len(), 3, "nothing is left for a final wave");
        // A tenant both a label wave and a later named wave find goes to the earlier.
        let r = request(with(
            "waves",
            json!([{"labels": {"ring": "canary"}}, {"tenants": ["alpha", "charlie"]}]),
        ));
        let p = plan(&r, &fleet()).expect("plan");
        assert_eq!(waves(&p)[..2], [vec!["alpha", "bravo"], vec!["charlie"]]);
    }

    #[test]
    fn percentages_round_up_and_are_of_the_rollout_size() {
        let small: Vec<FleetTenant> = fleet().into_iter().take(3).collect();
        // 1% of 3 is 0.03: still one tenant.
        let p = plan(
            &request(with("waves", json!([{"percent": 1}, {"percent": 1}]))),
            &small,
        )
        .expect("plan");
        assert_eq!(
            waves(&p),
            vec![vec!["alpha"], vec!["bravo"], vec!["charlie"]]
        );
        // Shares of the whole, not of those left: 50% + 50% of 13 is 7 + 6.
        let p = plan(
            &request(with("waves", json!([{"percent": 50}, {"percent": 50}]))),
            &fleet(),
        )
        .expect("plan");
        assert_eq!(
            p.waves.iter().map(|w| w.tenants.len()).collect::<Vec<_>>(),
            vec![7, 6]
        );
        // A count larger than what is left takes what is left.
        let p = plan(
            &request(with("waves", json!([{"count": 10}, {"count": 10}]))),
            &fleet(),
        )
        .expect("plan");
        assert_eq!(
            p.waves.iter().map(|w| w.tenants.len()).collect::<Vec<_>>(),
            vec![10, 3]
        );
    }

    #[test]
    fn empty_waves_are_dropped_and_numbers_have_no_gaps() {
        let mut fleet = fleet();
        // Both canaries already run the new image.
        for t in fleet.iter_mut().take(2) {
            t.image = Some(ImageRef::parse("wordpress:6.5-apache").expect("image"));
        }
        let r = request(with(
            "waves",
            json!([{"tenants": ["alpha"]}, {"labels": {"ring": "canary"}}, {"count": 5}, {"count": 50}, {"count": 1}]),
        ));
        let p = plan(&r, &fleet).expect("plan");
        assert_eq!(names(&p.skipped), vec!["alpha", "bravo"]);
        assert_eq!(
            p.waves
                .iter()
                .map(|w| (w.number, w.tenants.len()))
                .collect::<Vec<_>>(),
            vec![(1, 5), (2, 6)]
        );
        assert_eq!(p.total, 11);
    }

    #[test]
    fn tenants_on_the_image_are_skipped_never_in_a_wave() {
        let mut fleet = fleet();
        fleet[3].image = Some(ImageRef::parse("wordpress:6.5-apache").expect("image")); // delta
        fleet[4].image = None; // echo: no image recorded, deployed
        let r = request(with("waves", json!([{"tenants": ["delta", "echo"]}])));
        let p = plan(&r, &fleet).expect("plan");
        assert_eq!(names(&p.skipped), vec!["delta"]);
        assert_eq!(waves(&p)[0], vec!["echo"]);
        assert!(p.waves.iter().all(|w| !w.tenants.contains(&t("delta"))));
        assert_eq!(p.total, 12);
        // Everyone on the image: a plan with nothing to do, not an error.
        let all_done: Vec<FleetTenant> = fleet
            .iter()
            .map(|f| FleetTenant {
                image: Some(ImageRef::parse("wordpress:6.5-apache").expect("image")),
                ..f.clone()
            })
            .collect();
        let p = plan(&request(base()), &all_done).expect("plan");
        assert_eq!((p.waves.len(), p.skipped.len(), p.total), (0, 13, 0));
        assert_eq!(
            verdict(&p, &FailureBudget::default(), 0, &[]),
            Verdict::Done
        );
    }

    #[test]
    fn selection_by_name_and_by_label() {
        let p = plan(
            &request(with("tenants", json!(["mike", "alpha", "kilo"]))),
            &fleet(),
        )
        .expect("plan");
        assert_eq!(waves(&p), vec![vec!["alpha", "kilo", "mike"]]);
        let p = plan(
            &request(with("tenants", json!({"labels": {"ring": "canary"}}))),
            &fleet(),
        )
        .expect("plan");
        assert_eq!(waves(&p), vec![vec!["alpha", "bravo"]]);
    }

    #[test]
    fn selection_errors_name_the_field_and_the_tenant() {
        let cases = [
            (
                with("tenants", json!(["alpha", "bravo", "acme"])),
                "detail.tenants[2]",
                "\"acme\" is not deployed in sit",
            ),
            (
                with("tenants", json!({"labels": {"ring": "canry"}})),
                "detail.tenants.labels",
                "no tenant deployed in sit has ring=canry",
            ),
            (
                json!({"environment": "sit", "image": "wordpress:6.5-apache", "tenants": ["alpha", "bravo"],
                       "waves": [{"tenants": ["alpha", "charlie"]}], "requested_by": "jane@kimmyai.io"}),
                "detail.waves[0].tenants[1]",
                "\"charlie\" is not among the tenants this rollout selects",
            ),
            (
                with("waves", json!([{"tenants": ["alpha", "acme"]}])),
                "detail.waves[0].tenants[1]",
                "\"acme\" is not deployed in sit",
            ),
            (
                with(
                    "waves",
                    json!([{"count": 1}, {"labels": {"ring": "canry"}}]),
                ),
                "detail.waves[1].labels",
                "has ring=canry",
            ),
        ];
        for (detail, field, why) in cases {
            let e = plan(&request(detail.clone()), &fleet()).expect_err(&detail.to_string());
            assert_eq!(e.field, field, "{detail}: {e}");
            assert!(e.reason.contains(why), "{detail}: {}", e.reason);
        }
        let e = plan(&request(base()), &[]).expect_err("empty fleet");
        assert_eq!(
            e.to_string(),
            "detail.tenants: no tenant is deployed in sit"
        );
    }

    // ------------------------------------------------------------ budget

    #[test]
    fn budgets_allow_counts_and_percentages_rounded_down() {
        assert!(Budget::Count(0).allows(0, 5));
        assert!(!Budget::Count(0).allows(1, 5));
        assert!(
            Budget::Count(2).allows(2, 1),
            "a count is not capped by the size"
        );
        assert!(!Budget::Count(2).allows(3, 100));
        // "10%" of 5 is 0.5: rounded down, no failure is allowed.
        assert!(!Budget::Percent(10).allows(1, 5));
        assert!(Budget::Percent(10).allows(0, 5));
        assert!(Budget::Percent(10).allows(1, 10));
        assert!(!Budget::Percent(10).allows(2, 19));
        assert!(Budget::Percent(100).allows(7, 7));
        assert!(!Budget::Percent(0).allows(1, 1000));
        assert_eq!(Budget::Percent(33).allowance(10), 3);
        assert_eq!(
            (Budget::Count(3).to_string(), Budget::Percent(5).to_string()),
            ("3".into(), "5%".into())
        );
        assert_eq!(Budget::parse("b", &json!("0%")), Ok(Budget::Percent(0)));
        assert_eq!(Budget::parse("b", &json!("100%")), Ok(Budget::Percent(100)));
        assert!(Budget::parse("b", &json!("%")).is_err());
        assert!(Budget::parse("b", &json!("0100%")).is_err());
        assert!(Budget::parse("b", &json!(" 5%")).is_err());
        assert!(Budget::parse("b", &json!(u64::from(u32::MAX) + 1)).is_err());
    }

    fn canary_plan(budget: Value) -> (RolloutRequest, RolloutPlan) {
        let mut d = with(
            "waves",
            json!([{"tenants": ["alpha", "bravo"]}, {"count": 5}]),
        );
        d["failure_budget"] = budget;
        let r = request(d);
        let p = plan(&r, &fleet()).expect("plan");
        assert_eq!(
            p.waves.iter().map(|w| w.tenants.len()).collect::<Vec<_>>(),
            vec![2, 5, 6]
        );
        (r, p)
    }

    #[test]
    fn the_default_budget_halts_on_the_first_failure() {
        let (r, p) = canary_plan(json!({}));
        let b = &r.failure_budget;
        assert_eq!(verdict(&p, b, 0, &[]), Verdict::Continue);
        assert_eq!(verdict(&p, b, 1, &results(&p, 1, &[])), Verdict::Continue);
        let Verdict::Halt { reason } = verdict(&p, b, 1, &results(&p, 1, &["bravo"])) else {
            panic!("halt")
        };
        assert_eq!(
            reason,
            "wave 1: 1 of 2 tenants failed (bravo); the per-wave failure budget (0) allows 0"
        );
        assert_eq!(verdict(&p, b, 3, &results(&p, 3, &[])), Verdict::Done);
    }

    #[test]
    fn per_wave_budget_is_of_the_wave() {
        let (r, p) = canary_plan(json!({"per_wave": "20%", "overall": 10}));
        let b = &r.failure_budget;
        // Wave 2 has 5 tenants: 20% allows 1.
        assert_eq!(
            verdict(&p, b, 2, &results(&p, 2, &["charlie"])),
            Verdict::Continue
        );
        let Verdict::Halt { reason } = verdict(&p, b, 2, &results(&p, 2, &["charlie", "delta"]))
        else {
            panic!("halt")
        };
        assert!(reason.starts_with("wave 2: 2 of 5 tenants failed (charlie, delta); the per-wave failure budget (20%) allows 1"), "{reason}");
        // The canary wave has 2 tenants: 20% of 2 allows none.
        assert!(matches!(
            verdict(&p, b, 1, &results(&p, 1, &["alpha"])),
            Verdict::Halt { .. }
        ));
        // Earlier waves are judged again: asking late gives the same answer.
        assert!(matches!(
            verdict(&p, b, 3, &results(&p, 3, &["alpha"])),
            Verdict::Halt { .. }
        ));
    }

    #[test]
    fn overall_budget_is_of_the_rollout() {
        let (r, p) = canary_plan(json!({"per_wave": 1, "overall": "20%"}));
        let b = &r.failure_budget;
        // 20% of 13 allows 2: one per wave passes twice, a third halts.
        assert_eq!(
            verdict(&p, b, 2, &results(&p, 2, &["alpha", "charlie"])),
            Verdict::Continue
        );
        let Verdict::Halt { reason } =
            verdict(&p, b, 3, &results(&p, 3, &["alpha", "charlie", "mike"]))
        else {
            panic!("halt")
        };
        assert_eq!(reason, "3 of 13 tenants failed by wave 3 (alpha, charlie, mike); the overall failure budget (20%) allows 2");
        // Within budget at the end: done, failures and all.
        assert_eq!(
            verdict(&p, b, 3, &results(&p, 3, &["alpha", "mike"])),
            Verdict::Done
        );
    }

    #[test]
    fn locked_and_skipped_do_not_spend_the_budget_but_missing_results_do() {
        let (r, p) = canary_plan(json!({}));
        let b = &r.failure_budget;
        let mut rs = results(&p, 1, &[]);
        rs[0].outcome = TenantOutcome::Locked;
        rs[1].outcome = TenantOutcome::Skipped;
        assert_eq!(verdict(&p, b, 1, &rs), Verdict::Continue);
        // bravo's result is missing: unknown is not known to be good.
        let Verdict::Halt { reason } = verdict(&p, b, 1, &rs[..1]) else {
            panic!("halt")
        };
        assert!(reason.contains("bravo (no result)"), "{reason}");
        // A tenant's last result counts (a retried child).
        let mut rs = results(&p, 1, &["alpha"]);
        rs.push(result("alpha", TenantOutcome::Succeeded));
        assert_eq!(verdict(&p, b, 1, &rs), Verdict::Continue);
        // Results of tenants in later waves do not count yet.
        let mut rs = results(&p, 1, &[]);
        rs.push(result("mike", TenantOutcome::Failed));
        assert_eq!(verdict(&p, b, 1, &rs), Verdict::Continue);
    }

    #[test]
    fn verdicts_and_results_have_the_shapes_the_state_machine_reads() {
        assert_eq!(
            serde_json::to_value(Verdict::Continue).expect("json"),
            json!({"verdict": "continue"})
        );
        assert_eq!(
            serde_json::to_value(Verdict::Done).expect("json"),
            json!({"verdict": "done"})
        );
        assert_eq!(
            serde_json::to_value(Verdict::Halt { reason: "r".into() }).expect("json"),
            json!({"verdict": "halt", "reason": "r"})
        );
        let r: TenantResult =
            serde_json::from_value(json!({"tenant": "alpha", "outcome": "locked"}))
                .expect("minimal result");
        assert_eq!(
            (r.outcome, r.execution, r.error, r.duration_seconds),
            (TenantOutcome::Locked, None, None, None)
        );
        for bad in [
            json!({"tenant": "Alpha", "outcome": "failed"}),
            json!({"tenant": "alpha", "outcome": "crashed"}),
            json!({"tenant": "alpha", "outcome": "failed", "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<TenantResult>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        // Asked past the last wave: the same as after it.
        let (r, p) = canary_plan(json!({}));
        assert_eq!(
            verdict(&p, &r.failure_budget, 9, &results(&p, 3, &[])),
            Verdict::Done
        );
    }

    #[test]
    fn halt_reasons_stay_short() {
        let r = request(with(
            "failure_budget",
            json!({"per_wave": "50%", "overall": "50%"}),
        ));
        let p = plan(&r, &fleet()).expect("plan");
        let failed: Vec<&str> = p.waves[0].tenants.iter().map(TenantName::as_str).collect();
        let Verdict::Halt { reason } = verdict(&p, &r.failure_budget, 1, &results(&p, 1, &failed))
        else {
            panic!("halt")
        };
        assert!(
            reason.contains("alpha, bravo, charlie, delta, echo and 8 more"),
            "{reason}"
        );
    }

    // ------------------------------------------------------------ names

    #[test]
    fn child_names_are_legal_deterministic_and_attributed_to_the_tenant() {
        let sit = EnvironmentName::parse("sit").expect("env");
        let name = child_execution_name("fleet-sit-build-42", &sit, &t("goldencrust"));
        let hash = rollout_suffix("fleet-sit-build-42");
        assert_eq!(name, format!("goldencrust-sit-fleet-sit-build-42{hash}"));
        assert_eq!(
            name,
            child_execution_name("fleet-sit-build-42", &sit, &t("goldencrust"))
        );
        assert_eq!(
            crate::names::parse_execution_name(&name),
            Some(("goldencrust", "sit")),
            "status and history find it under its tenant"
        );
        assert!(is_child_of(&name, "fleet-sit-build-42"));
        assert!(!is_child_of(&name, "fleet-sit-build-43"));
        // The trigger's names for tenant events never hold `_`; children always do.
        let trigger = crate::names::execution_name("goldencrust", "sit", "fleet-sit-build-42");
        assert!(!trigger.contains('_') && name.contains('_'));
    }

    #[test]
    fn child_names_fit_80_and_stay_distinct_when_cut() {
        let env = EnvironmentName::parse("abcdefgh").expect("env");
        let long = format!("rollout {}", "x".repeat(200));
        let tenants: Vec<TenantName> = (0..250)
            .map(|i| t(&format!("{}{i:03}", "t".repeat(17))))
            .collect();
        let mut seen = BTreeSet::new();
        for rollout in [
            long.as_str(),
            "r",
            "",
            "ünïcödé/rollout:name",
            &"y".repeat(80),
        ] {
            for tenant in &tenants {
                let name = child_execution_name(rollout, &env, tenant);
                assert!(name.len() <= 80, "{name}: {} characters", name.len());
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{name}"
                );
                assert!(name.starts_with(&format!("{tenant}-abcdefgh-")), "{name}");
                assert!(seen.insert(name.clone()), "{name} twice");
            }
        }
        // Two long rollouts that share the first 80 characters still differ.
        let a = child_execution_name(&format!("{long}-a"), &env, &tenants[0]);
        let b = child_execution_name(&format!("{long}-b"), &env, &tenants[0]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 80);
    }

    // ------------------------------------------------------------ report

    #[test]
    fn a_halted_report_names_failed_and_untouched_tenants() {
        let mut fleet = fleet();
        fleet[12].image = Some(ImageRef::parse("wordpress:6.5-apache").expect("image")); // mike
        let mut d = with(
            "waves",
            json!([{"tenants": ["alpha", "bravo"]}, {"count": 5}]),
        );
        d["failure_budget"] = json!({"per_wave": 1});
        let r = request(d);
        let p = plan(&r, &fleet).expect("plan");
        let mut rs = results(&p, 2, &["delta", "echo"]);
        rs.iter_mut()
            .find(|x| x.tenant.as_str() == "foxtrot")
            .expect("foxtrot")
            .outcome = TenantOutcome::Locked;
        let report = RolloutReport::new("fleet-sit-42", &r, &p, 2, &rs);
        assert_eq!(report.status, RolloutStatus::Halted);
        assert_eq!(report.detail_type(), Some(ROLLOUT_HALTED));
        assert_eq!(
            report.counts,
            RolloutCounts {
                selected: 13,
                succeeded: 4,
                failed: 2,
                skipped: 1,
                locked: 1,
                untouched: 5
            }
        );
        assert_eq!(
            names(&report.untouched),
            vec!["hotel", "india", "juliet", "kilo", "lima"]
        );
        let delta = report
            .tenants
            .iter()
            .find(|x| x.tenant.as_str() == "delta")
            .expect("delta");
        assert_eq!(
            (
                delta.wave,
                delta.outcome,
                delta.error.as_deref(),
                delta.duration_seconds
            ),
            (
                Some(2),
                TenantOutcome::Failed,
                Some("VerificationFailed"),
                Some(300)
            )
        );
        assert_eq!(delta.execution.as_deref(), Some("delta-sit-r1_0123456789"));
        let mike = report.tenants.last().expect("skipped last");
        assert_eq!(
            (mike.tenant.as_str(), mike.wave, mike.outcome),
            ("mike", None, TenantOutcome::Skipped)
        );
        assert_eq!(
            report.summary(),
            "rollout fleet-sit-42: wordpress:6.5-apache to sit halted after wave 2 of 3 \
             (wave 2: 2 of 5 tenants failed (delta, echo); the per-wave failure budget (1) allows 1); \
             4 deployed, 2 failed (delta, echo), 1 locked (foxtrot), 5 untouched, 1 already on the image"
        );
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["status"], "halted");
        assert_eq!(json["tenants"][0]["outcome"], "succeeded");
        assert_eq!(
            serde_json::from_value::<RolloutReport>(json).expect("back"),
            report
        );
    }

    #[test]
    fn succeeded_and_in_progress_reports() {
        let (r, p) = canary_plan(json!({"per_wave": 1, "overall": 1}));
        let report = RolloutReport::new("r1", &r, &p, 3, &results(&p, 3, &["kilo"]));
        assert_eq!(
            (report.status, report.detail_type()),
            (RolloutStatus::Succeeded, Some(ROLLOUT_SUCCEEDED))
        );
        assert_eq!(
            report.summary(),
            "rollout r1: wordpress:6.5-apache to sit succeeded; 12 deployed, 1 failed (kilo), 0 locked, 0 untouched, 0 already on the image"
        );
        let c = report.counts;
        assert_eq!(
            c.succeeded + c.failed + c.skipped + c.locked + c.untouched,
            c.selected
        );
        let report = RolloutReport::new("r1", &r, &p, 1, &results(&p, 1, &[]));
        assert_eq!(
            (report.status, report.detail_type()),
            (RolloutStatus::InProgress, None)
        );
        assert!(
            report.summary().contains("in progress, wave 1 of 3 done"),
            "{}",
            report.summary()
        );
        assert_eq!(report.counts.untouched, 11);
        // A finished wave's tenant without a result is reported failed (and
        // spends the budget: one allowed per wave and overall).
        let report = RolloutReport::new("r1", &r, &p, 1, &results(&p, 1, &[])[..1]);
        let bravo = report
            .tenants
            .iter()
            .find(|x| x.tenant.as_str() == "bravo")
            .expect("bravo");
        assert_eq!(
            (bravo.outcome, bravo.wave),
            (TenantOutcome::Failed, Some(1))
        );
        assert_eq!(
            (report.counts.failed, report.status),
            (1, RolloutStatus::InProgress)
        );
    }

    #[test]
    fn summaries_are_one_line_and_report_keys_are_apart_from_tenants() {
        let (r, p) = canary_plan(json!({}));
        let report = RolloutReport::new("evil\nname\u{1b}[31m", &r, &p, 0, &[]);
        let s = report.summary();
        assert!(!s.contains('\n') && !s.contains('\u{1b}'), "{s:?}");
        let sit = EnvironmentName::parse("sit").expect("env");
        assert_eq!(
            report_key(&sit, "fleet-sit-42"),
            "_rollouts/sit/fleet-sit-42.json"
        );
        assert_eq!(report_key(&sit, "../x"), "_rollouts/sit/---x.json");
    }
}
