"""ECS services start their tasks as Fargate does: after a delay, and only if
the tasks can fetch their secrets.

moto gap: a service stays at runningCount 0 with its deployment
IN_PROGRESS forever (EC2ContainerServiceBackend.create_service/update_service,
moto/ecs/models.py), and update_service neither records a new deployment nor
resolves the task definition to an ARN.  Checked against moto 5.2.5 (the
pinned release, the newest on PyPI): gap still there (no service scheduler,
only a fixed MOTO_ECS_SERVICE_RUNNING count set at creation; no secret is
fetched).  Covered by test_ecs.py and test_ecs_startup.py.

Here a service goes through the life AWS gives it:

* CreateService / UpdateService (new task definition, forceNewDeployment,
  network, load balancers or platform version) start a deployment: PRIMARY,
  rolloutState IN_PROGRESS, runningCount 0, a new id `ecs-svc/<19 digits>`.
  The previous PRIMARY becomes ACTIVE and keeps its running tasks (and the
  service's runningCount) until the new one completes, as a rolling update.
* A launch of the missing tasks starts at once ("(service S) has started N
  tasks: (task ID) ..." event, pendingCount N) and resolves
  STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS later (default 1).  Nothing runs in the
  background: the service is brought up to date whenever it is described
  (DescribeServices, ListTasks, DescribeTasks; the tenant-site stand-in
  describes them when asked for a site, at most once a second), so the
  outcome is decided by the world
  as it is when the first describe after the delay looks.
* The launch succeeds when every `secrets[].valueFrom` (and
  `logConfiguration.secretOptions`, `repositoryCredentials`) of every
  container resolves: a Secrets Manager secret by full or partial ARN (a
  `:json-key:version-stage:version-id` tail honoured: the key must be in the
  secret's JSON), in the account and region of its ARN, not scheduled for
  deletion; an SSM parameter by ARN or (same account and region) by name; and,
  when stack/iam_enforce.py offers an evaluator, the task execution role may
  read it (secretsmanager:GetSecretValue / ssm:GetParameters).  Then the tasks
  are RUNNING, one ip target per task is registered in the service's target
  groups, the deployment is COMPLETED ("ECS deployment ID completed."), older
  deployments are drained (their tasks STOPPED), runningCount = desiredCount
  and the event "(service S) has reached a steady state." is added.
* Otherwise the tasks stop (lastStatus STOPPED, stopCode TaskFailedToStart,
  stoppedReason as Fargate writes it, e.g. "ResourceInitializationError:
  unable to pull secrets or registry auth: execution resource retrieval
  failed: unable to retrieve secret from asm: service call has been retried
  1 time(s): failed to fetch secret ARN from secrets manager:
  ResourceNotFoundException: Secrets Manager can't find the specified
  secret. status code: 400, request id: ..."), the deployment's failedTasks
  grows by the tasks launched, runningCount stays where it was, the
  deployment stays IN_PROGRESS, and the service never reaches a steady state
  while the cause lasts.  ECS relaunches: here the next launch starts after
  a back-off of STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS (default 30) doubled for
  each further consecutive failure, at most ECS_BACKOFF_CAP_SECONDS (900),
  and takes the startup delay again: so a secret created meanwhile lets the
  service start at the first describe after that.  After
  IMPAIRED_AFTER_FAILURES consecutive failures the service event "(service
  S) is unable to consistently start tasks successfully. For more
  information, see the Troubleshooting section of the Amazon ECS Developer
  Guide." is added once (ECS's SERVICE_TASK_START_IMPAIRED).  AWS's own
  throttle grows to many minutes, longer than verify waits; the default 30 s
  (doubling) is already longer than a local verify loop, so a service whose
  first tasks failed does not come up within one, as in AWS.
  There is no deployment circuit breaker (the pipeline does not enable it).
* RegisterTaskDefinition with container secrets and no executionRoleArn is
  refused as AWS refuses it (ClientException "When you are specifying
  container secrets, you must also specify a value for 'executionRoleArn'.").
* Scaling in (UpdateService desiredCount lower) stops tasks at once; scaling
  out launches the missing tasks as above.  DeleteService stops them.
* Tasks are visible through ListTasks (serviceName, startedBy = the
  deployment id, desiredStatus) and DescribeTasks; the last
  STOPPED_TASKS_KEPT stopped tasks of a service are kept.

Not modelled: health checks, image pulls, placement, capacity, ENIs, the
exact timing of AWS's back-off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

ECS_BACKOFF_CAP_SECONDS = 900.0
IMPAIRED_AFTER_FAILURES = 3
STOPPED_TASKS_KEPT = 10
SERVICE_EVENTS_KEPT = 100  # DescribeServices returns at most the 100 latest events
MIN_CYCLE_SECONDS = 0.01


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must be >= 0, got {raw!r}")
    return value


class Settings:
    startup_seconds = 1.0
    backoff_seconds = 0.0

    @classmethod
    def load(cls) -> None:
        cls.startup_seconds = _env_seconds("STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS", 1.0)
        cls.backoff_seconds = _env_seconds("STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS", 30.0)


_lock = threading.RLock()


def _dt(t: float) -> datetime:
    """A wall time as moto's naive-UTC datetimes."""
    return datetime.fromtimestamp(t, tz=timezone.utc).replace(tzinfo=None)


