#!/usr/bin/env python3
"""Offline consistency check of infra/*.yaml against the code (CI runs it after the lint).

Run with local/.venv/bin/python (it uses cfn-lint's YAML decoder, so the
short-form tags !Sub, !GetAtt ... parse, and cfn-lint's copy of the IAM
Service Authorization Reference). It asserts:

1. every ${Placeholder} in statemachines/*.asl.json is in the
   DefinitionSubstitutions of the state machine built from that file, and
   every substitution is used by it;
2. every function crate under functions/ (except shared) is built by a
   function of infra/template.yaml (Metadata.BuildProperties.Binary), every
   Binary is a crate's binary, and CodeUri is the workspace root;
3. every STEPDEPLOY_* variable the code reads (functions/*/src) is set on at
   least one function, every STEPDEPLOY_* variable set is read somewhere, and
   each function sets what its crate reads (with the documented exceptions
   below; a crate calling a constructor of the shared crate that reads
   variables, SHARED_READERS, reads them too);
4. no IAM statement allows Action "*" (or "service:*") or uses NotAction, and
   a Resource "*" appears only for actions that have no resource-level
   permissions, each with a YAML comment just above it saying so;
5. every IAM resource of both templates renders with local/stack/cfn_render.py
   (the local seed creates the roles and policies from the templates
   themselves, so there is no second copy to keep in step; this catches an
   intrinsic function the renderer does not model before local/up does);
6. RequestNotUnderstoodRule's anything-but list is exactly the detail-types
   the code knows (KNOWN_DETAIL_TYPES in functions/shared/src/domain/request.rs), so
   a new event type is neither reported as not understood nor lost.

Prints what it checked; exits 1 with one line per problem otherwise.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import cfnlint
from cfnlint.decode import decode

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
SAM_TEMPLATE = INFRA / "template.yaml"
TEMPLATES = [SAM_TEMPLATE, INFRA / "target-account-role.yaml"]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ENV_VAR = re.compile(r"STEPDEPLOY_[A-Z][A-Z0-9_]*[A-Z0-9]")
CONFIG_DIR_VAR = "STEPDEPLOY_CONFIG_DIR"
APPROVALS_TABLE_VAR = "STEPDEPLOY_APPROVALS_TABLE"

# Constructors in functions/shared that read STEPDEPLOY_* variables: a crate
# that calls one reads them (the shared crate's own reads count only towards
# "read somewhere", since not every function uses every part of it).
SHARED_READERS = {
    "EnvironmentSet::from_env": {CONFIG_DIR_VAR},                      # shared/src/domain/config/
    "ApprovalsTable::from_env": {APPROVALS_TABLE_VAR},                 # shared/src/aws/approvals.rs
    "Guard::from_env": {CONFIG_DIR_VAR, APPROVALS_TABLE_VAR},          # shared/src/aws/guard.rs
}

# (function logical id, variable): why that function does not set a variable
# its crate reads. Everything else a crate reads must be set.
NOT_NEEDED = {
    ("ApprovalLinksFunction", "STEPDEPLOY_APPROVAL_URL"):
        "serves the URL; only the gate (ApprovalFunction) builds links",
    ("ApprovalLinksFunction", "STEPDEPLOY_APPROVAL_TOPIC_ARN"):
        "records decisions; only the gate (ApprovalFunction) mails approvers",
    ("TeardownFunction", "STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN"):
        "uses rollback's undo; only the rollback binary serves cleanup requests",
    ("TeardownFunction", "STEPDEPLOY_NOTIFICATION_TOPIC_ARN"):
        "uses rollback's undo; the teardown state machine announces the removal itself",
}

# Crates the environment accounts' stack deploys (AWS::Lambda::Function of
# infra/target-account-role.yaml, code from S3), not the SAM template.
ENVIRONMENT_STACK_CRATES = {"mysql-agent": "MySqlAgentFunction"}

problems: list[str] = []


def ok(message: str) -> None:
    print(f"ok    {message}")


def fail(message: str) -> None:
    problems.append(message)
    print(f"FAIL  {message}")


def load(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    if matches or template is None:
        sys.exit(f"check_template: {path.relative_to(REPO)} does not parse: "
                 + "; ".join(str(m) for m in matches))
    return template


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: res for name, res in template.get("Resources", {}).items()
        if not name.startswith("Fn::ForEach") and res.get("Type") == kind
    }


# --------------------------------------------------------------------------- 1. state machines

def check_state_machines(template: dict[str, Any]) -> None:
    machines = resources(template, "AWS::Serverless::StateMachine")
    by_file: dict[Path, str] = {}
    for name, res in machines.items():
        uri = res["Properties"].get("DefinitionUri")
        if not isinstance(uri, str):
            fail(f"{name}: DefinitionUri must be a local path to statemachines/*.asl.json")
            continue
        path = (INFRA / uri).resolve()
        if not path.is_file():
            fail(f"{name}: DefinitionUri {uri} does not exist")
            continue
        by_file[path] = name
    for asl in sorted((REPO / "statemachines").glob("*.asl.json")):
        name = by_file.get(asl.resolve())
        if name is None:
            fail(f"{asl.name}: no AWS::Serverless::StateMachine has DefinitionUri ../statemachines/{asl.name}")
            continue
        used = set(PLACEHOLDER.findall(asl.read_text()))
        given = set(machines[name]["Properties"].get("DefinitionSubstitutions", {}))
        for missing in sorted(used - given):
            fail(f"{asl.name}: ${{{missing}}} is not in {name}.DefinitionSubstitutions")
        for unused in sorted(given - used):
            fail(f"{name}.DefinitionSubstitutions: {unused} is not used by {asl.name}")
        if used == given:
            ok(f"{asl.name}: {len(used)} placeholders = DefinitionSubstitutions of {name} "
               f"({', '.join(sorted(used))})")


# --------------------------------------------------------------------------- 2. functions

def crates() -> dict[str, dict[str, Any]]:
    """Function crates: directory name -> {bins, src files, path deps}."""
    found: dict[str, dict[str, Any]] = {}
    for manifest in sorted((REPO / "functions").glob("*/Cargo.toml")):
        crate_dir = manifest.parent
        if crate_dir.name == "shared":
            continue
        data = tomllib.loads(manifest.read_text())
        package = data["package"]["name"]
        bins = {b["name"] for b in data.get("bin", [])}
        if (crate_dir / "src" / "main.rs").is_file():
            bins.add(package)
        deps = {
            name for name, spec in data.get("dependencies", {}).items()
            if isinstance(spec, dict) and "path" in spec
        }
        found[crate_dir.name] = {"package": package, "bins": bins, "dir": crate_dir, "deps": deps}
    return found


def check_functions(template: dict[str, Any], all_crates: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Returns function logical id -> crate directory name."""
    functions = resources(template, "AWS::Serverless::Function")
    globals_fn = template.get("Globals", {}).get("Function", {})
    bin_to_crate = {b: name for name, c in all_crates.items() for b in c["bins"]}
    function_crate: dict[str, str] = {}
    for name, res in sorted(functions.items()):
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        method = res.get("Metadata", {}).get("BuildMethod")
        if method != "rust-cargolambda" or not binary:
            fail(f"{name}: needs Metadata BuildMethod rust-cargolambda and BuildProperties.Binary")
            continue
        if binary not in bin_to_crate:
            fail(f"{name}: Binary {binary!r} is no binary of a crate under functions/")
            continue
        code_uri = res["Properties"].get("CodeUri", globals_fn.get("CodeUri"))
        root = (INFRA / str(code_uri)).resolve() if isinstance(code_uri, str) else None
        if root is None or "workspace" not in tomllib.loads((root / "Cargo.toml").read_text()
                                                            if (root / "Cargo.toml").is_file() else ""):
            fail(f"{name}: CodeUri {code_uri!r} is not the Cargo workspace root")
            continue
        function_crate[name] = bin_to_crate[binary]
    built = set(function_crate.values())
    target = load(INFRA / "target-account-role.yaml")
    for crate in sorted(all_crates):
        if crate in ENVIRONMENT_STACK_CRATES:
            logical = ENVIRONMENT_STACK_CRATES[crate]
            if resources(target, "AWS::Lambda::Function").get(logical):
                ok(f"functions/{crate}: deployed by infra/target-account-role.yaml ({logical})")
            else:
                fail(f"functions/{crate}: infra/target-account-role.yaml has no {logical}")
            continue
        if crate in built:
            names = sorted(f for f, c in function_crate.items() if c == crate)
            ok(f"functions/{crate}: built by {', '.join(names)}")
        else:
            fail(f"functions/{crate}: no AWS::Serverless::Function builds it "
                 f"(Metadata.BuildProperties.Binary: {sorted(all_crates[crate]['bins'])[0]})")
    return function_crate


