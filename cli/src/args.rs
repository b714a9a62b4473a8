//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Operate stepdeploy: deploy tenants, follow runs, see what runs where.
///
/// Talks to the orchestrator account (EventBridge, Step Functions, the
/// approvals table) and, for `status`, to each environment's account through
/// its deploy role, exactly as the Lambdas do. Point it at the local stack
/// with `source local/env.sh` (or `--endpoint-url http://127.0.0.1:5000`).
#[derive(Debug, Parser)]
#[command(name = "stepdeploy", version, propagate_version = true)]
pub struct Cli {
    /// AWS and output settings shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Endpoint for every AWS service (the local stack: http://127.0.0.1:5000).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile to use.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// The orchestrator's region.
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Name of the orchestrator stack: the bus, `{stack}-deploy-tenant`, `{stack}-teardown-tenant`, `{stack}-rollout-fleet`, `{stack}-approvals`.
    #[arg(
        long,
        global = true,
        env = "STEPDEPLOY_STACK",
        default_value = "stepdeploy"
    )]
    pub stack: String,
    /// Directory of environment configs (`<env>.json`).
    #[arg(long, global = true, env = "STEPDEPLOY_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: lines and tables.
    Text,
    /// For scripts: one JSON document.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Request a deployment: puts the event, prints the execution it started.
    Deploy(Deploy),
    /// Roll one image out to many tenants of an environment, in waves.
    Rollout(Rollout),
    /// Follow a run live: one line per phase (a rollout: per wave), approvals while waiting.
    Watch(Watch),
    /// Tenants × environments: image, last run, outcome, URL.
    Status(Status),
    /// Past runs of a tenant in an environment.
    History(History),
    /// Remove a tenant from an environment (asks for confirmation).
    Teardown(Teardown),
    /// Finish the rollback of a failed run once its obstacle is removed.
    Cleanup(Cleanup),
    /// A tenant's release history in an environment: every successful deployment, newest last.
    Releases(Releases),
    /// Put a recorded release back (default: the newest earlier release with another image).
    ///
    /// Runs the same pipeline as a deployment (prod: the quorum, with the
    /// mail saying it is a rollback and from what to what). With
    /// --restore-database the tenant's database is also loaded from the dump
    /// taken just before the release that replaced it (environments with
    /// database_backup take one before every image change).
    Rollback(Rollback),
    /// The four DORA figures of the deploy runs, per environment and overall.
    ///
    /// Reads the deploy state machine's executions (a run is attributed to
    /// its tenant and environment by its name, `{tenant}-{env}-{id}`) and
    /// counts those that finished within --since of now; running runs are
    /// left out of every figure and only counted. Per environment and over
    /// all of them:
    ///
    /// - deployment frequency: successful runs, and per day of the window;
    ///
    /// - lead time for changes: stop - start of each successful run (the
    ///   start is when the request event arrived), median and p90;
    ///
    /// - change failure rate: failed / finished runs (succeeded + failed;
    ///   aborted and timed-out runs count as failed);
    ///
    /// - time to restore: for each failed run, the time from its end to the
    ///   end of the next successful run of the same tenant in the same
    ///   environment, median; failures with none yet are listed as unrestored.
    ///
    /// A figure with nothing to compute it from is "-" (null in JSON);
    /// seconds are numbers and rates fractions in JSON. Step Functions lists
    /// executions for 90 days after they end.
    Stats(Stats),
    /// Environment configs.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Sample events.
    #[command(subcommand)]
    Events(EventsCommand),
}

/// Who asked and how to follow, shared by deploy, rollout and teardown.
#[derive(Debug, Args)]
pub struct Request {
    /// Who asks (e-mail or user name); defaults to $USER. The requester may not approve their own run.
    #[arg(long, env = "STEPDEPLOY_REQUESTED_BY")]
    pub requested_by: Option<String>,
    /// Idempotency key: sending the same one again finds the first run (default: a new UUID).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Follow the run until it ends (exit code 3 if it does not succeed).
    #[arg(long)]
    pub wait: bool,
}

/// `stepdeploy deploy`.
#[derive(Debug, Args)]
pub struct Deploy {
    /// Tenant to deploy.
    pub tenant: String,
    /// Environment to deploy to.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
    /// Image to run (default: the environment's).
    #[arg(long)]
    pub image: Option<String>,
    /// ALB listener rule priority (default: the tenant's, or the lowest free).
    #[arg(long)]
    pub priority: Option<u32>,
    /// On success, request the next environment's deployment.
    #[arg(long)]
    pub auto_promote: bool,
    /// A label rollouts select on, KEY=VALUE (repeat, or comma-separate); the labels given replace the tenant's recorded ones.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Deploy outside the environment's deployment window (or in a freeze), for this reason: the environment's quorum must approve.
    #[arg(long, value_name = "REASON")]
    pub window_override: Option<String>,
    /// Requester, idempotency key, --wait.
    #[command(flatten)]
    pub request: Request,
}

/// `stepdeploy releases`.
#[derive(Debug, Args)]
pub struct Releases {
    /// The tenant.
    pub tenant: String,
    /// The environment.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
}