def _deployment_id() -> str:
    return f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"


class Launch:
    """One attempt to start `count` tasks of one deployment."""

    def __init__(self, deployment_id: str, count: int, start: float, failures: int = 0) -> None:
        self.deployment_id = deployment_id
        self.count = count
        self.start = start
        self.due = start + Settings.startup_seconds
        self.failures = failures
        self.announced = False
        self.task_ids = [uuid.uuid4().hex for _ in range(count)]


def _state(service: Any) -> dict[str, Any]:
    return service.__dict__.setdefault("_stepdeploy", {"launch": None, "tasks": []})


def _event(service: Any, at: float, message: str) -> None:
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _dt(at), "message": message})
    del service.events[SERVICE_EVENTS_KEPT:]


# ---- tasks -----------------------------------------------------------------


def _task_class() -> type:
    from moto.ecs.models import Container, Task

    class ServiceTask(Task):
        """A task the service scheduler started (no ENI, no state machine of moto's)."""

        # moto's model metaclass files models by the service named in the module path.
        __module__ = "moto.ecs.stepdeploy_service_tasks"

        def __init__(self, backend: Any, service: Any, task_definition: Any, task_id: str,
                     deployment_id: str, created: float) -> None:
            cluster = backend.clusters[service.cluster_name]
            self.id = task_id
            self.cluster_name = cluster.name
            self.cluster_arn = cluster.arn
            self.container_instance_arn = None
            self.desired_status = "RUNNING"
            self._stepdeploy_last_status = "PROVISIONING"
            self.task_definition_arn = task_definition.arn
            self.overrides = {}
            self.containers = [Container(task_definition)]
            self.started_by = deployment_id
            self.tags = []
            self.launch_type = service.launch_type or "FARGATE"
            self.capacity_provider_name = None
            self.platform_version = service.platform_version or "1.4.0"
            self.stopped_reason = ""
            self.resource_requirements = None
            self.region_name = cluster.region_name
            self._account_id = backend.account_id
            self._backend = backend
            self.attachments = []
            self.group = f"service:{service.name}"
            self.cpu = getattr(task_definition, "cpu", None)
            self.memory = getattr(task_definition, "memory", None)
            self.created_at = _dt(created)
            self.network_configuration = getattr(service, "network_configuration", None)
            self._tick = 0
            self.model_name = "ecs::task"

        @property
        def last_status(self) -> str:
            return self._stepdeploy_last_status

        @last_status.setter
        def last_status(self, value: str) -> None:
            self._stepdeploy_last_status = value

        @property
        def status(self) -> str:
            return self._stepdeploy_last_status

        @status.setter
        def status(self, value: str) -> None:
            self._stepdeploy_last_status = value

        def advance(self) -> None:
            pass

        def run(self, at: float) -> None:
            self._stepdeploy_last_status = "RUNNING"
            self.started_at = _dt(at)
            for container in self.containers:
                container.last_status = "RUNNING"

        def stop(self, at: float, reason: str, code: str) -> None:
            self._stepdeploy_last_status = "STOPPED"
            self.desired_status = "STOPPED"
            self.stopped_reason = reason
            self.stop_code = code
            self.stopping_at = self.stopped_at = _dt(at)
            for container in self.containers:
                container.last_status = "STOPPED"

    return ServiceTask


