"""AWS quotas the pipeline can reach, refused on the local stack as AWS refuses them.

moto gap: moto checks none of these quotas.  Checked against moto 5.2.5
(the pinned release, the newest on PyPI): gap still there (ELBv2's
create_rule has "TODO: check for error 'TooManyRules'", IAM lists the 10,240
quota in GetAccountSummary only, SNS raises a bare ValueError for a subject
over 100 characters).  Covered by test_quotas.py.

Each check patches one moto backend method and raises the error AWS answers,
with AWS's own code (the HTTP status comes from the service's error model,
as moto serialises a ServiceException):

* Target groups per Application Load Balancer: 100, hard (ELB, "Quotas for
  your Application Load Balancers").  elbv2 CreateRule, ModifyRule,
  CreateListener, ModifyListener giving a load balancer its 101st unique
  target group (across all its listeners' rules and default actions):
  400 TooManyUniqueTargetGroupsPerLoadBalancer.
* Rules per Application Load Balancer, not counting default rules: 100
  (same page; adjustable).  elbv2 CreateRule of the 101st: 400 TooManyRules.
  AWS counts rules per load balancer (all listeners), so does this.
* Role policy size: the inline policies of one role together, 10,240
  characters, white space not counted ("IAM and AWS STS quotas"; hard).
  iam PutRolePolicy: 409 LimitExceeded "Maximum policy size of 10240 bytes
  exceeded for role NAME".
* SNS Publish Subject (API reference, Publish): ASCII, begins with a letter,
  number or punctuation mark, no line breaks or control characters, "less
  than 100 characters".  sns Publish (also from Step Functions tasks):
  400 InvalidParameter "Invalid parameter: Subject".
* Environment variables: 4 KB, all of a function's, measured as their JSON
  ("Lambda quotas"; hard).  lambda CreateFunction, UpdateFunctionConfiguration:
  400 InvalidParameterValueException "Lambda was unable to configure your
  environment variables because the environment variables you have provided
  exceeded the 4KB limit. String measured: {...}".
* Execution history: 25,000 events in a single execution history ("Step
  Functions service quotas"; hard).  The execution FAILS: event 25,000 is
  ExecutionFailed, error States.Runtime, cause "The execution reached the
  maximum number of history events (25000)."

Sources: the error codes are those of the services' API models (botocore's
ELBv2/IAM/SNS/Lambda exception shapes); the IAM, Lambda and Step Functions
messages are the ones AWS answers (quoted in public bug reports: CloudFormation
"Maximum policy size of 10240 bytes exceeded for role ...", Lambda's "String
measured: ..." message, the States.Runtime failure event whose id is 25000).
The ELBv2 messages (AWS documents only the codes) follow the shape of ELBv2's
TooManyTargets message ("The maximum number of targets per load balancer
'2000' has been reached on load balancer 'arn'"): best knowledge, not a copy.
SNS: AWS documents "less than 100 characters"; public reports (moto issue
#1503) say AWS in fact accepts exactly 100.  The documented rule is enforced
(99 accepted, 100 refused): stricter than AWS never lets a defect through.

* EventBridge PutEvents Detail (PutEventsRequestEntry): "A valid JSON
  object"; a JSON string, array or number fails that entry with
  MalformedDetail "Detail is malformed." (the others are put).

Not modelled (not reachable by the pipeline, or not checked here): target
groups per action (5), certificates per ALB, managed-policy size (6,144),
trust-policy size (2,048), the SNS message size, Step Functions payload size
(moto already checks 256 KB), SNS PublishBatch subjects.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable

# ELB "Quotas for your Application Load Balancers": "Target groups per
# Application Load Balancer" (hard quota).
ALB_TARGET_GROUPS_PER_LOAD_BALANCER = 100
# Same page: "Rules per Application Load Balancer" (not counting default rules;
# adjustable, the default is 100).
ALB_RULES_PER_LOAD_BALANCER = 100
# "IAM and AWS STS quotas": "Role policy size" - the inline policies of one
# role together, in characters, "IAM doesn't count white space" (hard).
IAM_ROLE_INLINE_POLICY_CHARS = 10_240
# SNS API reference, Publish, Subject: "must be less than 100 characters long".
SNS_SUBJECT_MAX_CHARS = 99
# "Lambda quotas": "Environment variables: 4 KB" (all of a function's, hard).
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024
# "Step Functions service quotas": "Execution history: 25,000 events in a
# single state machine execution history" (hard; the execution fails).
SFN_EXECUTION_HISTORY_EVENTS = 25_000


def _service_exception(service: str, code: str, message: str) -> Exception:
    """The service's own moto exception class, so moto serialises it with the
    service's error model (HTTP status, protocol shape)."""
    if service == "elbv2":
        from moto.elbv2.exceptions import ELBClientError as base
    elif service == "iam":
        from moto.iam.exceptions import IAMException as base
    else:
        from moto.sns.exceptions import SNSException as base
    return base(code, message)