# --------------------------------------------------------------------------- 3. environment variables

def vars_read(crate_dir: Path) -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((crate_dir / "src").rglob("*.rs")))
    found = set(ENV_VAR.findall(text))
    for call, variables in SHARED_READERS.items():
        if call in text:
            found |= variables
    return found


def check_env_vars(template: dict[str, Any], all_crates: dict[str, dict[str, Any]],
                   function_crate: dict[str, str]) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    globals_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    shared = vars_read(REPO / "functions" / "shared")
    read_by_crate: dict[str, set[str]] = {}
    for name, crate in all_crates.items():
        direct = vars_read(crate["dir"])
        for dep in crate["deps"]:
            dep_dir = REPO / "functions" / dep
            if dep != "stepdeploy-shared" and dep_dir.is_dir():
                direct |= vars_read(dep_dir)
        read_by_crate[name] = direct
    everything_read = set().union(*read_by_crate.values()) | (shared - {CONFIG_DIR_VAR})
    set_anywhere: dict[str, list[str]] = {}
    for fn, crate in sorted(function_crate.items()):
        variables = dict(globals_vars)
        variables.update(functions[fn]["Properties"].get("Environment", {}).get("Variables", {}))
        names = {v for v in variables if v.startswith("STEPDEPLOY_")}
        for v in names:
            set_anywhere.setdefault(v, []).append(fn)
        for v in sorted(read_by_crate[crate] - names):
            if (fn, v) in NOT_NEEDED:
                ok(f"{fn}: leaves {v} unset ({NOT_NEEDED[(fn, v)]})")
            else:
                fail(f"{fn}: functions/{crate} reads {v} but the function does not set it")
    for v in sorted(everything_read):
        if v in set_anywhere:
            ok(f"{v}: set on {', '.join(set_anywhere[v])}")
        else:
            fail(f"{v}: read by the code, set on no function")
    for v in sorted(set(set_anywhere) - everything_read):
        fail(f"{v}: set on {', '.join(set_anywhere[v])} but read by no code under functions/ (typo?)")


