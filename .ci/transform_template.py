#!/usr/bin/env python3
"""Writes the template as CloudFormation's transforms leave it, in their
order: AWS::LanguageExtensions (Fn::ForEach, ...) expanded by cfn-lint's own
implementation (it keeps every intrinsic symbolic: a ForEach over a list
parameter becomes Fn::Select items), then the SAM transform applied by the
SAM CLI's SamTemplateValidator (what `sam validate` runs; it only logged the
result with --debug).  Both from .ci/.venv-sam (pinned).  Not the SAM CLI's
own LanguageExtensions expansion: it resolves parameters and pseudo
parameters to local placeholder values and drops the Refs it cannot resolve
(a Subscription's TopicArn), which then lints as false errors.

    .ci/.venv-sam/bin/python .ci/transform_template.py infra/template.yaml OUT.yaml

Offline: no AWS call (managed policies named by name could not be resolved
without IAM: the loader refuses them, so the template must use ARNs), no
credentials needed beyond boto3's need of a region.  CI then lints OUT.yaml
with cfn-lint, which checks the AWS::* resources against CloudFormation's
schemas (e.g. a Lambda LayerVersion Description over 256 characters), what
linting the SAM source cannot do: cfn-lint 1.x validates AWS::Serverless::*
against SAM's schemas without transforming them.
"""

from __future__ import annotations

import sys
from pathlib import Path


class OfflineManagedPolicies:
    """ManagedPolicyLoader stand-in: no IAM ListPolicies call."""

    def load(self) -> dict[str, str]:
        raise SystemExit("transform_template.py: the template names an AWS managed policy by "
                         "name; the offline transform needs its ARN")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, out = Path(argv[0]), Path(argv[1])
    import json

    from cfnlint.decode import decode
    from cfnlint.template import Template
    from cfnlint.template.transforms._language_extensions import language_extension
    from samcli.commands.validate.lib.exceptions import InvalidSamDocumentException
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator

    template, problems = decode(str(source))
    if problems or template is None:
        for problem in problems:
            print(f"{source}: {problem}", file=sys.stderr)
        return 1
    transforms = template.get("Transform", [])
    transforms = transforms if isinstance(transforms, list) else [transforms]
    if "AWS::LanguageExtensions" in transforms:
        problems, template = language_extension(Template(str(source), template, ["us-east-1"]))
        if problems:
            for problem in problems:
                print(f"{source}: AWS::LanguageExtensions: {problem}", file=sys.stderr)
            return 1
        template["Transform"] = [t for t in transforms if t != "AWS::LanguageExtensions"]
    template = json.loads(json.dumps(template))  # plain dicts for the SAM translator
    validator = SamTemplateValidator(template, OfflineManagedPolicies(), region="us-east-1")
    try:
        transformed = validator.get_translated_template_if_valid()
    except InvalidSamDocumentException as e:
        print(f"{source}: the SAM transform failed: {e}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(transformed, encoding="utf-8")
    resources = transformed.count("\n    Type: AWS::")
    print(f"{source} -> {out} (SAM and LanguageExtensions transformed, {resources} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