# ---- ELBv2 -----------------------------------------------------------------


def _target_groups_of(backend: Any, actions: list[Any]) -> set[str]:
    found: set[str] = set()
    for action in actions or []:
        data = getattr(action, "data", action)
        if isinstance(data, dict) and data.get("Type") == "forward":
            found.update(backend._get_target_group_arns_from(action_data=data))
    return found


def _load_balancer_usage(backend: Any, lb_arn: str, skip_rule: str | None = None,
                         skip_listener_default: str | None = None) -> tuple[int, set[str]]:
    """(rules not counting default rules, unique target groups) of a load balancer,
    leaving out one rule or one listener's default actions (the ones being replaced)."""
    balancer = backend.load_balancers.get(lb_arn)
    rules, groups = 0, set()
    if balancer is None:
        return rules, groups
    for listener in balancer.listeners.values():
        for arn, rule in listener._non_default_rules.items():
            rules += 1
            if arn != skip_rule:
                groups |= _target_groups_of(backend, rule.actions)
        if listener.arn != skip_listener_default:
            groups |= _target_groups_of(backend, listener.default_actions)
    return rules, groups


def _too_many_target_groups(lb_arn: str) -> Exception:
    return _service_exception(
        "elbv2", "TooManyUniqueTargetGroupsPerLoadBalancer",
        f"The maximum number of unique target groups per load balancer "
        f"'{ALB_TARGET_GROUPS_PER_LOAD_BALANCER}' has been reached on load balancer "
        f"'{lb_arn}'")


def _check_target_groups(backend: Any, lb_arn: str, existing: set[str],
                         adding: set[str]) -> None:
    if not adding - existing:
        return
    if len(existing | adding) > ALB_TARGET_GROUPS_PER_LOAD_BALANCER:
        raise _too_many_target_groups(lb_arn)


def _listener(backend: Any, listener_arn: str) -> Any:
    for balancer in backend.load_balancers.values():
        listener = balancer.listeners.get(listener_arn)
        if listener is not None:
            return listener
    return None


def patch_elbv2() -> str:
    from moto.elbv2.models import ELBv2Backend

    original_create_rule = ELBv2Backend.create_rule
    original_modify_rule = ELBv2Backend.modify_rule
    original_create_listener = ELBv2Backend.create_listener
    original_modify_listener = ELBv2Backend.modify_listener

    def create_rule(self, listener_arn, conditions, priority, actions, tags=None):
        listener = _listener(self, listener_arn)
        if listener is not None:
            lb_arn = listener.load_balancer_arn
            rules, groups = _load_balancer_usage(self, lb_arn)
            if rules >= ALB_RULES_PER_LOAD_BALANCER:
                raise _service_exception(
                    "elbv2", "TooManyRules",
                    f"The maximum number of rules on load balancer '{lb_arn}' has been "
                    f"reached (limit '{ALB_RULES_PER_LOAD_BALANCER}', not counting "
                    "default rules)")
            _check_target_groups(self, lb_arn, groups, _target_groups_of(
                self, list(actions or [])))
        return original_create_rule(self, listener_arn, conditions, priority, actions, tags)

    def modify_rule(self, rule_arn, conditions, actions):
        if actions:
            for balancer in self.load_balancers.values():
                for listener in balancer.listeners.values():
                    if rule_arn in listener._non_default_rules:
                        _, groups = _load_balancer_usage(self, balancer.arn, skip_rule=rule_arn)
                        _check_target_groups(self, balancer.arn, groups, _target_groups_of(
                            self, list(actions)))
        return original_modify_rule(self, rule_arn, conditions, actions)

    def create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate,
                        actions, alpn_policy=None, tags=None):
        if load_balancer_arn in self.load_balancers:
            _, groups = _load_balancer_usage(self, load_balancer_arn)
            _check_target_groups(self, load_balancer_arn, groups, _target_groups_of(
                self, list(actions or [])))
        return original_create_listener(self, load_balancer_arn, protocol, port, ssl_policy,
                                         certificate, actions, alpn_policy, tags)

    def modify_listener(self, arn, port=None, protocol=None, ssl_policy=None,
                        certificates=None, actions=None):
        listener = _listener(self, arn)
        if listener is not None and actions:
            lb_arn = listener.load_balancer_arn
            _, groups = _load_balancer_usage(self, lb_arn, skip_listener_default=arn)
            _check_target_groups(self, lb_arn, groups, _target_groups_of(
                self, list(actions)))
        return original_modify_listener(self, arn, port, protocol, ssl_policy, certificates,
                                        actions)

    ELBv2Backend.create_rule = create_rule
    ELBv2Backend.modify_rule = modify_rule
    ELBv2Backend.create_listener = create_listener
    ELBv2Backend.modify_listener = modify_listener
    return (f"elbv2: {ALB_RULES_PER_LOAD_BALANCER} rules (TooManyRules), "
            f"{ALB_TARGET_GROUPS_PER_LOAD_BALANCER} unique target groups "
            "(TooManyUniqueTargetGroupsPerLoadBalancer) per load balancer")


