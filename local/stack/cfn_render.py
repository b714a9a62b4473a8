"""A small CloudFormation intrinsic-function resolver, for the local seed.

local/seed.py creates the IAM roles and policies of infra/template.yaml (the
orchestrator: function and state-machine roles, managed policies) and of
infra/target-account-role.yaml (every AWS::IAM::Role / AWS::IAM::Policy of
an environment account) from the templates themselves, with each stack's
parameter values, instead of a hand-written copy.

    render = Renderer(template, parameters={...}, account="111111111111",
                      region="eu-west-1", stack="stepdeploy-deploy-dev",
                      resolve_ref=..., resolve_getatt=...)
    render.resolve(template["Resources"]["DeployRole"]["Properties"])

Resolved: Ref (parameters, pseudo parameters AWS::Partition / Region /
AccountId / StackName / URLSuffix / NoValue, resources through the given
callbacks), Fn::Sub (both forms, ${Name}, ${Res.Attr}, ${!Literal}),
Fn::Join, Fn::Select, Fn::Split, Fn::If with Conditions (Fn::Equals, Fn::Not,
Fn::And, Fn::Or, Condition), Fn::GetAtt (both forms), Fn::GetAZs (empty),
Fn::ForEach (AWS::LanguageExtensions: the collection is resolved and the
fragment copied per value, &{Id} / ${Id} replaced), AWS::NoValue removal,
CommaDelimitedList and List<...> parameters as lists.  Anything else (e.g.
Fn::ImportValue, Fn::Transform) raises RenderError naming it.

The SAM transform (AWS::Serverless-2016-10-31) is not run: with an explicit
Role on every AWS::Serverless::Function / StateMachine, SAM adds no IAM
resource and leaves AWS::IAM::Role / ManagedPolicy resources as written; the
Ref / GetAtt values of the serverless resources are CloudFormation's (the
function's name / ARN, the state machine's ARN, <Function>Url.FunctionUrl),
supplied by `serverless_ref` / `serverless_getatt` below.  (aws-sam-translator
is not in local/.venv; CI's .ci/.venv-sam has it.)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable

NO_VALUE = object()


class RenderError(Exception):
    pass


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain dicts/lists (short-form tags expanded), via cfn-lint's decoder."""
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches or template is None:
        raise RenderError(f"{path} does not parse: " + "; ".join(str(m) for m in matches))
    return _plain(template)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