# --------------------------------------------------------------------------- 4. IAM

def policy_data() -> dict[str, Any]:
    path = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text())


def statements(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement in a template (both branches of Fn::If included)."""
    if isinstance(node, dict):
        if "Statement" in node and isinstance(node.get("Statement"), (list, dict)):
            items = node["Statement"] if isinstance(node["Statement"], list) else [node["Statement"]]
            for i, item in enumerate(items):
                for branch in expand_if(item):
                    yield f"{where}.Statement[{i}]", branch
        for key, value in node.items():
            yield from statements(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statements(value, f"{where}[{i}]")


def expand_if(item: Any) -> Iterator[dict[str, Any]]:
    if isinstance(item, dict) and set(item) == {"Fn::If"}:
        for branch in item["Fn::If"][1:]:
            yield from expand_if(branch)
    elif isinstance(item, dict) and set(item) != {"Ref"}:  # {"Ref": "AWS::NoValue"}
        yield item


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def star_lines_commented(path: Path) -> list[int]:
    """Line numbers of `Resource: "*"` without a comment line right above."""
    lines = path.read_text().splitlines()
    bad = []
    for n, line in enumerate(lines):
        if re.match(r"""\s*(-\s+)?Resource:\s*["']\*["']\s*$""", line):
            if n == 0 or not lines[n - 1].strip().startswith("#"):
                bad.append(n + 1)
    return bad


def check_iam(path: Path, template: dict[str, Any], data: dict[str, Any]) -> None:
    rel = path.relative_to(REPO)
    count = stars = 0
    for where, st in statements(template.get("Resources", {}), "Resources"):
        count += 1
        label = f"{rel}: {where}" + (f" ({st['Sid']})" if "Sid" in st else "")
        if "NotAction" in st:
            fail(f"{label}: uses NotAction")
        actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                fail(f"{label}: Action {action!r}")
        if "*" not in as_list(st.get("Resource", [])) or st.get("Effect") != "Allow":
            continue
        stars += 1
        for action in actions:
            service, _, op = action.lower().partition(":")
            spec = data.get(service, {}).get("Actions", {}).get(op)
            if spec is None:
                fail(f"{label}: {action} is not in the Service Authorization Reference (cfn-lint data)")
            elif spec.get("Resources"):
                fail(f"{label}: {action} supports resource-level permissions "
                     f"({', '.join(spec['Resources'])}); name the resources instead of \"*\"")
    for line in star_lines_commented(path):
        fail(f"{rel}:{line}: Resource \"*\" without a comment right above saying which API has no resource-level permission")
    ok(f"{rel}: {count} IAM statements, no Action \"*\"; {stars} with Resource \"*\", "
       "all for actions without resource-level permissions and commented")


# --------------------------------------------------------------------------- 5. local rendering

def check_local_render() -> None:
    sys.path.insert(0, str(REPO / "local"))
    from stack import cfn_render

    target = cfn_render.load_template(INFRA / "target-account-role.yaml")
    values = {
        "OrchestratorAccountId": "123456789012", "ExternalId": "check-template",
        "EnvironmentName": "dev", "ClusterName": "dev-cluster",
        "AlbListenerArn": "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/dev-alb/0123456789abcdef/0123456789abcdef",
        "EfsFileSystemId": "fs-0123456789abcdef0",
        "RdsMasterSecretArn": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:dev-rds-master-AbCdEf",
        "TaskExecutionRoleArn": "arn:aws:iam::111111111111:role/dev-ecs-task-execution",
        "TaskRoleArn": "arn:aws:iam::111111111111:role/dev-ecs-task", "HostedZoneId": "Z0123456789",
        "Domain": "example.com", "LogGroupName": "/ecs/dev", "StateTableName": "stepdeploy-state-dev",
        "ConfigBucketName": "stepdeploy-config-dev-111111111111",
        "MySqlAgentCodeBucket": "artifacts", "MySqlAgentSubnetIds": "subnet-0a,subnet-0b",
        "MySqlAgentSecurityGroupIds": "sg-0a",
    }
    try:
        for key_arn in ("", "arn:aws:kms:eu-west-1:111111111111:key/0123"):
            render = cfn_render.Renderer(target, {**values, "RdsMasterSecretKmsKeyArn": key_arn},
                                         "111111111111", "eu-west-1", "stepdeploy-deploy-dev")
            found = cfn_render.iam_resources(render)
        ok(f"infra/target-account-role.yaml: {len(found['roles'])} role(s), {len(found['policies'])} "
           "AWS::IAM::Policy render with local/stack/cfn_render.py (both values of HasMasterSecretKey)")
        sam = cfn_render.load_template(SAM_TEMPLATE)
        render = cfn_render.orchestrator_renderer(
            sam, "123456789012", "eu-west-1", "stepdeploy",
            {"DeployRoleArns": "arn:aws:iam::111111111111:role/stepdeploy-deploy"},
            {"stepdeploy/approval-hmac-key": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stepdeploy/approval-hmac-key-AbCdEf"},
            {})
        found = cfn_render.iam_resources(render)
        for logical, res in render.resources.items():
            if res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                render.resolve(res.get("Properties", {}))
        ok(f"infra/template.yaml: {len(found['roles'])} roles, {len(found['managed_policies'])} managed "
           "policies, every function and state machine render with local/stack/cfn_render.py")
    except cfn_render.RenderError as err:
        fail(f"local/stack/cfn_render.py cannot render the templates for the local seed: {err}")


def check_known_detail_types(template: dict[str, Any]) -> None:
    domain = REPO / "functions" / "shared" / "src" / "domain"
    source = (domain / "request.rs").read_text()
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', source))
    # The rollout's detail-types live with the rollout (crate::rollout::NAME).
    for name, value in re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', (domain / "rollout.rs").read_text()):
        consts[f"crate::rollout::{name}"] = value
    known = re.search(r"pub const KNOWN_DETAIL_TYPES: \[&str; \d+\] = \[([^\]]*)\]", source)
    if not known:
        fail("functions/shared/src/domain/request.rs: KNOWN_DETAIL_TYPES not found")
        return
    in_code = sorted(consts[name.strip()] for name in known.group(1).split(",") if name.strip())
    rule = resources(template, "AWS::Events::Rule").get("RequestNotUnderstoodRule", {})
    pattern = rule.get("Properties", {}).get("EventPattern", {}).get("detail-type", [{}])
    in_rule = sorted(pattern[0].get("anything-but", [])) if pattern and isinstance(pattern[0], dict) else []
    if in_code != in_rule:
        fail(f"RequestNotUnderstoodRule lists {in_rule}, the code knows {in_code}")
    else:
        ok(f"RequestNotUnderstoodRule: anything but the {len(in_code)} detail-types the code knows")


def main() -> int:
    print(f"check_template: infra/*.yaml against functions/ and statemachines/ (cfn-lint {version('cfn-lint')} decoder)")
    parsed = {path: load(path) for path in TEMPLATES}
    sam = parsed[SAM_TEMPLATE]
    all_crates = crates()
    check_state_machines(sam)
    function_crate = check_functions(sam, all_crates)
    check_env_vars(sam, all_crates, function_crate)
    check_known_detail_types(sam)
    data = policy_data()
    for path, template in parsed.items():
        check_iam(path, template, data)
    check_local_render()
    if problems:
        print(f"\ncheck_template: {len(problems)} problem(s) in infra/*.yaml; see FAIL lines above",
              file=sys.stderr)
        return 1
    print("check_template: infra/*.yaml is consistent with functions/ and statemachines/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