# ---- IAM -------------------------------------------------------------------


def policy_chars(document: Any) -> int:
    """A policy's size as IAM counts it against the quota: characters, white space not counted."""
    text = document if isinstance(document, str) else json.dumps(document)
    return len(re.sub(r"\s+", "", text))


def patch_iam() -> str:
    from moto.iam.models import IAMBackend

    original = IAMBackend.put_role_policy

    def put_role_policy(self, role_name, policy_name, policy_json):
        role = self.get_role(role_name)
        others = sum(policy_chars(doc) for name, doc in role.policies.items()
                     if name != policy_name)
        if others + policy_chars(policy_json) > IAM_ROLE_INLINE_POLICY_CHARS:
            raise _service_exception(
                "iam", "LimitExceeded",
                f"Maximum policy size of {IAM_ROLE_INLINE_POLICY_CHARS} bytes exceeded for "
                f"role {role.name}")
        return original(self, role_name, policy_name, policy_json)

    IAMBackend.put_role_policy = put_role_policy
    return (f"iam PutRolePolicy: inline policies of a role <= {IAM_ROLE_INLINE_POLICY_CHARS} "
            "characters without white space (LimitExceeded)")


# ---- SNS -------------------------------------------------------------------


def subject_error(subject: str | None) -> str | None:
    """Why SNS refuses this Publish Subject (None: accepted)."""
    if subject is None:
        return None
    if subject == "":
        return "empty"
    if not subject.isascii():
        return "not ASCII"
    if any(ord(c) < 32 or ord(c) == 127 for c in subject):
        return "a line break or control character"
    if not (subject[0].isalnum() or (33 <= ord(subject[0]) <= 126)):
        return "does not begin with a letter, number or punctuation mark"
    if len(subject) > SNS_SUBJECT_MAX_CHARS:
        return f"{len(subject)} characters (must be less than {SNS_SUBJECT_MAX_CHARS + 1})"
    return None


def patch_sns() -> str:
    from moto.sns.models import SNSBackend

    original = SNSBackend.publish

    def publish(self, message, arn, phone_number=None, subject=None, *args, **kwargs):
        if subject_error(subject):
            raise _service_exception("sns", "InvalidParameter", "Invalid parameter: Subject")
        return original(self, message, arn, phone_number, subject, *args, **kwargs)

    SNSBackend.publish = publish
    return (f"sns Publish: Subject ASCII, no control characters, <= {SNS_SUBJECT_MAX_CHARS} "
            "characters (InvalidParameter)")


# ---- Lambda ----------------------------------------------------------------


def environment_error(environment: Any) -> str | None:
    """Lambda's message when the variables exceed 4 KB (None: they fit)."""
    variables = (environment or {}).get("Variables") if isinstance(environment, dict) else None
    if not variables:
        return None
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode("utf-8")) <= LAMBDA_ENVIRONMENT_BYTES:
        return None
    return ("Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured}")


def patch_lambda() -> str:
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    original_create = LambdaBackend.create_function
    original_update = LambdaBackend.update_function_configuration

    def create_function(self, spec):
        message = environment_error(spec.get("Environment"))
        if message:
            raise InvalidParameterValueException(message)
        return original_create(self, spec)

    def update_function_configuration(self, function_name, qualifier, body):
        message = environment_error(body.get("Environment"))
        if message:
            raise InvalidParameterValueException(message)
        return original_update(self, function_name, qualifier, body)

    LambdaBackend.create_function = create_function
    LambdaBackend.update_function_configuration = update_function_configuration
    return (f"lambda CreateFunction/UpdateFunctionConfiguration: environment <= "
            f"{LAMBDA_ENVIRONMENT_BYTES} bytes (InvalidParameterValueException)")