class Renderer:
    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], account: str,
                 region: str, stack: str,
                 resolve_ref: Callable[[str, dict[str, Any]], Any] | None = None,
                 resolve_getatt: Callable[[str, str, dict[str, Any]], Any] | None = None) -> None:
        self.template = template
        self.account, self.region, self.stack = account, region, stack
        self.resolve_ref = resolve_ref
        self.resolve_getatt = resolve_getatt
        self.parameters: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in parameters:
                value = parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise RenderError(f"parameter {name} has no value and no Default")
            kind = str(spec.get("Type", "String"))
            if (kind == "CommaDelimitedList" or kind.startswith("List<")) and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value != "" else []
            if kind == "Number":
                value = str(value)
            self.parameters[name] = value
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise RenderError(f"unknown parameter(s) {sorted(unknown)}")
        self.resources = self.expand_for_each(template.get("Resources") or {})
        self._conditions: dict[str, bool] = {}

    # -- pseudo parameters and refs ------------------------------------------

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account,
            "AWS::StackName": self.stack, "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack}/local",
            "AWS::NoValue": NO_VALUE, "AWS::NotificationARNs": [],
        }.get(name, None)

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            value = self.pseudo(name)
            if value is None:
                raise RenderError(f"pseudo parameter {name} is not modelled")
            return value
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources and self.resolve_ref is not None:
            return self.resolve_ref(name, self.resources[name])
        raise RenderError(f"Ref {name}: no such parameter or resource")

    def getatt(self, name: str, attr: str) -> Any:
        if name in self.resources and self.resolve_getatt is not None:
            return self.resolve_getatt(name, attr, self.resources[name])
        raise RenderError(f"Fn::GetAtt {name}.{attr}: no such resource")

    # -- conditions ------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise RenderError(f"condition {name} is not defined")
            self._conditions[name] = bool(self.evaluate_condition(spec))
        return self._conditions[name]

    def evaluate_condition(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b) if not isinstance(a, list) else a == b
            if key == "Fn::Not":
                return not self.evaluate_condition(arg[0])
            if key == "Fn::And":
                return all(self.evaluate_condition(x) for x in arg)
            if key == "Fn::Or":
                return any(self.evaluate_condition(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(node)

    # -- Fn::ForEach -----------------------------------------------------------

    def expand_for_each(self, resources: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, body in resources.items():
            if not name.startswith("Fn::ForEach::"):
                out[name] = body
                continue
            identifier, collection, fragment = body
            values = self.resolve(collection)
            for value in as_list(values):
                if value in ("", None):
                    continue
                for key, res in fragment.items():
                    key_name = key.replace(f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", str(value)))
                    key_name = key_name.replace(f"${{{identifier}}}", str(value))
                    out[key_name] = _substitute_identifier(copy.deepcopy(res), identifier, str(value))
        return out

    # -- resolution ------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        value = self._resolve(node)
        return None if value is NO_VALUE else value

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self._resolve(x) for x in node]
            return [x for x in items if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.getatt(name, self._resolve(attr))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                items = self._resolve(items)
                return str(self._resolve(sep)).join(str(x) for x in as_list(items))
            if key == "Fn::Select":
                index, items = self._resolve(arg[0]), self._resolve(arg[1])
                return as_list(items)[int(index)]
            if key == "Fn::Split":
                sep, text = self._resolve(arg[0]), self._resolve(arg[1])
                return str(text).split(str(sep))
            if key == "Fn::If":
                cond, yes, no = arg
                return self._resolve(yes if self.condition(cond) else no)
            if key == "Fn::GetAZs":
                return []
            if key.startswith("Fn::") and key not in ("Fn::ForEach",):
                raise RenderError(f"{key} is not modelled by local/stack/cfn_render.py")
        out = {}
        for k, v in node.items():
            r = self._resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                name, attr = inner.split(".", 1)
                return str(self.getatt(name, attr))
            value = self.ref(inner)
            if isinstance(value, list):
                raise RenderError(f"Fn::Sub ${{{inner}}} is a list")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _substitute_identifier(node: Any, identifier: str, value: str) -> Any:
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return value
        return {k: _substitute_identifier(v, identifier, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_identifier(v, identifier, value) for v in node]
    if isinstance(node, str):
        return node.replace(f"${{{identifier}}}", value).replace(f"&{{{identifier}}}", value)
    return node


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- IAM extraction


def iam_resources(render: Renderer) -> dict[str, Any]:
    """Every AWS::IAM::Role / ManagedPolicy / Policy of the template, resolved.

    {"roles": {logical id: {"name", "path", "trust", "policies": {name: doc},
                            "managed": [arn], "max_session": int|None}},
     "managed_policies": {logical id: {"name", "path", "document", "arn"}},
     "policies": {logical id: {"name", "document", "roles": [role names]}}}
    """
    out: dict[str, Any] = {"roles": {}, "managed_policies": {}, "policies": {}}
    for logical, res in render.resources.items():
        kind = res.get("Type")
        if "Condition" in res and not render.condition(res["Condition"]):
            continue
        if kind not in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            continue
        props = render.resolve(res.get("Properties") or {})
        if kind == "AWS::IAM::Role":
            out["roles"][logical] = {
                "name": role_name(render, logical, res),
                "path": props.get("Path", "/"),
                "trust": props["AssumeRolePolicyDocument"],
                "policies": {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])},
                "managed": list(props.get("ManagedPolicyArns", [])),
                "max_session": props.get("MaxSessionDuration"),
                "description": props.get("Description", ""),
            }
        elif kind == "AWS::IAM::ManagedPolicy":
            name = props.get("ManagedPolicyName") or f"{render.stack}-{logical}"
            path = props.get("Path", "/")
            out["managed_policies"][logical] = {
                "name": name, "path": path, "document": props["PolicyDocument"],
                "arn": f"arn:aws:iam::{render.account}:policy{path}{name}",
                "description": props.get("Description", ""),
            }
        else:
            out["policies"][logical] = {
                "name": props["PolicyName"], "document": props["PolicyDocument"],
                "roles": list(props.get("Roles", [])),
            }
    return out


def role_name(render: Renderer, logical: str, res: dict[str, Any]) -> str:
    """RoleName if the template sets one, else CloudFormation's <stack>-<logical id>
    (without the random suffix CloudFormation adds)."""
    given = (res.get("Properties") or {}).get("RoleName")
    if given is not None:
        return str(render.resolve(given))
    return f"{render.stack}-{logical}"[:64]


def role_arn(render: Renderer, logical: str, res: dict[str, Any]) -> str:
    path = render.resolve((res.get("Properties") or {}).get("Path", "/")) or "/"
    return f"arn:aws:iam::{render.account}:role{path}{role_name(render, logical, res)}"


def serverless_ref(render: Renderer, logical: str, res: dict[str, Any],
                   secret_arns: dict[str, str], extra: dict[str, str] | None = None) -> Any:
    """CloudFormation's Ref value of the orchestrator template's resources."""
    kind, props = res.get("Type"), res.get("Properties") or {}
    r, a = render.region, render.account
    name = lambda key: render.resolve(props.get(key)) if props.get(key) is not None else f"{render.stack}-{logical}"  # noqa: E731
    if extra and logical in extra:
        return extra[logical]
    if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return name("FunctionName")
    if kind == "AWS::Serverless::StateMachine":
        return f"arn:aws:states:{r}:{a}:stateMachine:{name('Name')}"
    if kind in ("AWS::Logs::LogGroup",):
        return name("LogGroupName")
    if kind == "AWS::DynamoDB::Table":
        return name("TableName")
    if kind == "AWS::SNS::Topic":
        return f"arn:aws:sns:{r}:{a}:{name('TopicName')}"
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{r}.amazonaws.com/{a}/{name('QueueName')}"
    if kind == "AWS::SecretsManager::Secret":
        secret = name("Name")
        if secret not in secret_arns:
            raise RenderError(f"Ref {logical}: secret {secret} must exist before the roles are rendered")
        return secret_arns[secret]
    if kind == "AWS::Events::EventBus":
        return name("Name")
    if kind == "AWS::Events::Rule":
        return name("Name")
    if kind == "AWS::IAM::ManagedPolicy":
        path = render.resolve(props.get("Path", "/")) or "/"
        policy = render.resolve(props["ManagedPolicyName"]) if "ManagedPolicyName" in props else f"{render.stack}-{logical}"
        return f"arn:aws:iam::{a}:policy{path}{policy}"
    if kind == "AWS::IAM::Role":
        return role_name(render, logical, res)
    if kind == "AWS::Serverless::LayerVersion":
        return f"arn:aws:lambda:{r}:{a}:layer:{name('LayerName')}:1"
    raise RenderError(f"Ref {logical} ({kind}) is not modelled by local/stack/cfn_render.py")


def serverless_getatt(render: Renderer, logical: str, attr: str, res: dict[str, Any],
                      function_url: Callable[[str], str] | None = None) -> Any:
    kind, props = res.get("Type"), res.get("Properties") or {}
    r, a = render.region, render.account
    ref = lambda: serverless_ref(render, logical, res, {})  # noqa: E731
    if attr == "Arn":
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:aws:lambda:{r}:{a}:function:{ref()}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{r}:{a}:log-group:{ref()}:*"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{r}:{a}:table/{ref()}"
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{r}:{a}:{ref().rsplit('/', 1)[-1]}"
        if kind == "AWS::Events::EventBus":
            return f"arn:aws:events:{r}:{a}:event-bus/{ref()}"
        if kind == "AWS::Events::Rule":
            bus = render.resolve(props.get("EventBusName", "default"))
            prefix = "" if bus in ("default", None) else f"{bus}/"
            return f"arn:aws:events:{r}:{a}:rule/{prefix}{ref()}"
        if kind == "AWS::IAM::Role":
            return role_arn(render, logical, res)
        if kind == "AWS::Serverless::StateMachine":
            return ref()
    if attr == "Name" and kind == "AWS::Serverless::StateMachine":
        return ref().rsplit(":", 1)[-1]
    if attr == "TopicName" and kind == "AWS::SNS::Topic":
        return ref().rsplit(":", 1)[-1]
    if attr == "QueueName" and kind == "AWS::SQS::Queue":
        return ref().rsplit("/", 1)[-1]
    raise RenderError(f"Fn::GetAtt {logical}.{attr} ({kind}) is not modelled by local/stack/cfn_render.py")


def orchestrator_renderer(template: dict[str, Any], account: str, region: str, stack: str,
                          parameters: dict[str, Any], secret_arns: dict[str, str],
                          function_urls: dict[str, str]) -> Renderer:
    """Renderer for infra/template.yaml; <Function>Url resources (SAM's) answer
    FunctionUrl from `function_urls` (function logical id -> URL)."""
    holder: dict[str, Renderer] = {}

    def resolve_ref(name: str, res: dict[str, Any]) -> Any:
        return serverless_ref(holder["r"], name, res, secret_arns)

    def resolve_getatt(name: str, attr: str, res: dict[str, Any]) -> Any:
        return serverless_getatt(holder["r"], name, attr, res)

    render = Renderer(template, parameters, account, region, stack, resolve_ref, resolve_getatt)
    for logical, res in list(render.resources.items()):
        if res.get("Type") == "AWS::Serverless::Function" and (res.get("Properties") or {}).get("FunctionUrlConfig"):
            render.resources[f"{logical}Url"] = {"Type": "AWS::Lambda::Url", "_url": function_urls.get(logical, "")}
    original = resolve_getatt

    def getatt_with_urls(name: str, attr: str, res: dict[str, Any]) -> Any:
        if res.get("Type") == "AWS::Lambda::Url" and attr == "FunctionUrl":
            return res.get("_url", "")
        return original(name, attr, res)

    render.resolve_getatt = getatt_with_urls
    holder["r"] = render
    return render