_ServiceTask: type | None = None


def _new_task(backend: Any, service: Any, deployment: dict[str, Any], task_id: str,
              at: float) -> Any:
    global _ServiceTask
    if _ServiceTask is None:
        _ServiceTask = _task_class()
    definition = backend.describe_task_definition(deployment["taskDefinition"])
    task = _ServiceTask(backend, service, definition, task_id, deployment["id"], at)
    backend.tasks.setdefault(service.cluster_name, {})[task.task_arn] = task
    _state(service)["tasks"].append(task)
    return task


def _forget_old_stopped(backend: Any, service: Any) -> None:
    tasks = _state(service)["tasks"]
    stopped = [t for t in tasks if t.last_status == "STOPPED"]
    for task in stopped[:-STOPPED_TASKS_KEPT] if len(stopped) > STOPPED_TASKS_KEPT else []:
        tasks.remove(task)
        backend.tasks.get(service.cluster_name, {}).pop(task.task_arn, None)


def _running_tasks(service: Any, deployment_id: str | None = None) -> list[Any]:
    return [t for t in _state(service)["tasks"] if t.last_status == "RUNNING"
            and (deployment_id is None or t.started_by == deployment_id)]


def _stop_running(backend: Any, service: Any, deployment_id: str | None, count: int,
                  at: float, reason: str) -> None:
    for task in _running_tasks(service, deployment_id)[:count] if count else []:
        task.stop(at, reason, "ServiceSchedulerInitiated")
    _forget_old_stopped(backend, service)


# ---- targets -----------------------------------------------------------------


def task_ip(task_arn: str) -> str:
    digest = hashlib.sha256(task_arn.encode()).digest()
    return f"10.{200 + digest[0] % 50}.{digest[1]}.{1 + digest[2] % 254}"


def register_service_targets(backend: Any, service: Any) -> None:
    """One ip target per RUNNING task in the service's target groups, as Fargate
    registers them (healthy at once in moto); other targets deregistered."""
    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    running = _running_tasks(service) if service.status == "ACTIVE" else []
    for lb in service.load_balancers or []:
        arn = lb.get("targetGroupArn")
        group = elbv2.target_groups.get(arn) if arn else None
        if group is None:
            continue
        wanted = {task_ip(t.task_arn): {"Id": task_ip(t.task_arn),
                                        "Port": lb.get("containerPort", 80)} for t in running}
        stale = [{"Id": t} for t in group.targets if t not in wanted]
        if stale:
            group.deregister(stale)
        new = [target for ip, target in wanted.items() if ip not in group.targets]
        if new:
            group.register(new)


# ---- secrets -----------------------------------------------------------------

_ASM = re.compile(r"^arn:(aws[\w-]*):secretsmanager:([\w-]+):(\d{12}):secret:(.+)$")
_SSM = re.compile(r"^arn:(aws[\w-]*):ssm:([\w-]+):(\d{12}):parameter(/.+)$")
_ASM_PREFIX = ("ResourceInitializationError: unable to pull secrets or registry auth: "
               "execution resource retrieval failed: unable to retrieve secret from asm: "
               "service call has been retried 1 time(s): ")
_SSM_PREFIX = ("ResourceInitializationError: unable to pull secrets or registry auth: "
               "execution resource retrieval failed: unable to retrieve secrets from ssm: "
               "service call has been retried 1 time(s): ")


def _error_parts(error: Exception) -> tuple[str, str]:
    code = getattr(error, "error_type", None) or getattr(error, "code", None)
    if not isinstance(code, str):
        code = type(error).__name__
    message = getattr(error, "message", None) or str(error)
    return code, " ".join(str(message).split())


