//! Deployment windows and freezes, the pure part: when an environment (or a
//! tenant, by its labels) may be deployed to, and what a request that comes
//! at another time is told.
//!
//! Operators want production changes to land while people are at their
//! desks (Mon–Thu 08:00–16:00 in the team's time zone) and not at all during
//! a year-end freeze. This module holds the rule; the deploy pipeline asks it
//! once per request and either goes on, waits in the state machine until the
//! window opens (bounded by `max_wait_seconds`), or fails with
//! [`OUTSIDE_DEPLOYMENT_WINDOW`] and the [`Verdict`]'s reason, which names
//! the window and its next opening.
//!
//! Nothing here reads a clock: every evaluation takes the instant it is
//! about (`now`, seconds since the Unix epoch), so tests and the state
//! machine's re-check after a wait are deterministic. Time zones come from
//! the IANA database compiled into the binary (jiff's bundled tzdb), so a
//! Lambda without `/usr/share/zoneinfo` gives the same answers.
//!
//! # How a window is read
//!
//! A window is wall-clock time in the configured zone: an instant is inside
//! `{"days": ["mon"], "from": "08:00", "to": "16:00"}` when a clock on the
//! wall there shows a Monday and a time in `[08:00, 16:00)` (`from`
//! inclusive, `to` exclusive; `to` may be `24:00`). A window whose `from` is
//! after its `to` (`22:00`–`02:00`) crosses midnight and belongs to the day
//! it starts on: Friday's runs from Friday 22:00 to Saturday 02:00.
//!
//! Daylight saving time follows from that reading:
//! - on a spring-forward day the skipped hour never shows on the wall, so a
//!   window lying wholly inside it (02:00–03:00 in Europe/Berlin, 01:00–02:00
//!   in Europe/London) does not happen that day, and one that starts inside
//!   it opens at the jump (a 01:30–03:00 London window opens at 02:00 BST);
//! - on a fall-back day the repeated hour shows twice, and both times are
//!   inside a window that covers it (a 01:00–02:00 London window is open
//!   two real hours that night).
//!
//! A freeze is a span of real time, `[from, to)`, given in RFC 3339 with an
//! offset; it wins over every window, and labels cannot escape it.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The key under which an environment's JSON config holds its [`DeploymentWindows`].
pub const CONFIG_KEY: &str = "deployment_windows";

/// The `error_type` of a request refused because it came outside the
/// deployment window or during a freeze (a [`Verdict::Refuse`]).
pub const OUTSIDE_DEPLOYMENT_WINDOW: &str = "OutsideDeploymentWindow";

/// Longest `max_wait_seconds`: 7 days. Step Functions could wait a year, but
/// a run that holds a request (and its tenant's lock) for more than a week
/// is a mistake; such a request should be refused and sent again.
pub const MAX_WAIT_SECONDS_MAX: u64 = 7 * 86_400;

/// `max_wait_seconds` when `outside` is `wait` and no value is given: one
/// day, so a request made on a Thursday evening for a Mon–Thu window is
/// refused rather than holding its lock over a long weekend unasked.
pub const MAX_WAIT_SECONDS_DEFAULT: u64 = 86_400;

/// How far ahead the next opening is searched for. Past this a schedule
/// counts as never opening (a freeze of more than a year, or no window).
pub const SEARCH_HORIZON_DAYS: i64 = 400;

/// Allow windows a reason lists before it says how many more there are.
const WINDOWS_SHOWN: usize = 4;

const DAY_SECONDS: i64 = 86_400;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_TITLES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

// ---------------------------------------------------------------- config

/// An environment's deployment windows and freezes: the optional
/// `deployment_windows` object of its JSON config.
///
/// Values are kept as written; [`DeploymentWindows::check`] validates them
/// (with the field's path in every message) and [`DeploymentWindows::compile`]
/// turns them into a [`Schedule`] to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentWindows {
    /// IANA time zone the windows' days and times are read in (e.g. `Africa/Johannesburg`).
    pub time_zone: String,
    /// Recurring windows in which deployments are allowed; empty or absent
    /// means always allowed (only freezes apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<AllowWindow>,
    /// Periods in which no deployment runs, whatever the windows say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<Freeze>,
    /// What a request outside a window or in a freeze gets; absent means
    /// [`OutsideMode::Refuse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<OutsideMode>,
    /// With `outside: wait`, the longest a run waits for the next opening
    /// (1 to [`MAX_WAIT_SECONDS_MAX`]; absent means
    /// [`MAX_WAIT_SECONDS_DEFAULT`]). An opening further away is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_seconds: Option<u64>,
    /// Overrides for tenants by their labels; the first rule whose labels
    /// the tenant all has applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_label: Vec<LabelRule>,
}

/// One recurring allow window: on each listed day, from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowWindow {
    /// Days the window starts on: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Opening time, `HH:MM` (inclusive), `00:00` to `23:59`.
    pub from: String,
    /// Closing time, `HH:MM` (exclusive), `00:01` to `24:00`; earlier than
    /// `from` means the window ends on the next day.
    pub to: String,
}

/// A freeze: no deployments from `from` (inclusive) to `to` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// Start, RFC 3339 with an offset (`2026-12-18T00:00:00+02:00`).
    pub from: String,
    /// End, RFC 3339 with an offset; must be after `from`.
    pub to: String,
    /// Why, as operators are told it (`year-end freeze`).
    pub reason: String,
}

/// What happens to a request outside a window or during a freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutsideMode {
    /// Fail at once with [`OUTSIDE_DEPLOYMENT_WINDOW`].
    #[default]
    Refuse,
    /// Wait in the state machine until the next opening, if it is within
    /// `max_wait_seconds`; refuse otherwise.
    Wait,
}

/// Windows for the tenants whose labels include all of `labels`.
///
/// `allow`, `outside` and `max_wait_seconds` replace the environment's where
/// set (an empty `allow` means always allowed); `freezes` are added to the
/// environment's, so no label escapes a freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    /// Label pairs a tenant must all have for the rule to apply; not empty.
    pub labels: BTreeMap<String, String>,
    /// Replaces the environment's windows when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<AllowWindow>>,
    /// Freezes in addition to the environment's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<Freeze>,
    /// Replaces the environment's `outside` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<OutsideMode>,
    /// Replaces the environment's `max_wait_seconds` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_seconds: Option<u64>,
}

/// A value in `deployment_windows` that cannot work, with the field's path
/// (`deployment_windows.allow[0].from: "8:00" is not HH:MM (00:00 to 23:59)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct WindowConfigError {
    /// The field's path from the environment config's top level.
    pub field: String,
    /// What is wrong, with the rule that was broken.
    pub reason: String,
}

impl WindowConfigError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl DeploymentWindows {
    /// Checks every value, returning the first problem found.
    pub fn check(&self) -> Result<(), WindowConfigError> {
        self.compile().map(|_| ())
    }

    /// Checks every value and builds the [`Schedule`] they describe.
    pub fn compile(&self) -> Result<Schedule, WindowConfigError> {
        let tz = TimeZone::get(&self.time_zone).map_err(|_| {
            WindowConfigError::new(
                format!("{CONFIG_KEY}.time_zone"),
                format!(
                    "{} is not a known IANA time zone (e.g. Africa/Johannesburg)",
                    shown(&self.time_zone)
                ),
            )
        })?;
        let zone_name = tz.iana_name().unwrap_or(&self.time_zone).to_string();
        let allow = compile_windows(&format!("{CONFIG_KEY}.allow"), &self.allow)?;
        let freezes = compile_freezes(&format!("{CONFIG_KEY}.freezes"), &self.freezes)?;
        let outside = self.outside.unwrap_or_default();
        if let Some(seconds) = self.max_wait_seconds {
            check_max_wait(&format!("{CONFIG_KEY}.max_wait_seconds"), seconds, outside)?;
        }
        let mut by_label = Vec::with_capacity(self.by_label.len());
        for (i, rule) in self.by_label.iter().enumerate() {
            let path = format!("{CONFIG_KEY}.by_label[{i}]");
            if rule.labels.is_empty() {
                return Err(WindowConfigError::new(
                    format!("{path}.labels"),
                    "empty; a rule needs at least one label to match (the environment's own \
                     settings already apply to every tenant)",
                ));
            }
            let allow = match &rule.allow {
                Some(windows) => Some(compile_windows(&format!("{path}.allow"), windows)?),
                None => None,
            };
            let freezes = compile_freezes(&format!("{path}.freezes"), &rule.freezes)?;
            if let Some(seconds) = rule.max_wait_seconds {
                let effective = rule.outside.unwrap_or(outside);
                check_max_wait(&format!("{path}.max_wait_seconds"), seconds, effective)?;
            }
            by_label.push(CompiledRule {
                labels: rule.labels.clone(),
                allow,
                freezes,
                outside: rule.outside,
                max_wait_seconds: rule.max_wait_seconds,
            });
        }
        Ok(Schedule {
            tz,
            zone_name,
            allow,
            freezes,
            outside,
            max_wait_seconds: self.max_wait_seconds,
            by_label,
        })
    }

    /// What a request from a tenant with `labels` gets at `now` (epoch seconds).
    ///
    /// A config that fails [`DeploymentWindows::check`] refuses every request
    /// (it should have been rejected when the config was loaded; deploying
    /// while the windows cannot be read would ignore a freeze).
    pub fn verdict(&self, labels: &BTreeMap<String, String>, now: i64) -> Verdict {
        match self.compile() {
            Ok(schedule) => schedule.verdict(labels, now),
            Err(error) => Verdict::Refuse {
                reason: format!("deployment windows cannot be evaluated: {error}"),
                next_opening: None,
                next_opening_utc: None,
            },
        }
    }