/// `stepdeploy rollback`.
#[derive(Debug, Args)]
pub struct Rollback {
    /// The tenant.
    pub tenant: String,
    /// The environment.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
    /// The release to put back (`stepdeploy releases` numbers them; default: the newest earlier one with another image).
    #[arg(long = "to", value_name = "N")]
    pub to: Option<u32>,
    /// Also load the database dump taken before the release that replaced it (its data then); what the database holds now is dumped first.
    #[arg(long)]
    pub restore_database: bool,
    /// Roll back outside the deployment window (or in a freeze), for this reason: the environment's quorum must approve.
    #[arg(long, value_name = "REASON")]
    pub window_override: Option<String>,
    /// Requester, idempotency key, --wait.
    #[command(flatten)]
    pub request: Request,
}

/// `stepdeploy rollout`.
#[derive(Debug, Args)]
pub struct Rollout {
    /// Environment whose tenants move.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
    /// Image every selected tenant ends up on (tenants already on it are skipped).
    #[arg(long)]
    pub image: String,
    /// `all`: every tenant of the environment (the default without --tenant or --label).
    #[arg(long, value_name = "all")]
    pub tenants: Option<String>,
    /// Only this tenant (repeat, or comma-separate).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenant: Vec<String>,
    /// Only the tenants with this label, KEY=VALUE (repeat, or comma-separate: a tenant must have them all).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// A wave, in order (repeat): label:KEY=VALUE[,KEY=VALUE], tenants:A[,B…], P% (of the rollout) or N (tenants); the tenants no wave takes form a final wave.
    #[arg(long = "wave", value_name = "WAVE")]
    pub waves: Vec<String>,
    /// Most tenant deployments at once (1 to 100; default 5).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<u32>,
    /// Failures tolerated before the rollout halts: per_wave=N|P%,overall=N|P% (default: none).
    #[arg(long, value_name = "BUDGET")]
    pub failure_budget: Option<String>,
    /// Seconds to wait between waves (0 to 86400; default 0).
    #[arg(long = "bake", value_name = "SECONDS")]
    pub bake: Option<u32>,
    /// Requester (an e-mail address), idempotency key, --wait.
    #[command(flatten)]
    pub request: Request,
}

/// `stepdeploy watch`.
#[derive(Debug, Args)]
pub struct Watch {
    /// An execution (ARN or name; a rollout's `rollout-{env}-{id}`), or a tenant (with --env: its newest run).
    pub target: String,
    /// Environment, when TARGET is a tenant.
    #[arg(long = "env", short = 'e')]
    pub environment: Option<String>,
}

/// `stepdeploy status`.
#[derive(Debug, Args)]
pub struct Status {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this environment.
    #[arg(long = "env", short = 'e')]
    pub environment: Option<String>,
}

/// `stepdeploy history`.
#[derive(Debug, Args)]
pub struct History {
    /// Tenant.
    pub tenant: String,
    /// Environment.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// `stepdeploy teardown`.
#[derive(Debug, Args)]
pub struct Teardown {
    /// Tenant to remove.
    pub tenant: String,
    /// Environment to remove it from.
    #[arg(long = "env", short = 'e')]
    pub environment: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Requester, idempotency key, --wait.
    #[command(flatten)]
    pub request: Request,
}

/// `stepdeploy cleanup`.
#[derive(Debug, Args)]
pub struct Cleanup {
    /// A failed or stopped run (name or ARN), or a tenant (with --env: the run holding its lock).
    pub target: String,
    /// Environment, when TARGET is a tenant.
    #[arg(long = "env", short = 'e')]
    pub environment: Option<String>,
    /// Who asks; defaults to $USER.
    #[arg(long, env = "STEPDEPLOY_REQUESTED_BY")]
    pub requested_by: Option<String>,
}

/// `stepdeploy stats`.
#[derive(Debug, Args)]
pub struct Stats {
    /// Only this environment (default: every environment with runs in the window).
    #[arg(long = "env", short = 'e')]
    pub environment: Option<String>,
    /// The window, ending now: N hours, days or weeks (12h, 30d, 2w).
    #[arg(long, default_value = "30d", value_name = "PERIOD")]
    pub since: String,
}

/// `stepdeploy config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check environment configs; every error names the file and the field.
    Validate {
        /// Files to check (default: every `*.json` in the config directory, checked as a set).
        files: Vec<PathBuf>,
    },
}

/// `stepdeploy events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print a valid sample event, ready for `aws events put-events --entries file:///dev/stdin`.
    Example {
        /// Which event.
        #[arg(value_enum)]
        kind: EventKind,
        /// Tenant in the sample (a rollout's canary wave).
        #[arg(long, default_value = "goldencrust")]
        tenant: String,
        /// Environment in the sample.
        #[arg(long = "env", short = 'e', default_value = "dev")]
        environment: String,
    },
}

/// Events stepdeploy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKind {
    /// `Tenant Deployment Requested`.
    Deploy,
    /// `Tenant Teardown Requested`.
    Teardown,
    /// `Fleet Rollout Requested`.
    Rollout,
    /// `Tenant Rollback Requested`.
    Rollback,
}