def _iam_denial(account: str, role_arn: str | None, action: str, resource: str) -> str | None:
    """AccessDenied text when stack/iam_enforce.py's evaluator refuses the
    execution role `action` on `resource` (None: allowed or no evaluator)."""
    try:
        from .. import iam_enforce

        role_by_arn, role_policies = iam_enforce.role_by_arn, iam_enforce.role_policies
        evaluate = iam_enforce.evaluate
    except Exception:  # no evaluator: secrets are checked for existence only
        return None
    if not role_arn:
        return None
    try:
        found = role_by_arn(role_arn)
        # The execution role's identity policies (a missing role has none).
        policies = role_policies(found) if found is not None else []
        context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": account,
                   "aws:PrincipalType": "AssumedRole"}
        if evaluate(policies, action, resource, context).allowed:
            return None
    except Exception as e:  # an evaluator error must not stop the emulator
        print(f"[ecs_startup] iam_enforce could not evaluate {action} for {role_arn}: {e!r}",
              flush=True)
        return None
    role = role_arn.rsplit("/", 1)[-1]
    return (f"User: arn:aws:sts::{account}:assumed-role/{role}/{uuid.uuid4().hex} is not "
            f"authorized to perform: {action} on resource: {resource} because no "
            f"identity-based policy allows the {action} action")


def _secret_problem(value_from: str, account: str, region: str,
                    execution_role: str | None, at: float | None = None) -> str | None:
    """Why a task launched at `at` cannot fetch `value_from` (None: it can), in
    Fargate's words.  A task fetches its secrets while it starts: a secret
    created after the launch began does not exist for it (moto's CreatedDate
    has one-second resolution, so the create time is kept precisely, see
    install())."""
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.ssm.models import ssm_backends

    request_id = str(uuid.uuid4())
    asm = _ASM.match(value_from)
    if asm:
        partition, s_region, s_account, rest = asm.groups()
        secret_id, *tail = rest.split(":")
        json_key = tail[0] if tail and tail[0] else None
        stage = tail[1] if len(tail) > 1 and tail[1] else None
        version = tail[2] if len(tail) > 2 and tail[2] else None
        arn = f"arn:{partition}:secretsmanager:{s_region}:{s_account}:secret:{secret_id}"
        # IAM authorises an existing secret by its full ARN (with the random
        # suffix); a missing one by the ARN asked for, or as it would be once
        # created (a policy ending "-*" or "-??????" allows the task then, and
        # the task sees ResourceNotFoundException, not AccessDenied).
        try:
            existing = secretsmanager_backends[s_account][s_region].secrets.get(arn)
        except Exception:
            existing = None
        if existing is not None and at is not None \
                and getattr(existing, "_stepdeploy_created", 0.0) > at:
            return (f"{_ASM_PREFIX}failed to fetch secret {arn} from secrets manager: "
                    f"ResourceNotFoundException: Secrets Manager can't find the specified "
                    f"secret. status code: 400, request id: {request_id}")
        candidates = [existing.arn] if existing is not None else [arn, f"{arn}-AbCdEf"]
        denials = [_iam_denial(account, execution_role, "secretsmanager:GetSecretValue", c)
                   for c in candidates]
        denied = denials[0] if all(denials) else None
        if denied:
            return (f"{_ASM_PREFIX}failed to fetch secret {arn} from secrets manager: "
                    f"AccessDeniedException: {denied} status code: 400, request id: {request_id}")
        try:
            value = secretsmanager_backends[s_account][s_region].get_secret_value(
                arn, version, stage)
        except Exception as e:  # moto raises the service's own errors
            code, message = _error_parts(e)
            return (f"{_ASM_PREFIX}failed to fetch secret {arn} from secrets manager: "
                    f"{code}: {message} status code: 400, request id: {request_id}")
        if json_key is not None:
            try:
                document = json.loads(value.get("SecretString") or "")
            except ValueError:
                document = None
            if not isinstance(document, dict) or json_key not in document:
                return (f"{_ASM_PREFIX}retrieved secret from Secrets Manager did not contain "
                        f"json key {json_key}")
        return None
    ssm = _SSM.match(value_from)
    if ssm:
        partition, p_region, p_account, name = ssm.groups()
        arn = value_from
    elif value_from.startswith("arn:"):
        return f"{_SSM_PREFIX}invalid ssm parameters: {value_from}"
    else:
        partition, p_region, p_account = "aws", region, account
        name = value_from if value_from.startswith("/") else value_from
        arn = f"arn:aws:ssm:{region}:{account}:parameter/{value_from.lstrip('/')}"
    denied = _iam_denial(account, execution_role, "ssm:GetParameters", arn)
    if denied:
        return (f"{_SSM_PREFIX}AccessDeniedException: {denied} status code: 400, "
                f"request id: {request_id}")
    backend = ssm_backends[p_account][p_region]
    try:
        found = backend.get_parameter(name)
    except Exception:
        found = None
    if found is None and not name.startswith("/"):
        try:
            found = backend.get_parameter("/" + name)
        except Exception:
            found = None
    if found is None:
        return f"{_SSM_PREFIX}invalid ssm parameters: {name}"
    return None