    /// The windows, freezes and label rules in a few lines for docs and mail
    /// (see [`Schedule::describe`]), or why the config is invalid.
    pub fn describe(&self) -> String {
        match self.compile() {
            Ok(schedule) => schedule.describe(),
            Err(error) => format!("invalid deployment windows: {error}"),
        }
    }
}

fn check_max_wait(
    field: &str,
    seconds: u64,
    outside: OutsideMode,
) -> Result<(), WindowConfigError> {
    if outside == OutsideMode::Refuse {
        return Err(WindowConfigError::new(
            field,
            "set, but outside is \"refuse\"; it only applies with \"outside\": \"wait\"",
        ));
    }
    if seconds == 0 || seconds > MAX_WAIT_SECONDS_MAX {
        return Err(WindowConfigError::new(
            field,
            format!(
                "{seconds} is outside 1..={MAX_WAIT_SECONDS_MAX} (a run waits at most 7 days; \
                 for longer, refuse and send the request again)"
            ),
        ));
    }
    Ok(())
}

fn compile_windows(path: &str, windows: &[AllowWindow]) -> Result<Vec<Window>, WindowConfigError> {
    let mut compiled = Vec::with_capacity(windows.len());
    for (i, window) in windows.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if window.days.is_empty() {
            return Err(WindowConfigError::new(
                format!("{path}.days"),
                "empty; a window needs at least one day",
            ));
        }
        let mut days = [false; 7];
        for (d, day) in window.days.iter().enumerate() {
            let Some(index) = DAY_NAMES.iter().position(|name| name == day) else {
                return Err(WindowConfigError::new(
                    format!("{path}.days[{d}]"),
                    format!("{} is not one of {}", shown(day), DAY_NAMES.join(", ")),
                ));
            };
            if days[index] {
                return Err(WindowConfigError::new(
                    format!("{path}.days[{d}]"),
                    format!("{} is listed twice", shown(day)),
                ));
            }
            days[index] = true;
        }
        let from = parse_clock(&window.from, false).ok_or_else(|| {
            WindowConfigError::new(
                format!("{path}.from"),
                format!("{} is not HH:MM (00:00 to 23:59)", shown(&window.from)),
            )
        })?;
        let to = parse_clock(&window.to, true).ok_or_else(|| {
            WindowConfigError::new(
                format!("{path}.to"),
                format!("{} is not HH:MM (00:00 to 24:00)", shown(&window.to)),
            )
        })?;
        if from == to {
            return Err(WindowConfigError::new(
                format!("{path}.to"),
                format!(
                    "{} equals from; a window needs a length (00:00 to 24:00 is a whole day)",
                    shown(&window.to)
                ),
            ));
        }
        compiled.push(Window { days, from, to });
    }
    Ok(compiled)
}

fn compile_freezes(path: &str, freezes: &[Freeze]) -> Result<Vec<FreezePeriod>, WindowConfigError> {
    let mut compiled = Vec::with_capacity(freezes.len());
    for (i, freeze) in freezes.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let from = parse_instant(&format!("{path}.from"), &freeze.from)?;
        let to = parse_instant(&format!("{path}.to"), &freeze.to)?;
        if to <= from {
            return Err(WindowConfigError::new(
                format!("{path}.to"),
                format!(
                    "{} is not after from {}",
                    shown(&freeze.to),
                    shown(&freeze.from)
                ),
            ));
        }
        if freeze.reason.trim().is_empty() {
            return Err(WindowConfigError::new(
                format!("{path}.reason"),
                "empty; say why deployments are frozen (operators are shown it)",
            ));
        }
        if freeze.reason.chars().any(char::is_control) {
            return Err(WindowConfigError::new(
                format!("{path}.reason"),
                format!(
                    "{} is not one line of text (it is quoted in error messages)",
                    shown(&freeze.reason)
                ),
            ));
        }
        compiled.push(FreezePeriod {
            from,
            to,
            reason: freeze.reason.trim().to_string(),
        });
    }
    Ok(compiled)
}

/// `HH:MM` as seconds since midnight; `24:00` only where `allow_24`.
fn parse_clock(text: &str, allow_24: bool) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digit = |i: usize| {
        let b = bytes[i];
        b.is_ascii_digit().then(|| i64::from(b - b'0'))
    };
    let hours = digit(0)? * 10 + digit(1)?;
    let minutes = digit(3)? * 10 + digit(4)?;
    if (hours <= 23 && minutes <= 59) || (allow_24 && hours == 24 && minutes == 0) {
        Some(hours * 3600 + minutes * 60)
    } else {
        None
    }
}

fn parse_instant(field: &str, text: &str) -> Result<i64, WindowConfigError> {
    text.parse::<Timestamp>()
        .map(|ts| ts.as_second())
        .map_err(|_| {
            WindowConfigError::new(
                field,
                format!(
                    "{} is not an RFC 3339 date-time with an offset \
                     (e.g. 2026-12-18T00:00:00+02:00)",
                    shown(text)
                ),
            )
        })
}

/// A value from outside as messages quote it: escaped like `{:?}` and cut
/// short (the same rule as `validate::shown`, kept here so this module needs
/// nothing else from the crate).
fn shown(value: &str) -> String {
    const MAX: usize = 48;
    let mut width = 0;
    for (i, c) in value.char_indices() {
        width += c.escape_debug().count();
        if width > MAX {
            return format!("{:?}… ({} characters)", &value[..i], value.chars().count());
        }
    }
    format!("{value:?}")
}

// ---------------------------------------------------------------- schedule

/// A checked [`DeploymentWindows`], ready to evaluate.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    zone_name: String,
    allow: Vec<Window>,
    freezes: Vec<FreezePeriod>,
    outside: OutsideMode,
    max_wait_seconds: Option<u64>,
    by_label: Vec<CompiledRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Indexed Monday = 0.
    days: [bool; 7],
    /// Seconds since midnight, inclusive.
    from: i64,
    /// Seconds since midnight, exclusive; `<= from` ends on the next day.
    to: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FreezePeriod {
    from: i64,
    to: i64,
    reason: String,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    labels: BTreeMap<String, String>,
    allow: Option<Vec<Window>>,
    freezes: Vec<FreezePeriod>,
    outside: Option<OutsideMode>,
    max_wait_seconds: Option<u64>,
}

impl Schedule {
    /// The rules for a tenant with `labels`: the environment's, changed by
    /// the first `by_label` rule whose labels the tenant all has.
    pub fn policy(&self, labels: &BTreeMap<String, String>) -> Policy {
        let matched = self.by_label.iter().position(|rule| {
            rule.labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
        });
        self.policy_for(matched)
    }

    /// What a request from a tenant with `labels` gets at `now` (epoch seconds).
    pub fn verdict(&self, labels: &BTreeMap<String, String>, now: i64) -> Verdict {
        self.policy(labels).verdict(now)
    }

    /// The environment's policy, then one line per label rule, e.g.
    ///
    /// ```text
    /// Mon–Thu 08:00–16:00 Africa/Johannesburg; outside them: refuse; frozen 2026-12-18T00:00+02:00 to 2027-01-04T00:00+02:00 (year-end freeze)
    /// tenants labelled ring=canary: Mon–Fri 06:00–20:00 Africa/Johannesburg; outside them: wait up to 1 day; frozen …
    /// ```
    pub fn describe(&self) -> String {
        let mut text = self.policy_for(None).describe();
        for index in 0..self.by_label.len() {
            let policy = self.policy_for(Some(index));
            let _ = write!(
                text,
                "\ntenants labelled {}: {}",
                policy.labels_text(),
                policy.describe()
            );
        }
        text
    }

    fn policy_for(&self, rule: Option<usize>) -> Policy {
        let mut policy = Policy {
            tz: self.tz.clone(),
            zone_name: self.zone_name.clone(),
            allow: self.allow.clone(),
            freezes: self.freezes.clone(),
            outside: self.outside,
            max_wait_seconds: self.max_wait_seconds.unwrap_or(MAX_WAIT_SECONDS_DEFAULT),
            labels: None,
        };
        if let Some(rule) = rule.and_then(|index| self.by_label.get(index)) {
            if let Some(allow) = &rule.allow {
                policy.allow = allow.clone();
            }
            policy.freezes.extend(rule.freezes.iter().cloned());
            if let Some(outside) = rule.outside {
                policy.outside = outside;
            }
            if let Some(seconds) = rule.max_wait_seconds.or(self.max_wait_seconds) {
                policy.max_wait_seconds = seconds;
            }
            policy.labels = Some(rule.labels.clone());
        }
        policy
    }
}

// ---------------------------------------------------------------- policy

/// The windows, freezes and mode that apply to one tenant.
#[derive(Debug, Clone)]
pub struct Policy {
    tz: TimeZone,
    zone_name: String,
    allow: Vec<Window>,
    freezes: Vec<FreezePeriod>,
    outside: OutsideMode,
    max_wait_seconds: u64,
    labels: Option<BTreeMap<String, String>>,
}

impl Policy {
    /// What happens outside the windows.
    pub fn outside(&self) -> OutsideMode {
        self.outside
    }