# ---- Step Functions --------------------------------------------------------

HISTORY_CAUSE = (f"The execution reached the maximum number of history events "
                 f"({SFN_EXECUTION_HISTORY_EVENTS}).")


class HistoryLimitReached(Exception):
    """Raised into the interpreter when an execution's history is full."""


def patch_stepfunctions_history() -> str:
    """Fail an execution at its 25,000th history event, as AWS does.

    The parser's EventManager (moto/stepfunctions/parser/asl/eval/event/
    event_manager.py) numbers an execution's events.  When the next one
    would be the 25,000th and is not the execution's own end, the execution
    is set FAILED (States.Runtime, AWS's cause), the state being evaluated is
    interrupted (HistoryLimitReached, which no Catch sees: AWS's States.ALL
    does not catch States.Runtime either) and event 25,000 is ExecutionFailed.
    """
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    ends = {HistoryEventType.ExecutionFailed, HistoryEventType.ExecutionSucceeded,
            HistoryEventType.ExecutionAborted, HistoryEventType.ExecutionTimedOut}
    failure = ExecutionFailedEventDetails(error="States.Runtime", cause=HISTORY_CAUSE)
    original_add = EventManager.add_event
    original_init = Environment.__init__
    original_set_error = Environment.set_error
    lock = threading.Lock()

    def add_event(self, context, event_type, event_details=None, timestamp=None,
                  update_source_event_id=True):
        with lock:
            full = self.__dict__.get("_stepdeploy_history_full", False)
            if not full and event_type not in ends \
                    and self._event_id_gen._next_id >= SFN_EXECUTION_HISTORY_EVENTS:
                self._stepdeploy_history_full = full = True
                env = self.__dict__.get("_stepdeploy_env")
                if env is not None:
                    original_set_error(env, failure)
        if full:
            if event_type not in ends or self.__dict__.get("_stepdeploy_history_closed"):
                raise HistoryLimitReached(HISTORY_CAUSE)
            self._stepdeploy_history_closed = True
            return original_add(self, context, HistoryEventType.ExecutionFailed,
                                EventDetails(executionFailedEventDetails=failure), timestamp,
                                update_source_event_id)
        return original_add(self, context, event_type, event_details, timestamp,
                            update_source_event_id)

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        # The program's own environment (frames share its event manager later).
        self.event_manager.__dict__.setdefault("_stepdeploy_env", self)

    def set_error(self, error):
        if self.event_manager.__dict__.get("_stepdeploy_history_full"):
            error = failure
        return original_set_error(self, error)

    EventManager.add_event = add_event
    Environment.__init__ = init
    Environment.set_error = set_error
    return (f"stepfunctions: an execution fails at {SFN_EXECUTION_HISTORY_EVENTS} history "
            "events (States.Runtime)")


# ---- EventBridge -------------------------------------------------------------


def detail_error(detail: Any) -> bool:
    """Whether EventBridge refuses this Detail: it must be a JSON *object*."""
    if not detail:
        return False  # moto already answers InvalidArgument for a missing Detail
    try:
        return not isinstance(json.loads(detail), dict)
    except ValueError:
        return True


def patch_events() -> str:
    from moto.events.models import EventsBackend

    original = EventsBackend.put_events

    def put_events(self, events, *args, **kwargs):
        # PutEventsRequestEntry.Detail: "A valid JSON object"; AWS fails such an
        # entry with MalformedDetail (LocalStack's AWS-validated snapshot test).
        # moto accepts a JSON string or array, then fails matching rules with
        # an HTTP 500 the AWS CLI retries (five runs for one put).
        if len(events) > 10:
            return original(self, events, *args, **kwargs)  # moto's own ValidationException
        bad = [detail_error(e.get("Detail")) for e in events]
        good = [e for e, b in zip(events, bad) if not b]
        results = iter(original(self, good, *args, **kwargs) if good else [])
        return [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
                if b else next(results) for b in bad]

    EventsBackend.put_events = put_events
    return "events PutEvents: a Detail that is not a JSON object fails its entry (MalformedDetail)"


PATCHES: list[Callable[[], str]] = [
    patch_events,
    patch_elbv2,
    patch_iam,
    patch_sns,
    patch_lambda,
    patch_stepfunctions_history,
]


def install() -> str:
    """Apply every quota; one description per quota."""
    return "; ".join(f"{patch.__name__}: {patch()}" for patch in PATCHES)