def secret_references(definition: Any) -> list[str]:
    """Every secret a task of `definition` fetches before it starts."""
    refs: list[str] = []
    for container in definition.container_definitions or []:
        for secret in container.get("secrets") or []:
            if secret.get("valueFrom"):
                refs.append(secret["valueFrom"])
        for option in (container.get("logConfiguration") or {}).get("secretOptions") or []:
            if option.get("valueFrom"):
                refs.append(option["valueFrom"])
        credentials = (container.get("repositoryCredentials") or {}).get("credentialsParameter")
        if credentials:
            refs.append(credentials)
    return refs


def startup_failure(backend: Any, deployment: dict[str, Any],
                    at: float | None = None) -> str | None:
    """The stoppedReason of this deployment's tasks (launched at `at`) if they cannot start."""
    definition = backend.describe_task_definition(deployment["taskDefinition"])
    role = getattr(definition, "execution_role_arn", None)
    for ref in secret_references(definition):
        problem = _secret_problem(ref, backend.account_id, backend.region_name, role, at)
        if problem:
            return problem
    return None


# ---- the service scheduler -------------------------------------------------


def _primary(service: Any) -> dict[str, Any] | None:
    return next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)


def _sync_counts(service: Any) -> None:
    service.running_count = sum(d.get("runningCount", 0) for d in service.deployments)
    service.pending_count = sum(d.get("pendingCount", 0) for d in service.deployments)


def _backoff(failures: int) -> float:
    if Settings.backoff_seconds <= 0:
        return 0.0
    return min(Settings.backoff_seconds * 2 ** max(failures - 1, 0), ECS_BACKOFF_CAP_SECONDS)


def _schedule(service: Any, deployment: dict[str, Any], start: float, failures: int = 0) -> None:
    missing = deployment["desiredCount"] - deployment["runningCount"]
    _state(service)["launch"] = Launch(deployment["id"], missing, start, failures) \
        if missing > 0 else None


def start_deployment(backend: Any, service: Any, now: float) -> None:
    """A new PRIMARY deployment of the service's task definition."""
    deployment_id = _deployment_id()
    _cancel_launch(service, now, f"Scaling activity initiated by (deployment {deployment_id})")
    old = []
    for deployment in service.deployments:
        if deployment.get("runningCount", 0) > 0:
            deployment["status"] = "ACTIVE"
            deployment["updatedAt"] = _dt(now)
            old.append(deployment)
    network = getattr(service, "network_configuration", None) or None
    primary = {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": _dt(now),
        "updatedAt": _dt(now),
        "launchType": service.launch_type,
        "platformVersion": service.platform_version or "LATEST",
        "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
        "networkConfiguration": network,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }
    service.deployments = [primary, *old]
    _schedule(service, primary, now)
    if service.desired_count == 0:
        _complete(backend, service, primary, now)


def _cancel_launch(service: Any, at: float, reason: str) -> None:
    """Stop the tasks of the launch under way, if any (they never started)."""
    launch = _state(service)["launch"]
    if launch is None:
        return
    for task in [t for t in _state(service)["tasks"] if t.id in set(launch.task_ids)]:
        if task.last_status != "STOPPED":
            task.stop(at, reason, "ServiceSchedulerInitiated")
    for deployment in service.deployments:
        if deployment["id"] == launch.deployment_id:
            deployment["pendingCount"] = 0
    _state(service)["launch"] = None