    /// The longest wait for an opening (used only with [`OutsideMode::Wait`]).
    pub fn max_wait_seconds(&self) -> u64 {
        self.max_wait_seconds
    }

    /// The `by_label` rule's labels, when one applies.
    pub fn matched_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.labels.as_ref()
    }

    /// Whether a deployment may run at `now`: inside a window (or there are
    /// none) and outside every freeze.
    pub fn is_open(&self, now: i64) -> bool {
        Timestamp::from_second(now).is_ok_and(|ts| self.in_window(ts) && self.frozen(now).is_none())
    }

    /// The first instant at or after `now` at which [`Policy::is_open`] holds,
    /// searched up to [`SEARCH_HORIZON_DAYS`] ahead; `None` if there is none.
    pub fn next_opening(&self, now: i64) -> Option<i64> {
        let start = Timestamp::from_second(now).ok()?;
        let horizon = now
            .saturating_add(SEARCH_HORIZON_DAYS * DAY_SECONDS)
            .min(Timestamp::MAX.as_second());
        // The open instants are a union of half-open spans; the first one at
        // or after `now` is `now` itself or where a span starts: a window's
        // start on the wall clock, a jump of the wall clock (a DST change
        // can land inside a window), or a freeze's end.
        let mut candidates = vec![now];
        candidates.extend(self.freezes.iter().map(|freeze| freeze.to));
        if !self.allow.is_empty() {
            for transition in self.tz.following(start) {
                let second = transition.timestamp().as_second();
                if second > horizon {
                    break;
                }
                candidates.push(second);
            }
            self.push_window_starts(start, &mut candidates);
        }
        candidates.retain(|&t| t >= now && t <= horizon);
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().find(|&t| self.is_open(t))
    }

    /// What a request gets at `now` (epoch seconds).
    pub fn verdict(&self, now: i64) -> Verdict {
        if Timestamp::from_second(now).is_err() {
            return Verdict::Refuse {
                reason: format!("the clock reading {now} is outside the supported range"),
                next_opening: None,
                next_opening_utc: None,
            };
        }
        if self.is_open(now) {
            return Verdict::Open;
        }
        let closed = match self.frozen(now) {
            Some(freeze) => format!(
                "frozen: {} (until {})",
                freeze.reason,
                self.with_offset(freeze.to)
            ),
            None => {
                let scope = match &self.labels {
                    Some(_) => format!(" for {}", self.labels_text()),
                    None => String::new(),
                };
                format!(
                    "outside the deployment window{scope} ({})",
                    self.describe_windows()
                )
            }
        };
        let Some(opening) = self.next_opening(now) else {
            return Verdict::Refuse {
                reason: format!("{closed}; no opening in the next {SEARCH_HORIZON_DAYS} days"),
                next_opening: None,
                next_opening_utc: None,
            };
        };
        let wait = opening - now;
        let within = u64::try_from(wait).is_ok_and(|wait| wait <= self.max_wait_seconds);
        match self.outside {
            OutsideMode::Wait if within => Verdict::Wait {
                until: opening,
                until_utc: rfc3339_utc(opening).unwrap_or_default(),
                reason: format!("{closed}; waiting until {}", self.opening_text(opening)),
            },
            OutsideMode::Wait => Verdict::Refuse {
                reason: format!(
                    "{closed}; next opening {} is {} away, longer than the {} a run may wait \
                     (max_wait_seconds {})",
                    self.opening_text(opening),
                    human_duration(wait),
                    human_duration(i64::try_from(self.max_wait_seconds).unwrap_or(i64::MAX)),
                    self.max_wait_seconds
                ),
                next_opening: Some(opening),
                next_opening_utc: rfc3339_utc(opening),
            },
            OutsideMode::Refuse => Verdict::Refuse {
                reason: format!("{closed}; next opening {}", self.opening_text(opening)),
                next_opening: Some(opening),
                next_opening_utc: rfc3339_utc(opening),
            },
        }
    }

    /// The windows in one line: `Mon–Thu 08:00–16:00 Africa/Johannesburg`
    /// (`any time (Africa/Johannesburg)` without windows).
    pub fn describe_windows(&self) -> String {
        if self.allow.is_empty() {
            return format!("any time ({})", self.zone_name);
        }
        let windows: Vec<String> = self
            .allow
            .iter()
            .map(|window| {
                let next_day = if window.to <= window.from {
                    " (next day)"
                } else {
                    ""
                };
                format!(
                    "{} {}–{}{next_day}",
                    days_text(&window.days),
                    clock_text(window.from),
                    clock_text(window.to)
                )
            })
            .collect();
        if windows.len() > WINDOWS_SHOWN {
            // A reason lands in outputs, mails and the execution history: a
            // schedule of hundreds of windows is summed up, not listed.
            return format!(
                "{}, and {} more windows {}",
                windows[..WINDOWS_SHOWN].join(", "),
                windows.len() - WINDOWS_SHOWN,
                self.zone_name
            );
        }
        format!("{} {}", windows.join(", "), self.zone_name)
    }

    /// Windows, mode and freezes in one line:
    /// `Mon–Thu 08:00–16:00 Africa/Johannesburg; outside them: refuse; frozen … (year-end freeze)`.
    pub fn describe(&self) -> String {
        let mut text = self.describe_windows();
        match self.outside {
            OutsideMode::Refuse => text.push_str("; outside them: refuse"),
            OutsideMode::Wait => {
                let _ = write!(
                    text,
                    "; outside them: wait up to {}",
                    human_duration(i64::try_from(self.max_wait_seconds).unwrap_or(i64::MAX))
                );
            }
        }
        for freeze in &self.freezes {
            let _ = write!(
                text,
                "; frozen {} to {} ({})",
                self.with_offset(freeze.from),
                self.with_offset(freeze.to),
                freeze.reason
            );
        }
        text
    }

    fn labels_text(&self) -> String {
        self.labels
            .iter()
            .flatten()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The freeze covering `now` that ends last, if any.
    fn frozen(&self, now: i64) -> Option<&FreezePeriod> {
        self.freezes
            .iter()
            .filter(|freeze| freeze.from <= now && now < freeze.to)
            .max_by_key(|freeze| freeze.to)
    }

    fn in_window(&self, ts: Timestamp) -> bool {
        if self.allow.is_empty() {
            return true;
        }
        let local = self.tz.to_datetime(ts);
        let day = weekday_index(local.weekday());
        let yesterday = (day + 6) % 7;
        let second = i64::from(local.hour()) * 3600
            + i64::from(local.minute()) * 60
            + i64::from(local.second());
        self.allow.iter().any(|window| {
            if window.from < window.to {
                window.days[day] && window.from <= second && second < window.to
            } else {
                (window.days[day] && second >= window.from)
                    || (window.days[yesterday] && second < window.to)
            }
        })
    }

    /// Every instant from the day before `start`'s local date to the horizon
    /// at which the wall clock shows a window's start on one of its days:
    /// none on a day the start time is skipped, two when it repeats.
    fn push_window_starts(&self, start: Timestamp, candidates: &mut Vec<i64>) {
        let Ok(mut date) = self.tz.to_datetime(start).date().yesterday() else {
            return;
        };
        for _ in 0..SEARCH_HORIZON_DAYS + 2 {
            let day = weekday_index(date.weekday());
            for window in self.allow.iter().filter(|window| window.days[day]) {
                let Some(civil) = civil_at(date, window.from) else {
                    continue;
                };
                match self.tz.to_ambiguous_timestamp(civil).offset() {
                    AmbiguousOffset::Unambiguous { offset } => {
                        candidates.extend(instant(offset, civil));
                    }
                    AmbiguousOffset::Gap { .. } => {}
                    AmbiguousOffset::Fold { before, after } => {
                        candidates.extend(instant(before, civil));
                        candidates.extend(instant(after, civil));
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
    }

    /// `Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z)`.
    fn opening_text(&self, at: i64) -> String {
        let Ok(ts) = Timestamp::from_second(at) else {
            return at.to_string();
        };
        let local = self.tz.to_datetime(ts);
        let info = self.tz.to_offset_info(ts);
        let utc = TimeZone::UTC.to_datetime(ts);
        format!(
            "{} {} {} {} ({}T{}Z)",
            DAY_TITLES[weekday_index(local.weekday())],
            local.date(),
            civil_clock_text(local),
            info.abbreviation(),
            utc.date(),
            civil_clock_text(utc)
        )
    }

    /// `2027-01-04T00:00+02:00`: the instant in the zone, with its offset.
    fn with_offset(&self, at: i64) -> String {
        let Ok(ts) = Timestamp::from_second(at) else {
            return at.to_string();
        };
        let local = self.tz.to_datetime(ts);
        let offset = self.tz.to_offset(ts).seconds();
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.unsigned_abs();
        format!(
            "{}T{}{sign}{:02}:{:02}",
            local.date(),
            civil_clock_text(local),
            offset / 3600,
            offset % 3600 / 60
        )
    }
}

fn weekday_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

fn civil_at(date: Date, second_of_day: i64) -> Option<DateTime> {
    let hour = i8::try_from(second_of_day / 3600).ok()?;
    let minute = i8::try_from(second_of_day % 3600 / 60).ok()?;
    Time::new(hour, minute, 0, 0)
        .ok()
        .map(|time| date.to_datetime(time))
}

fn instant(offset: Offset, civil: DateTime) -> Option<i64> {
    offset.to_timestamp(civil).ok().map(|ts| ts.as_second())
}

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
fn civil_clock_text(dt: DateTime) -> String {
    if dt.second() == 0 {
        format!("{:02}:{:02}", dt.hour(), dt.minute())
    } else {
        format!("{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second())
    }
}

fn clock_text(second_of_day: i64) -> String {
    format!(
        "{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60
    )
}

/// `Mon–Thu`, `Sat,Sun`, `Mon,Wed,Fri`: runs of three or more days joined by a dash.
fn days_text(days: &[bool; 7]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !days[i] {
            i += 1;
            continue;
        }
        let mut end = i;
        while end + 1 < 7 && days[end + 1] {
            end += 1;
        }
        match end - i {
            0 => parts.push(DAY_TITLES[i].to_string()),
            1 => {
                parts.push(DAY_TITLES[i].to_string());
                parts.push(DAY_TITLES[end].to_string());
            }
            _ => parts.push(format!("{}–{}", DAY_TITLES[i], DAY_TITLES[end])),
        }
        i = end + 1;
    }
    parts.join(",")
}

/// `2 days 16 hours`, `45 minutes`: the two largest non-zero units.
fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let units = [
        (seconds / DAY_SECONDS, "day"),
        (seconds % DAY_SECONDS / 3600, "hour"),
        (seconds % 3600 / 60, "minute"),
        (seconds % 60, "second"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(count, _)| *count == 0)
        .take(2)
        .filter(|(count, _)| *count > 0)
        .map(|(count, unit)| {
            let plural = if *count == 1 { "" } else { "s" };
            format!("{count} {unit}{plural}")
        })
        .collect();
    if parts.is_empty() {
        "0 seconds".to_string()
    } else {
        parts.join(" ")
    }
}

/// `at` (epoch seconds) as RFC 3339 in UTC, `2026-12-07T06:00:00Z`, the form
/// a Step Functions `Wait` state's `TimestampPath` takes; `None` outside
/// the years -9999 to 9999.
pub fn rfc3339_utc(at: i64) -> Option<String> {
    Timestamp::from_second(at).ok().map(|ts| ts.to_string())
}

// ---------------------------------------------------------------- verdict

/// What a deployment request gets from the windows at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Inside a window and outside every freeze: go on.
    Open,
    /// Closed now, and the policy waits: wait until `until`, then ask again
    /// (the config may have changed meanwhile).
    Wait {
        /// The next opening, epoch seconds.
        until: i64,
        /// `until` as RFC 3339 UTC, for the state machine's `Wait` state.
        until_utc: String,
        /// Why the run waits and until when, for the operator.
        reason: String,
    },
    /// Closed now: fail with [`OUTSIDE_DEPLOYMENT_WINDOW`] and `reason`.
    Refuse {
        /// Why, naming the window or freeze and the next opening.
        reason: String,
        /// The next opening, epoch seconds; `None` if none within
        /// [`SEARCH_HORIZON_DAYS`].
        next_opening: Option<i64>,
        /// `next_opening` as RFC 3339 UTC.
        next_opening_utc: Option<String>,
    },
}

impl Verdict {
    /// Whether the deployment may go on now.
    pub fn is_open(&self) -> bool {
        matches!(self, Verdict::Open)
    }

    /// The operator's sentence for a wait or a refusal.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Open => None,
            Verdict::Wait { reason, .. } | Verdict::Refuse { reason, .. } => Some(reason),
        }
    }

    /// When the schedule opens next (epoch seconds), if it is closed now and opens.
    pub fn next_opening(&self) -> Option<i64> {
        match self {
            Verdict::Open => None,
            Verdict::Wait { until, .. } => Some(*until),
            Verdict::Refuse { next_opening, .. } => *next_opening,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An RFC 3339 instant as epoch seconds.
    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    fn windows(value: serde_json::Value) -> DeploymentWindows {
        let windows: DeploymentWindows = serde_json::from_value(value).unwrap();
        windows.check().unwrap();
        windows
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    /// Mon–Thu 08:00–16:00 in Johannesburg (SAST, +02:00, no DST).
    fn office_hours() -> DeploymentWindows {
        windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "08:00", "to": "16:00"}]
        }))
    }

    fn error(value: serde_json::Value) -> String {
        let windows: DeploymentWindows = serde_json::from_value(value).unwrap();
        windows.check().unwrap_err().to_string()
    }

    fn refuse(reason: &str, next: Option<&str>) -> Verdict {
        Verdict::Refuse {
            reason: reason.to_string(),
            next_opening: next.map(at),
            next_opening_utc: next.map(|next| rfc3339_utc(at(next)).unwrap()),
        }
    }

    const OFFICE: &str = "outside the deployment window (Mon–Thu 08:00–16:00 Africa/Johannesburg)";

    // ------------------------------------------------------------ windows

    #[test]
    fn the_bundled_time_zone_database_knows_johannesburg() {
        let tz = TimeZone::get("Africa/Johannesburg").unwrap();
        assert_eq!(tz.iana_name(), Some("Africa/Johannesburg"));
        let ts: Timestamp = "2026-12-07T06:00:00Z".parse().unwrap();
        assert_eq!(tz.to_offset_info(ts).abbreviation(), "SAST");
        assert_eq!(tz.to_offset(ts).seconds(), 7200);
    }

    #[test]
    fn open_inside_a_window() {
        let w = office_hours();
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T10:00:00+02:00")),
            Verdict::Open
        );
        assert_eq!(
            w.verdict(&none(), at("2026-12-10T12:34:56+02:00")),
            Verdict::Open
        );
    }

    #[test]
    fn from_is_inclusive() {
        let w = office_hours();
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T08:00:00+02:00")),
            Verdict::Open
        );
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T07:59:59+02:00")),
            refuse(
                &format!("{OFFICE}; next opening Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z)"),
                Some("2026-12-07T08:00:00+02:00")
            )
        );
    }

    #[test]
    fn to_is_exclusive() {
        let w = office_hours();
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T15:59:59+02:00")),
            Verdict::Open
        );
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T16:00:00+02:00")),
            refuse(
                &format!("{OFFICE}; next opening Tue 2026-12-08 08:00 SAST (2026-12-08T06:00Z)"),
                Some("2026-12-08T08:00:00+02:00")
            )
        );
    }

    #[test]
    fn a_weekend_request_is_told_the_next_monday_opening() {
        let w = office_hours();
        let verdict = w.verdict(&none(), at("2026-12-05T12:00:00+02:00"));
        assert_eq!(
            verdict,
            refuse(
                "outside the deployment window (Mon–Thu 08:00–16:00 Africa/Johannesburg); \
                 next opening Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z)",
                Some("2026-12-07T08:00:00+02:00")
            )
        );
        let Verdict::Refuse {
            next_opening_utc, ..
        } = &verdict
        else {
            panic!("{verdict:?}")
        };
        assert_eq!(next_opening_utc.as_deref(), Some("2026-12-07T06:00:00Z"));
        assert_eq!(verdict.next_opening(), Some(at("2026-12-07T06:00:00Z")));
        assert!(!verdict.is_open());
        // Thursday's close skips Friday too.
        assert_eq!(
            w.verdict(&none(), at("2026-12-10T16:00:00+02:00"))
                .next_opening(),
            Some(at("2026-12-14T08:00:00+02:00"))
        );
    }

    #[test]
    fn a_window_crossing_midnight_belongs_to_the_day_it_starts() {
        let w = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["fri"], "from": "22:00", "to": "02:00"}]
        }));
        let policy = w.compile().unwrap().policy(&none());
        assert!(!policy.is_open(at("2026-12-04T21:59:59+02:00")));
        assert_eq!(
            policy.next_opening(at("2026-12-04T21:59:59+02:00")),
            Some(at("2026-12-04T22:00:00+02:00"))
        );
        assert!(policy.is_open(at("2026-12-04T22:00:00+02:00")));
        assert!(policy.is_open(at("2026-12-05T00:00:00+02:00")));
        assert!(policy.is_open(at("2026-12-05T01:59:59+02:00")));
        assert!(!policy.is_open(at("2026-12-05T02:00:00+02:00")));
        // Saturday is not listed, so Saturday night is closed...
        assert!(!policy.is_open(at("2026-12-05T23:00:00+02:00")));
        // ...and so is the small hours of Friday (Thursday is not listed).
        assert!(!policy.is_open(at("2026-12-04T01:00:00+02:00")));
        assert_eq!(
            policy.next_opening(at("2026-12-05T02:00:00+02:00")),
            Some(at("2026-12-11T22:00:00+02:00"))
        );
        assert_eq!(
            policy.describe_windows(),
            "Fri 22:00–02:00 (next day) Africa/Johannesburg"
        );
    }

    /// Hundreds of one-minute windows (the local sit's `window=odd-minutes`
    /// rule): a request in an even minute waits for the next minute, and
    /// the reason names four windows and counts the rest.
    #[test]
    fn many_short_windows_wait_a_minute_and_are_summed_up() {
        let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let odd: Vec<serde_json::Value> = (0..24)
            .flat_map(|h| (1..60).step_by(2).map(move |m| (h, m)))
            .map(|(h, m)| {
                let (th, tm) = (h + (m + 1) / 60, (m + 1) % 60);
                json!({"days": all, "from": format!("{h:02}:{m:02}"), "to": format!("{th:02}:{tm:02}")})
            })
            .collect();
        let schedule = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "by_label": [{"labels": {"window": "odd-minutes"}, "allow": odd, "outside": "wait", "max_wait_seconds": 120}]
        }));
        let odd_minutes = labels(&[("window", "odd-minutes")]);
        assert_eq!(
            schedule.verdict(&odd_minutes, at("2026-11-30T17:01:59Z")),
            Verdict::Open
        );
        assert_eq!(
            schedule.verdict(&none(), at("2026-11-30T17:02:10Z")),
            Verdict::Open
        );
        let Verdict::Wait {
            until_utc, reason, ..
        } = schedule.verdict(&odd_minutes, at("2026-11-30T17:02:10Z"))
        else {
            panic!("an even minute waits");
        };
        assert_eq!(until_utc, "2026-11-30T17:03:00Z");
        assert!(
            reason.starts_with(
                "outside the deployment window for window=odd-minutes \
                 (Mon–Sun 00:01–00:02, Mon–Sun 00:03–00:04, Mon–Sun 00:05–00:06, \
                 Mon–Sun 00:07–00:08, and 716 more windows Africa/Johannesburg); waiting until"
            ),
            "{reason}"
        );
    }

    #[test]
    fn a_sunday_night_window_runs_into_monday() {
        let policy = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["sun"], "from": "23:00", "to": "01:00"}]
        }))
        .compile()
        .unwrap()
        .policy(&none());
        assert!(policy.is_open(at("2026-12-07T00:30:00+02:00")));
        assert!(!policy.is_open(at("2026-12-07T01:00:00+02:00")));
        assert!(!policy.is_open(at("2026-12-06T00:30:00+02:00")));
    }

    #[test]
    fn to_may_be_24_00() {
        let policy = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["sat"], "from": "00:00", "to": "24:00"}]
        }))
        .compile()
        .unwrap()
        .policy(&none());
        assert!(!policy.is_open(at("2026-12-04T23:59:59+02:00")));
        assert!(policy.is_open(at("2026-12-05T00:00:00+02:00")));
        assert!(policy.is_open(at("2026-12-05T23:59:59+02:00")));
        assert!(!policy.is_open(at("2026-12-06T00:00:00+02:00")));
        assert_eq!(
            policy.next_opening(at("2026-12-06T00:00:00+02:00")),
            Some(at("2026-12-12T00:00:00+02:00"))
        );
        assert_eq!(
            policy.describe_windows(),
            "Sat 00:00–24:00 Africa/Johannesburg"
        );
    }

    #[test]
    fn several_windows_any_of_them_opens() {
        let policy = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [
                {"days": ["mon", "tue", "wed", "thu"], "from": "08:00", "to": "16:00"},
                {"days": ["fri"], "from": "08:00", "to": "12:00"}
            ]
        }))
        .compile()
        .unwrap()
        .policy(&none());
        assert!(policy.is_open(at("2026-12-11T11:00:00+02:00")));
        assert!(!policy.is_open(at("2026-12-11T12:00:00+02:00")));
        assert_eq!(
            policy.next_opening(at("2026-12-10T17:00:00+02:00")),
            Some(at("2026-12-11T08:00:00+02:00"))
        );
        assert_eq!(
            policy.describe_windows(),
            "Mon–Thu 08:00–16:00, Fri 08:00–12:00 Africa/Johannesburg"
        );
    }

    // ------------------------------------------------------------ freezes

    fn office_with_freezes(freezes: serde_json::Value) -> DeploymentWindows {
        windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "08:00", "to": "16:00"}],
            "freezes": freezes
        }))
    }

    fn year_end() -> serde_json::Value {
        json!({
            "from": "2026-12-18T00:00:00+02:00",
            "to": "2027-01-04T00:00:00+02:00",
            "reason": "year-end freeze"
        })
    }

    #[test]
    fn a_freeze_inside_a_window_refuses_with_its_reason() {
        let w = office_with_freezes(json!([year_end()]));
        assert_eq!(
            w.verdict(&none(), at("2026-12-21T10:00:00+02:00")),
            refuse(
                "frozen: year-end freeze (until 2027-01-04T00:00+02:00); \
                 next opening Mon 2027-01-04 08:00 SAST (2027-01-04T06:00Z)",
                Some("2027-01-04T08:00:00+02:00")
            )
        );
        // From is inclusive, to exclusive.
        let policy = w.compile().unwrap().policy(&none());
        assert!(policy.is_open(at("2026-12-17T15:59:59+02:00")));
        assert!(!policy.is_open(at("2026-12-18T00:00:00+02:00")));
        assert!(policy.is_open(at("2027-01-04T08:00:00+02:00")));
    }

    #[test]
    fn a_freeze_ending_inside_a_window_opens_at_its_end() {
        let w = office_with_freezes(json!([{
            "from": "2026-12-08T09:00:00+02:00",
            "to": "2026-12-08T10:30:00+02:00",
            "reason": "database migration"
        }]));
        let policy = w.compile().unwrap().policy(&none());
        assert!(policy.is_open(at("2026-12-08T08:59:59+02:00")));
        assert!(!policy.is_open(at("2026-12-08T09:00:00+02:00")));
        assert!(policy.is_open(at("2026-12-08T10:30:00+02:00")));
        assert_eq!(
            w.verdict(&none(), at("2026-12-08T09:30:00+02:00")),
            refuse(
                "frozen: database migration (until 2026-12-08T10:30+02:00); \
                 next opening Tue 2026-12-08 10:30 SAST (2026-12-08T08:30Z)",
                Some("2026-12-08T10:30:00+02:00")
            )
        );
    }

    #[test]
    fn a_freeze_ending_outside_a_window_opens_at_the_next_window() {
        let w = office_with_freezes(json!([{
            "from": "2026-12-08T09:00:00+02:00",
            "to": "2026-12-08T17:00:00+02:00",
            "reason": "audit"
        }]));
        assert_eq!(
            w.verdict(&none(), at("2026-12-08T09:30:00+02:00"))
                .next_opening(),
            Some(at("2026-12-09T08:00:00+02:00"))
        );
    }

    #[test]
    fn without_windows_only_freezes_close() {
        let w = windows(json!({
            "time_zone": "Africa/Johannesburg",
            "freezes": [
                {"from": "2026-12-18T00:00:00+02:00", "to": "2026-12-28T00:00:00+02:00", "reason": "holidays"},
                {"from": "2026-12-24T00:00:00+02:00", "to": "2027-01-04T00:00:00+02:00", "reason": "year end"}
            ]
        }));
        assert_eq!(
            w.verdict(&none(), at("2026-12-05T03:00:00+02:00")),
            Verdict::Open
        );
        assert_eq!(
            w.verdict(&none(), at("2027-01-04T00:00:00+02:00")),
            Verdict::Open
        );
        // Overlapping freezes: the one that ends last is named, and the
        // opening is after both.
        assert_eq!(
            w.verdict(&none(), at("2026-12-25T12:00:00+02:00")),
            refuse(
                "frozen: year end (until 2027-01-04T00:00+02:00); \
                 next opening Mon 2027-01-04 00:00 SAST (2027-01-03T22:00Z)",
                Some("2027-01-04T00:00:00+02:00")
            )
        );
        assert_eq!(
            w.verdict(&none(), at("2026-12-20T12:00:00+02:00"))
                .next_opening(),
            Some(at("2027-01-04T00:00:00+02:00"))
        );
    }

    #[test]
    fn no_opening_within_the_horizon_is_none() {
        let w = office_with_freezes(json!([{
            "from": "2026-01-01T00:00:00Z",
            "to": "2028-01-01T00:00:00Z",
            "reason": "platform migration"
        }]));
        assert_eq!(
            w.verdict(&none(), at("2026-06-01T10:00:00+02:00")),
            refuse(
                "frozen: platform migration (until 2028-01-01T02:00+02:00); \
                 no opening in the next 400 days",
                None
            )
        );
        let never = windows(json!({
            "time_zone": "UTC",
            "freezes": [{"from": "2026-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z", "reason": "x"}],
            "outside": "wait"
        }));
        assert_eq!(
            never
                .verdict(&none(), at("2026-06-01T00:00:00Z"))
                .next_opening(),
            None
        );
    }

    // ------------------------------------------------------------ wait or refuse

    fn waiting(max_wait_seconds: Option<u64>) -> DeploymentWindows {
        let mut w = office_hours();
        w.outside = Some(OutsideMode::Wait);
        w.max_wait_seconds = max_wait_seconds;
        w.check().unwrap();
        w
    }

    #[test]
    fn wait_mode_waits_for_an_opening_within_max_wait() {
        let verdict = waiting(Some(172_800)).verdict(&none(), at("2026-12-05T12:00:00+02:00"));
        assert_eq!(
            verdict,
            Verdict::Wait {
                until: at("2026-12-07T08:00:00+02:00"),
                until_utc: "2026-12-07T06:00:00Z".to_string(),
                reason: format!(
                    "{OFFICE}; waiting until Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z)"
                ),
            }
        );
        assert_eq!(verdict.next_opening(), Some(at("2026-12-07T06:00:00Z")));
    }

    #[test]
    fn max_wait_turns_a_longer_wait_into_a_refusal() {
        // Saturday 12:00 to Monday 08:00 is 44 hours, 158 400 seconds.
        let now = at("2026-12-05T12:00:00+02:00");
        assert!(matches!(
            waiting(Some(158_400)).verdict(&none(), now),
            Verdict::Wait { .. }
        ));
        assert_eq!(
            waiting(Some(158_399)).verdict(&none(), now),
            refuse(
                &format!(
                    "{OFFICE}; next opening Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z) \
                     is 1 day 20 hours away, longer than the 1 day 19 hours a run may wait \
                     (max_wait_seconds 158399)"
                ),
                Some("2026-12-07T08:00:00+02:00")
            )
        );
    }

    #[test]
    fn wait_without_max_wait_waits_at_most_a_day() {
        let w = waiting(None);
        assert_eq!(
            w.verdict(&none(), at("2026-12-05T12:00:00+02:00")),
            refuse(
                &format!(
                    "{OFFICE}; next opening Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z) \
                     is 1 day 20 hours away, longer than the 1 day a run may wait \
                     (max_wait_seconds 86400)"
                ),
                Some("2026-12-07T08:00:00+02:00")
            )
        );
        assert_eq!(
            w.verdict(&none(), at("2026-12-06T12:00:00+02:00")),
            Verdict::Wait {
                until: at("2026-12-07T08:00:00+02:00"),
                until_utc: "2026-12-07T06:00:00Z".to_string(),
                reason: format!(
                    "{OFFICE}; waiting until Mon 2026-12-07 08:00 SAST (2026-12-07T06:00Z)"
                ),
            }
        );
    }

    #[test]
    fn wait_mode_also_waits_out_a_short_freeze() {
        let mut w = office_with_freezes(json!([{
            "from": "2026-12-08T09:00:00+02:00",
            "to": "2026-12-08T10:30:00+02:00",
            "reason": "database migration"
        }]));
        w.outside = Some(OutsideMode::Wait);
        w.max_wait_seconds = Some(3600);
        assert_eq!(
            w.verdict(&none(), at("2026-12-08T09:45:00+02:00")),
            Verdict::Wait {
                until: at("2026-12-08T10:30:00+02:00"),
                until_utc: "2026-12-08T08:30:00Z".to_string(),
                reason: "frozen: database migration (until 2026-12-08T10:30+02:00); \
                         waiting until Tue 2026-12-08 10:30 SAST (2026-12-08T08:30Z)"
                    .to_string(),
            }
        );
        assert!(matches!(
            w.verdict(&none(), at("2026-12-08T09:00:00+02:00")),
            Verdict::Refuse { .. }
        ));
    }

    // ------------------------------------------------------------ labels

    fn with_canary() -> DeploymentWindows {
        windows(json!({
            "time_zone": "Africa/Johannesburg",
            "allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "08:00", "to": "16:00"}],
            "freezes": [year_end()],
            "by_label": [{
                "labels": {"ring": "canary"},
                "allow": [{"days": ["sat"], "from": "10:00", "to": "12:00"}],
                "freezes": [{
                    "from": "2026-12-05T10:30:00+02:00",
                    "to": "2026-12-05T11:00:00+02:00",
                    "reason": "canary soak"
                }],
                "outside": "wait"
            }]
        }))
    }

    #[test]
    fn a_label_rule_replaces_the_windows() {
        let w = with_canary();
        let canary = labels(&[("ring", "canary"), ("team", "web")]);
        assert_eq!(
            w.verdict(&canary, at("2026-12-05T10:15:00+02:00")),
            Verdict::Open
        );
        // The environment's window is replaced, not added to.
        let verdict = w.verdict(&canary, at("2026-12-07T10:00:00+02:00"));
        assert_eq!(
            verdict,
            refuse(
                "outside the deployment window for ring=canary \
                 (Sat 10:00–12:00 Africa/Johannesburg); next opening Sat 2026-12-12 10:00 SAST \
                 (2026-12-12T08:00Z) is 5 days away, longer than the 1 day a run may wait \
                 (max_wait_seconds 86400)",
                Some("2026-12-12T10:00:00+02:00")
            )
        );
        // Tenants without the label keep the environment's windows.
        assert!(!w
            .verdict(&none(), at("2026-12-05T10:15:00+02:00"))
            .is_open());
        assert!(!w
            .verdict(
                &labels(&[("ring", "stable")]),
                at("2026-12-05T10:15:00+02:00")
            )
            .is_open());
        assert!(w
            .verdict(&none(), at("2026-12-07T10:00:00+02:00"))
            .is_open());
    }

    #[test]
    fn a_label_rule_adds_freezes() {
        let w = with_canary();
        let canary = labels(&[("ring", "canary")]);
        assert_eq!(
            w.verdict(&canary, at("2026-12-05T10:45:00+02:00")),
            Verdict::Wait {
                until: at("2026-12-05T11:00:00+02:00"),
                until_utc: "2026-12-05T09:00:00Z".to_string(),
                reason: "frozen: canary soak (until 2026-12-05T11:00+02:00); \
                         waiting until Sat 2026-12-05 11:00 SAST (2026-12-05T09:00Z)"
                    .to_string(),
            }
        );
        // The environment's freeze still applies to canaries.
        let verdict = w.verdict(&canary, at("2026-12-19T11:00:00+02:00"));
        assert!(
            verdict
                .reason()
                .unwrap()
                .starts_with("frozen: year-end freeze (until 2027-01-04T00:00+02:00); next opening Sat 2027-01-09 10:00 SAST"),
            "{verdict:?}"
        );
        // The canary's own freeze does not apply to other tenants (who are
        // outside their window on a Saturday anyway, so use is_open).
        let policy = w.compile().unwrap().policy(&none());
        assert!(policy.frozen(at("2026-12-05T10:45:00+02:00")).is_none());
    }

    #[test]
    fn the_first_rule_whose_labels_all_match_applies() {
        let w = windows(json!({
            "time_zone": "UTC",
            "allow": [{"days": ["mon"], "from": "08:00", "to": "16:00"}],
            "outside": "wait",
            "max_wait_seconds": 3600,
            "by_label": [
                {"labels": {"ring": "canary", "zone": "a"}, "allow": []},
                {"labels": {"ring": "canary"}, "outside": "refuse"},
                {"labels": {"team": "web"}, "max_wait_seconds": 7200}
            ]
        }));
        let schedule = w.compile().unwrap();
        let matched = |pairs: &[(&str, &str)]| {
            schedule
                .policy(&labels(pairs))
                .matched_labels()
                .map(|labels| labels.keys().cloned().collect::<Vec<_>>().join(","))
        };
        assert_eq!(
            matched(&[("ring", "canary"), ("zone", "a")]),
            Some("ring,zone".into())
        );
        assert_eq!(
            matched(&[("ring", "canary"), ("zone", "b")]),
            Some("ring".into())
        );
        assert_eq!(
            matched(&[("ring", "canary"), ("team", "web")]),
            Some("ring".into())
        );
        assert_eq!(matched(&[("team", "web")]), Some("team".into()));
        assert_eq!(matched(&[("zone", "a")]), None);
        assert_eq!(matched(&[]), None);

        // An empty allow opens every hour for those tenants.
        let sunday = at("2026-12-06T03:00:00Z");
        assert!(w
            .verdict(&labels(&[("ring", "canary"), ("zone", "a")]), sunday)
            .is_open());
        // Unset fields are inherited: outside from the environment...
        let team = schedule.policy(&labels(&[("team", "web")]));
        assert_eq!(team.outside(), OutsideMode::Wait);
        assert_eq!(team.max_wait_seconds(), 7200);
        // ...and max_wait_seconds too.
        let zone_a = schedule.policy(&labels(&[("ring", "canary"), ("zone", "a")]));
        assert_eq!(zone_a.max_wait_seconds(), 3600);
        assert_eq!(
            schedule.policy(&labels(&[("ring", "canary")])).outside(),
            OutsideMode::Refuse
        );
    }

    // ------------------------------------------------------------ config errors

    #[test]
    fn every_config_error_names_its_field() {
        let office = |allow: serde_json::Value| {
            error(json!({"time_zone": "Africa/Johannesburg", "allow": [allow]}))
        };
        let cases: Vec<(String, &str)> = vec![
            (
                error(json!({"time_zone": "Mars/Olympus"})),
                "deployment_windows.time_zone: \"Mars/Olympus\" is not a known IANA time zone \
                 (e.g. Africa/Johannesburg)",
            ),
            (
                error(json!({"time_zone": ""})),
                "deployment_windows.time_zone: \"\" is not a known IANA time zone \
                 (e.g. Africa/Johannesburg)",
            ),
            (
                office(json!({"days": ["mon", "monday"], "from": "08:00", "to": "16:00"})),
                "deployment_windows.allow[0].days[1]: \"monday\" is not one of \
                 mon, tue, wed, thu, fri, sat, sun",
            ),
            (
                office(json!({"days": ["Mon"], "from": "08:00", "to": "16:00"})),
                "deployment_windows.allow[0].days[0]: \"Mon\" is not one of \
                 mon, tue, wed, thu, fri, sat, sun",
            ),
            (
                office(json!({"days": ["mon", "tue", "mon"], "from": "08:00", "to": "16:00"})),
                "deployment_windows.allow[0].days[2]: \"mon\" is listed twice",
            ),
            (
                office(json!({"days": [], "from": "08:00", "to": "16:00"})),
                "deployment_windows.allow[0].days: empty; a window needs at least one day",
            ),
            (
                office(json!({"days": ["mon"], "from": "8:00", "to": "16:00"})),
                "deployment_windows.allow[0].from: \"8:00\" is not HH:MM (00:00 to 23:59)",
            ),
            (
                office(json!({"days": ["mon"], "from": "24:00", "to": "16:00"})),
                "deployment_windows.allow[0].from: \"24:00\" is not HH:MM (00:00 to 23:59)",
            ),
            (
                office(json!({"days": ["mon"], "from": "08:60", "to": "16:00"})),
                "deployment_windows.allow[0].from: \"08:60\" is not HH:MM (00:00 to 23:59)",
            ),
            (
                office(json!({"days": ["mon"], "from": "08:00", "to": "24:01"})),
                "deployment_windows.allow[0].to: \"24:01\" is not HH:MM (00:00 to 24:00)",
            ),
            (
                office(json!({"days": ["mon"], "from": "08:00", "to": "4pm"})),
                "deployment_windows.allow[0].to: \"4pm\" is not HH:MM (00:00 to 24:00)",
            ),
            (
                office(json!({"days": ["mon"], "from": "08:00", "to": "16:00:00"})),
                "deployment_windows.allow[0].to: \"16:00:00\" is not HH:MM (00:00 to 24:00)",
            ),
            (
                office(json!({"days": ["mon"], "from": "08:00", "to": "08:00"})),
                "deployment_windows.allow[0].to: \"08:00\" equals from; a window needs a length \
                 (00:00 to 24:00 is a whole day)",
            ),
            (
                office(json!({"days": ["mon"], "from": "00:00", "to": "00:00"})),
                "deployment_windows.allow[0].to: \"00:00\" equals from; a window needs a length \
                 (00:00 to 24:00 is a whole day)",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18", "to": "2027-01-04T00:00:00+02:00", "reason": "x"}
                ]})),
                "deployment_windows.freezes[0].from: \"2026-12-18\" is not an RFC 3339 date-time \
                 with an offset (e.g. 2026-12-18T00:00:00+02:00)",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18T00:00:00+02:00", "to": "2027-01-04T00:00:00", "reason": "x"}
                ]})),
                "deployment_windows.freezes[0].to: \"2027-01-04T00:00:00\" is not an RFC 3339 \
                 date-time with an offset (e.g. 2026-12-18T00:00:00+02:00)",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18T00:00:00+02:00", "to": "2026-12-17T22:00:00Z", "reason": "x"}
                ]})),
                "deployment_windows.freezes[0].to: \"2026-12-17T22:00:00Z\" is not after from \
                 \"2026-12-18T00:00:00+02:00\"",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18T00:00:00Z", "to": "2026-12-17T00:00:00Z", "reason": "x"}
                ]})),
                "deployment_windows.freezes[0].to: \"2026-12-17T00:00:00Z\" is not after from \
                 \"2026-12-18T00:00:00Z\"",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18T00:00:00Z", "to": "2026-12-19T00:00:00Z", "reason": " "}
                ]})),
                "deployment_windows.freezes[0].reason: empty; say why deployments are frozen \
                 (operators are shown it)",
            ),
            (
                error(json!({"time_zone": "UTC", "freezes": [
                    {"from": "2026-12-18T00:00:00Z", "to": "2026-12-19T00:00:00Z", "reason": "a\nb"}
                ]})),
                "deployment_windows.freezes[0].reason: \"a\\nb\" is not one line of text \
                 (it is quoted in error messages)",
            ),
            (
                error(json!({"time_zone": "UTC", "outside": "wait", "max_wait_seconds": 0})),
                "deployment_windows.max_wait_seconds: 0 is outside 1..=604800 (a run waits at \
                 most 7 days; for longer, refuse and send the request again)",
            ),
            (
                error(json!({"time_zone": "UTC", "outside": "wait", "max_wait_seconds": 604_801})),
                "deployment_windows.max_wait_seconds: 604801 is outside 1..=604800 (a run waits \
                 at most 7 days; for longer, refuse and send the request again)",
            ),
            (
                error(json!({"time_zone": "UTC", "outside": "refuse", "max_wait_seconds": 60})),
                "deployment_windows.max_wait_seconds: set, but outside is \"refuse\"; it only \
                 applies with \"outside\": \"wait\"",
            ),
            (
                error(json!({"time_zone": "UTC", "max_wait_seconds": 60})),
                "deployment_windows.max_wait_seconds: set, but outside is \"refuse\"; it only \
                 applies with \"outside\": \"wait\"",
            ),
            (
                error(json!({"time_zone": "UTC", "by_label": [{"labels": {}}]})),
                "deployment_windows.by_label[0].labels: empty; a rule needs at least one label \
                 to match (the environment's own settings already apply to every tenant)",
            ),
            (
                error(json!({"time_zone": "UTC", "by_label": [
                    {"labels": {"ring": "canary"}},
                    {"labels": {"ring": "beta"}, "allow": [{"days": ["mon"], "from": "8", "to": "9"}]}
                ]})),
                "deployment_windows.by_label[1].allow[0].from: \"8\" is not HH:MM (00:00 to 23:59)",
            ),
            (
                error(
                    json!({"time_zone": "UTC", "by_label": [{"labels": {"ring": "canary"},
                        "freezes": [{"from": "2026-12-18T00:00:00Z", "to": "2026-12-19T00:00:00Z", "reason": ""}]
                    }]}),
                ),
                "deployment_windows.by_label[0].freezes[0].reason: empty; say why deployments \
                 are frozen (operators are shown it)",
            ),
            (
                error(json!({"time_zone": "UTC", "by_label": [
                    {"labels": {"ring": "canary"}, "max_wait_seconds": 60}
                ]})),
                "deployment_windows.by_label[0].max_wait_seconds: set, but outside is \"refuse\"; \
                 it only applies with \"outside\": \"wait\"",
            ),
            (
                error(json!({"time_zone": "UTC", "outside": "wait", "by_label": [
                    {"labels": {"ring": "canary"}, "outside": "refuse", "max_wait_seconds": 60}
                ]})),
                "deployment_windows.by_label[0].max_wait_seconds: set, but outside is \"refuse\"; \
                 it only applies with \"outside\": \"wait\"",
            ),
            (
                error(json!({"time_zone": "UTC", "outside": "wait", "by_label": [
                    {"labels": {"ring": "canary"}, "max_wait_seconds": 604_801}
                ]})),
                "deployment_windows.by_label[0].max_wait_seconds: 604801 is outside 1..=604800 \
                 (a run waits at most 7 days; for longer, refuse and send the request again)",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn edge_values_that_are_accepted() {
        windows(json!({"time_zone": "UTC", "outside": "wait", "max_wait_seconds": 604_800}));
        windows(json!({"time_zone": "UTC", "outside": "wait", "max_wait_seconds": 1}));
        windows(json!({"time_zone": "UTC", "allow": [], "freezes": [], "by_label": []}));
        windows(json!({"time_zone": "UTC", "by_label": [
            {"labels": {"ring": "canary"}, "outside": "wait", "max_wait_seconds": 60}
        ]}));
        windows(json!({"time_zone": "UTC", "allow": [
            {"days": ["sun"], "from": "23:59", "to": "00:00"},
            {"days": ["mon"], "from": "00:00", "to": "00:01"}
        ]}));
    }

    #[test]
    fn a_long_value_is_quoted_short() {
        let long = "x".repeat(500);
        assert_eq!(
            error(json!({"time_zone": long})),
            format!(
                "deployment_windows.time_zone: \"{}\"… (500 characters) is not a known IANA \
                 time zone (e.g. Africa/Johannesburg)",
                "x".repeat(48)
            )
        );
    }

    #[test]
    fn an_invalid_config_refuses_every_request() {
        let w: DeploymentWindows =
            serde_json::from_value(json!({"time_zone": "Nowhere/Special"})).unwrap();
        assert_eq!(
            w.verdict(&none(), at("2026-12-07T10:00:00Z")),
            refuse(
                "deployment windows cannot be evaluated: deployment_windows.time_zone: \
                 \"Nowhere/Special\" is not a known IANA time zone (e.g. Africa/Johannesburg)",
                None
            )
        );
        assert!(w
            .describe()
            .starts_with("invalid deployment windows: deployment_windows.time_zone"));
    }

    // ------------------------------------------------------------ serde

    const EXAMPLE: &str = r#"{
        "time_zone": "Africa/Johannesburg",
        "allow": [ { "days": ["mon","tue","wed","thu"], "from": "08:00", "to": "16:00" } ],
        "freezes": [ { "from": "2026-12-18T00:00:00+02:00", "to": "2027-01-04T00:00:00+02:00", "reason": "year-end freeze" } ],
        "outside": "wait",
        "max_wait_seconds": 86400,
        "by_label": [ { "labels": {"ring": "canary"}, "allow": [ { "days": ["sat"], "from": "10:00", "to": "12:00" } ], "freezes": [], "outside": "refuse" } ]
    }"#;

    #[test]
    fn the_example_round_trips() {
        let parsed: DeploymentWindows = serde_json::from_str(EXAMPLE).unwrap();
        parsed.check().unwrap();
        assert_eq!(parsed.time_zone, "Africa/Johannesburg");
        assert_eq!(parsed.outside, Some(OutsideMode::Wait));
        assert_eq!(parsed.by_label[0].outside, Some(OutsideMode::Refuse));
        let text = serde_json::to_string(&parsed).unwrap();
        let again: DeploymentWindows = serde_json::from_str(&text).unwrap();
        assert_eq!(again, parsed);
        // Written back, it says what was read (an empty list is left out).
        let mut original: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        original["by_label"][0]
            .as_object_mut()
            .unwrap()
            .remove("freezes");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), original);
        // The minimal config stays minimal.
        let minimal = json!({"time_zone": "UTC"});
        let parsed: DeploymentWindows = serde_json::from_value(minimal.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), minimal);
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        for value in [
            json!({"time_zone": "UTC", "timezone": "UTC"}),
            json!({"time_zone": "UTC", "allow": [{"days": ["mon"], "from": "08:00", "to": "09:00", "until": "x"}]}),
            json!({"time_zone": "UTC", "freezes": [{"from": "a", "to": "b", "reason": "c", "by": "d"}]}),
            json!({"time_zone": "UTC", "by_label": [{"labels": {"a": "b"}, "time_zone": "UTC"}]}),
            json!({"time_zone": "UTC", "outside": "sometimes"}),
            json!({"time_zone": "UTC", "max_wait_seconds": -1}),
            json!({"allow": []}),
        ] {
            assert!(
                serde_json::from_value::<DeploymentWindows>(value.clone()).is_err(),
                "{value}"
            );
        }
    }

    #[test]
    fn a_verdict_serializes_for_the_state_machine() {
        let verdict = waiting(Some(172_800)).verdict(&none(), at("2026-12-05T12:00:00+02:00"));
        let value = serde_json::to_value(&verdict).unwrap();
        assert_eq!(value["verdict"], "wait");
        assert_eq!(value["until"], at("2026-12-07T06:00:00Z"));
        assert_eq!(value["until_utc"], "2026-12-07T06:00:00Z");
        assert_eq!(
            serde_json::to_value(Verdict::Open).unwrap(),
            json!({"verdict": "open"})
        );
        let back: Verdict = serde_json::from_value(value).unwrap();
        assert_eq!(back, verdict);
    }

    // ------------------------------------------------------------ DST

    fn daily(zone: &str, from: &str, to: &str) -> Policy {
        windows(json!({
            "time_zone": zone,
            "allow": [{
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "from": from,
                "to": to
            }]
        }))
        .compile()
        .unwrap()
        .policy(&none())
    }

    // Europe/London: 2026-03-29 01:00Z the clocks go from 01:00 GMT to 02:00
    // BST; 2026-10-25 01:00Z from 02:00 BST back to 01:00 GMT.

    #[test]
    fn dst_moves_a_window_in_utc() {
        let policy = daily("Europe/London", "08:00", "16:00");
        assert_eq!(
            policy.next_opening(at("2026-03-27T16:00:00Z")),
            Some(at("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            policy.next_opening(at("2026-03-28T16:00:00Z")),
            Some(at("2026-03-29T07:00:00Z"))
        );
        assert!(policy.is_open(at("2026-03-29T14:59:59Z")));
        assert!(!policy.is_open(at("2026-03-29T15:00:00Z")));
        assert_eq!(
            policy.next_opening(at("2026-10-24T16:00:00Z")),
            Some(at("2026-10-25T08:00:00Z"))
        );
        assert_eq!(
            policy.verdict(at("2026-03-28T20:00:00Z")).reason(),
            Some(
                "outside the deployment window (Mon–Sun 08:00–16:00 Europe/London); \
                 next opening Sun 2026-03-29 08:00 BST (2026-03-29T07:00Z)"
            )
        );
    }

    #[test]
    fn a_window_in_the_skipped_hour_does_not_happen_that_day() {
        // Europe/Berlin skips 02:00–03:00 on 2026-03-29 (01:00Z).
        let berlin = daily("Europe/Berlin", "02:00", "03:00");
        assert!(berlin.is_open(at("2026-03-28T01:30:00Z")));
        for minute in 0..=120 {
            let now = at("2026-03-28T23:00:00Z") + minute * 60;
            assert!(!berlin.is_open(now), "{}", rfc3339_utc(now).unwrap());
        }
        assert_eq!(
            berlin.verdict(at("2026-03-29T00:30:00Z")),
            refuse(
                "outside the deployment window (Mon–Sun 02:00–03:00 Europe/Berlin); \
                 next opening Mon 2026-03-30 02:00 CEST (2026-03-30T00:00Z)",
                Some("2026-03-30T00:00:00Z")
            )
        );
        // The same in London, whose skipped hour is 01:00–02:00.
        let london = daily("Europe/London", "01:00", "02:00");
        assert!(!london.is_open(at("2026-03-29T00:59:59Z")));
        assert!(!london.is_open(at("2026-03-29T01:00:00Z")));
        assert_eq!(
            london.next_opening(at("2026-03-29T00:30:00Z")),
            Some(at("2026-03-30T00:00:00Z"))
        );
    }

    #[test]
    fn a_window_overlapping_the_skipped_hour_keeps_its_wall_clock_part() {
        // 01:30–03:00 opens when the clock jumps to 02:00 BST.
        let late = daily("Europe/London", "01:30", "03:00");
        assert_eq!(
            late.next_opening(at("2026-03-29T00:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
        assert!(late.is_open(at("2026-03-29T01:59:59Z")));
        assert!(!late.is_open(at("2026-03-29T02:00:00Z")));
        // 00:30–01:30 closes when the clock jumps past 01:30.
        let early = daily("Europe/London", "00:30", "01:30");
        assert!(early.is_open(at("2026-03-29T00:30:00Z")));
        assert!(early.is_open(at("2026-03-29T00:59:59Z")));
        assert!(!early.is_open(at("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn a_window_in_the_repeated_hour_is_open_both_times() {
        let policy = daily("Europe/London", "01:00", "02:00");
        assert!(!policy.is_open(at("2026-10-24T23:59:59Z")));
        assert_eq!(
            policy.next_opening(at("2026-10-24T23:30:00Z")),
            Some(at("2026-10-25T00:00:00Z"))
        );
        for now in ["00:00:00", "00:59:59", "01:00:00", "01:59:59"] {
            assert!(policy.is_open(at(&format!("2026-10-25T{now}Z"))), "{now}");
        }
        assert!(!policy.is_open(at("2026-10-25T02:00:00Z")));
    }

    #[test]
    fn a_freeze_over_the_first_repeated_hour_opens_at_the_second() {
        let policy = windows(json!({
            "time_zone": "Europe/London",
            "allow": [{"days": ["sun"], "from": "01:30", "to": "01:45"}],
            "freezes": [{
                "from": "2026-10-25T00:00:00Z",
                "to": "2026-10-25T01:00:00Z",
                "reason": "clock change"
            }]
        }))
        .compile()
        .unwrap()
        .policy(&none());
        assert_eq!(
            policy.verdict(at("2026-10-25T00:35:00Z")),
            refuse(
                "frozen: clock change (until 2026-10-25T01:00+00:00); \
                 next opening Sun 2026-10-25 01:30 GMT (2026-10-25T01:30Z)",
                Some("2026-10-25T01:30:00Z")
            )
        );
    }

    // ------------------------------------------------------------ odds and ends

    #[test]
    fn instants_out_of_range_refuse_without_panicking() {
        let w = office_hours();
        for now in [i64::MAX, i64::MIN] {
            assert_eq!(
                w.verdict(&none(), now),
                refuse(
                    &format!("the clock reading {now} is outside the supported range"),
                    None
                )
            );
        }
        let policy = w.compile().unwrap().policy(&none());
        assert_eq!(policy.next_opening(i64::MAX), None);
        // Near the end of representable time the search stops at the end.
        let last = Timestamp::MAX.as_second();
        assert!(policy.next_opening(last - 10 * DAY_SECONDS).is_some());
        assert_eq!(rfc3339_utc(i64::MAX), None);
        assert_eq!(rfc3339_utc(0).as_deref(), Some("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn describe_is_short() {
        let w = with_canary();
        assert_eq!(
            w.describe(),
            "Mon–Thu 08:00–16:00 Africa/Johannesburg; outside them: refuse; \
             frozen 2026-12-18T00:00+02:00 to 2027-01-04T00:00+02:00 (year-end freeze)\n\
             tenants labelled ring=canary: Sat 10:00–12:00 Africa/Johannesburg; outside them: \
             wait up to 1 day; frozen 2026-12-18T00:00+02:00 to 2027-01-04T00:00+02:00 \
             (year-end freeze); frozen 2026-12-05T10:30+02:00 to 2026-12-05T11:00+02:00 \
             (canary soak)"
        );
        assert_eq!(
            windows(json!({"time_zone": "UTC"})).describe(),
            "any time (UTC); outside them: refuse"
        );
    }

    #[test]
    fn days_and_durations_read_naturally() {
        let days = |names: &[usize]| {
            let mut mask = [false; 7];
            for &i in names {
                mask[i] = true;
            }
            days_text(&mask)
        };
        assert_eq!(days(&[0, 1, 2, 3]), "Mon–Thu");
        assert_eq!(days(&[5, 6]), "Sat,Sun");
        assert_eq!(days(&[0, 2, 4]), "Mon,Wed,Fri");
        assert_eq!(days(&[0, 1, 2, 4, 5, 6]), "Mon–Wed,Fri–Sun");
        assert_eq!(days(&[0, 1, 2, 3, 4, 5, 6]), "Mon–Sun");
        assert_eq!(human_duration(0), "0 seconds");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(3660), "1 hour 1 minute");
        assert_eq!(human_duration(90_061), "1 day 1 hour");
        assert_eq!(human_duration(86_400 + 60), "1 day");
        assert_eq!(human_duration(432_000), "5 days");
    }
}