def _complete(backend: Any, service: Any, primary: dict[str, Any], at: float) -> None:
    for deployment in list(service.deployments):
        if deployment is not primary:
            _stop_running(backend, service, deployment["id"], deployment.get("runningCount", 0),
                          at, f"Scaling activity initiated by (deployment {primary['id']})")
            service.deployments.remove(deployment)
    if primary["rolloutState"] != "COMPLETED":
        primary["rolloutState"] = "COMPLETED"
        primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
        primary["updatedAt"] = _dt(at)
        _event(service, at, f"(service {service.name}) (deployment {primary['id']}) "
                            "deployment completed.")
    _event(service, at, f"(service {service.name}) has reached a steady state.")


def advance(backend: Any, service: Any, now: float | None = None) -> None:
    """Bring the service's launches up to `now` (see the module docstring)."""
    now = time.time() if now is None else now
    state = _state(service)
    changed = False
    steps = 0
    while state["launch"] is not None and service.status == "ACTIVE":
        launch: Launch = state["launch"]
        deployment = next((d for d in service.deployments
                           if d["id"] == launch.deployment_id), None)
        if deployment is None:
            state["launch"] = None
            break
        if not launch.announced and now >= launch.start:
            for task_id in launch.task_ids:
                _new_task(backend, service, deployment, task_id, launch.start)
            launch.announced = True
            deployment["pendingCount"] = launch.count
            _event(service, launch.start,
                   f"(service {service.name}) has started {launch.count} tasks: "
                   + " ".join(f"(task {t})" for t in launch.task_ids) + ".")
            changed = True
        if now < launch.due:
            break
        steps += 1
        launched = [t for t in _state(service)["tasks"] if t.id in set(launch.task_ids)]
        reason = startup_failure(backend, deployment, launch.start)
        deployment["pendingCount"] = 0
        deployment["updatedAt"] = _dt(launch.due)
        changed = True
        if reason:
            for task in launched:
                task.stop(launch.due, reason, "TaskFailedToStart")
            _forget_old_stopped(backend, service)
            deployment["failedTasks"] = deployment.get("failedTasks", 0) + launch.count
            failures = launch.failures + 1
            if failures == IMPAIRED_AFTER_FAILURES:
                _event(service, launch.due,
                       f"(service {service.name}) is unable to consistently start tasks "
                       "successfully. For more information, see the Troubleshooting section "
                       "of the Amazon ECS Developer Guide.")
            cycle = max(_backoff(failures) + Settings.startup_seconds, MIN_CYCLE_SECONDS)
            start = launch.due + cycle - Settings.startup_seconds
            if steps > 1000 and now - launch.due > cycle:
                # Long unobserved: skip ahead (same outcome, fewer stopped tasks).
                skipped = int((now - launch.due) // cycle)
                deployment["failedTasks"] += skipped * launch.count
                failures += skipped
                start += skipped * cycle
            _schedule(service, deployment, start, failures)
            continue
        for task in launched:
            task.run(launch.due)
        deployment["runningCount"] = deployment.get("runningCount", 0) + launch.count
        state["launch"] = None
        if service.load_balancers:
            for lb in service.load_balancers:
                if lb.get("targetGroupArn"):
                    _event(service, launch.due,
                           f"(service {service.name}) registered {launch.count} targets in "
                           f"(target-group {lb['targetGroupArn']})")
        if deployment.get("status") == "PRIMARY":
            _complete(backend, service, deployment, launch.due)
    if changed:
        _sync_counts(service)
        register_service_targets(backend, service)


def _resolve_task_definition(backend: Any, service: Any) -> None:
    if service.task_definition and not service.task_definition.startswith("arn:"):
        service.task_definition = backend.describe_task_definition(service.task_definition).arn


def scale(backend: Any, service: Any, now: float) -> None:
    """desiredCount changed without a new deployment."""
    primary = _primary(service)
    if primary is None:
        start_deployment(backend, service, now)
        return
    primary["desiredCount"] = service.desired_count
    primary["updatedAt"] = _dt(now)
    launch = _state(service)["launch"]
    surplus = primary["runningCount"] - service.desired_count
    if surplus > 0:
        _stop_running(backend, service, primary["id"], surplus, now,
                      f"Scaling activity initiated by (deployment {primary['id']})")
        primary["runningCount"] = service.desired_count
    missing = service.desired_count - primary["runningCount"]
    if launch is not None and launch.count != missing:
        # Tasks being started for another count: stop them, start the count now missing
        # (coarse: the new attempt takes the whole start-up delay again).
        _cancel_launch(service, now, f"Scaling activity initiated by (deployment {primary['id']})")
        if missing > 0:
            _schedule(service, primary, now, launch.failures)
    elif launch is None and missing > 0:
        _schedule(service, primary, now)
    if _state(service)["launch"] is None and primary["rolloutState"] == "IN_PROGRESS" \
            and primary["runningCount"] >= service.desired_count:
        _complete(backend, service, primary, now)
    _sync_counts(service)
    register_service_targets(backend, service)


def _cluster_counts(backend: Any, service: Any) -> tuple[Any, int, int]:
    cluster = backend.clusters.get(service.cluster_name)
    return cluster, service.running_count, service.pending_count


def _fix_cluster(cluster: Any, running: int, pending: int, before: tuple[int, int],
                 service: Any) -> None:
    """The cluster's task counters move by the service's change only."""
    if cluster is None:
        return
    cluster.running_tasks_count = max(running - before[0] + service.running_count, 0)
    cluster.pending_tasks_count = max(pending - before[1] + service.pending_count, 0)


def install() -> str:
    """Patch moto's ECS backend (see the module docstring)."""
    from moto.ecs.exceptions import EcsClientException
    from moto.ecs.models import EC2ContainerServiceBackend

    Settings.load()
    from moto.secretsmanager.models import SecretsManagerBackend

    original_create_secret = SecretsManagerBackend.create_secret

    def create_secret(self, *args, **kwargs):
        result = original_create_secret(self, *args, **kwargs)
        name = kwargs.get("name", args[0] if args else None)
        try:
            secret = self.secrets[name]
            if not hasattr(secret, "_stepdeploy_created"):
                secret._stepdeploy_created = time.time()
        except Exception:  # noqa: BLE001 - only the precise create time is lost
            pass
        return result

    SecretsManagerBackend.create_secret = create_secret
    original_register = EC2ContainerServiceBackend.register_task_definition
    original_create = EC2ContainerServiceBackend.create_service
    original_update = EC2ContainerServiceBackend.update_service
    original_describe = EC2ContainerServiceBackend.describe_services
    original_delete = EC2ContainerServiceBackend.delete_service
    original_list_tasks = EC2ContainerServiceBackend.list_tasks
    original_describe_tasks = EC2ContainerServiceBackend.describe_tasks

    def create_service(self, cluster_str, *args, **kwargs):
        with _lock:
            cluster = self._get_cluster(cluster_str)
            running, pending = cluster.running_tasks_count, cluster.pending_tasks_count
            service = original_create(self, cluster_str, *args, **kwargs)
            _resolve_task_definition(self, service)
            service.running_count = service.pending_count = 0
            service.deployments = []
            service.events = []
            _state(service)
            start_deployment(self, service, time.time())
            _sync_counts(service)
            _fix_cluster(cluster, running, pending, (0, 0), service)
            return service

    def update_service(self, service_properties):
        with _lock:
            props = dict(service_properties)
            cluster = self._get_cluster(props.get("cluster", "default"))
            before = self._get_service(cluster.name,
                                       str(props.get("service", "")).split("/")[-1])
            now = time.time()
            _advance_counted(self, before)
            running, pending = cluster.running_tasks_count, cluster.pending_tasks_count
            counts = (before.running_count, before.pending_count)
            # Copies: moto's forceNewDeployment rewrites the first deployment in place.
            deployments = [dict(d) for d in before.deployments]
            old_task_definition = before.task_definition
            service = original_update(self, service_properties)
            service.deployments = deployments  # moto's force_new_deployment edits them
            if props.get("task_definition"):
                new_arn = self.describe_task_definition(props["task_definition"]).arn
            else:
                new_arn = old_task_definition
            service.task_definition = new_arn
            new_deployment = bool(
                new_arn != old_task_definition
                or props.get("force_new_deployment")
                or props.get("network_configuration")
                or props.get("load_balancers")
                or props.get("platform_version")
            )
            if new_deployment:
                start_deployment(self, service, now)
            else:
                scale(self, service, now)
            _sync_counts(service)
            register_service_targets(self, service)
            _fix_cluster(cluster, running, pending, counts, service)
            return service

    def describe_services(self, cluster_str, service_names_or_arns):
        with _lock:
            services, failures = original_describe(self, cluster_str, service_names_or_arns)
            for service in services:
                _advance_counted(self, service)
            return services, failures

    def delete_service(self, cluster_name, service_name, force):
        with _lock:
            service = self._get_service(cluster_name, service_name)
            advance(self, service)
            deleted = original_delete(self, cluster_name, service_name, force)
            now = time.time()
            reason = f"Service {deleted.name} deleted"
            _cancel_launch(deleted, now, reason)
            for deployment in deleted.deployments:
                _stop_running(self, deleted, deployment["id"], deployment.get("runningCount", 0),
                              now, reason)
                deployment["runningCount"] = deployment["pendingCount"] = 0
            # moto's delete_service already took the service's tasks off the cluster's counts.
            _sync_counts(deleted)
            register_service_targets(self, deleted)
            return deleted

    def _advance_all(backend: Any) -> None:
        for service in list(backend.services.values()):
            if _state(service)["launch"] is not None:
                _advance_counted(backend, service)

    def list_tasks(self, cluster_str=None, container_instance=None, family=None,
                   started_by=None, service_name=None, desiredStatus=None):
        with _lock:
            _advance_all(self)
            tasks = original_list_tasks(self, cluster_str, container_instance, family,
                                        started_by, None, desiredStatus)
            if service_name:
                name = service_name.split("/")[-1]
                tasks = [t for t in tasks if getattr(t, "group", "") == f"service:{name}"]
            return tasks

    def describe_tasks(self, cluster_str, tasks):
        with _lock:
            _advance_all(self)
            return original_describe_tasks(self, cluster_str, tasks)

    def register_task_definition(self, family, container_definitions, *args, **kwargs):
        # AWS refuses container secrets without an execution role to fetch them.
        uses_secrets = any((c.get("secrets") or (c.get("logConfiguration") or {}).get(
            "secretOptions") or c.get("repositoryCredentials"))
            for c in container_definitions or [])
        if uses_secrets and not kwargs.get("execution_role_arn"):
            raise EcsClientException(
                "When you are specifying container secrets, you must also specify a value for "
                "'executionRoleArn'.")
        return original_register(self, family, container_definitions, *args, **kwargs)

    EC2ContainerServiceBackend.register_task_definition = register_task_definition
    EC2ContainerServiceBackend.create_service = create_service
    EC2ContainerServiceBackend.update_service = update_service
    EC2ContainerServiceBackend.describe_services = describe_services
    EC2ContainerServiceBackend.delete_service = delete_service
    EC2ContainerServiceBackend.list_tasks = list_tasks
    EC2ContainerServiceBackend.describe_tasks = describe_tasks
    return (f"ecs services start after {Settings.startup_seconds:g} s "
            "(STEPDEPLOY_LOCAL_ECS_STARTUP_SECONDS), if their secrets resolve; failed launches "
            f"relaunch after {Settings.backoff_seconds:g} s back-off "
            "(STEPDEPLOY_LOCAL_ECS_BACKOFF_SECONDS, doubling, cap "
            f"{ECS_BACKOFF_CAP_SECONDS:g} s); one ip target per running task")


def _advance_counted(backend: Any, service: Any) -> None:
    cluster, running, pending = _cluster_counts(backend, service)
    before = (service.running_count, service.pending_count)
    if cluster is not None:
        running, pending = cluster.running_tasks_count, cluster.pending_tasks_count
    advance(backend, service)
    _fix_cluster(cluster, running, pending, before, service)
