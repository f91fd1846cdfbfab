"""Lint every IAM policy the product ships or writes with parliament.

Reads documents from two places: every PolicyDocument in template.yaml (CloudFormation
intrinsics resolved to concrete sample values) and, one per line on stdin, the documents the
test shared/tests/generated_policies.rs writes. Fails on any finding of MEDIUM severity or above.

parliament cannot read --file when stdin is not a terminal, so each document is piped in.
"""

import json
import os
import re
import subprocess
import sys

from cfnlint.decode import decode_str

SAMPLE = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "ssm-session-owner",
}
# Sample values for parameters that have no default.
SAMPLE_PARAMETERS = {"UsersRoleName": "Okta-ServiceWorkbenchUser", "HomeRegion": "us-east-1"}
BLOCKING = {"MEDIUM", "HIGH", "CRITICAL"}
# The parliament installed beside this interpreter (the project's .venv).
PARLIAMENT = os.path.join(os.path.dirname(sys.executable), "parliament")


def resolve(node, params, resources):
    """Replace Ref, Fn::Sub and Fn::GetAtt with concrete sample values."""
    if isinstance(node, list):
        return [resolve(n, params, resources) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        name = node["Ref"]
        return str(params.get(name, SAMPLE.get(name, f"sample-{name}")))
    if set(node) == {"Fn::Sub"}:
        text = node["Fn::Sub"]
        variables = {}
        if isinstance(text, list):
            text, variables = text[0], resolve(text[1] if len(text) > 1 else {}, params, resources)
        # ${LogicalId} in a Sub is that resource's Ref: a physical name CloudFormation makes up.
        names = {logical: f"ssm-session-owner-{logical}-SAMPLE0123" for logical in resources}
        for key, value in {**SAMPLE, **params, **names, **variables}.items():
            text = text.replace("${" + key + "}", str(value))
        return text.replace("${!", "${")
    if set(node) == {"Fn::GetAtt"}:
        logical, attribute = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        kind = resources.get(logical, {}).get("Type", "")
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:us-east-1:123456789012:{logical}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:us-east-1:123456789012:log-group:{logical}:*"
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{logical}"
        return f"arn:aws:iam::123456789012:role/{logical}"
    if set(node) == {"Fn::If"}:
        return resolve(node["Fn::If"][1], params, resources)
    return {k: resolve(v, params, resources) for k, v in node.items()}


def template_policies(path):
    template, matches = decode_str(open(path, encoding="utf-8").read())
    if matches:
        sys.exit(f"cannot read {path}: {matches}")
    params = {
        name: SAMPLE_PARAMETERS.get(name, spec.get("Default", "sample"))
        for name, spec in template.get("Parameters", {}).items()
    }
    resources = template.get("Resources", {})
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        documents = []
        for policy in props.get("Policies", []) or []:
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                documents.append((f"{logical}/{policy.get('PolicyName')}", policy["PolicyDocument"]))
        if "PolicyDocument" in props:
            documents.append((logical, props["PolicyDocument"]))
        # Trust policies (AssumeRolePolicyDocument) are resource policies; parliament checks
        # identity policies, so they are not linted here.
        for name, document in documents:
            resolved = resolve(document, params, resources)
            if isinstance(resolved, str):
                resolved = json.loads(resolved)
            yield f"{os.path.basename(path)} {name}", resolved


def lint(name, document):
    out = subprocess.run(
        [PARLIAMENT, "--json", "--minimum_severity", "LOW"],
        input=json.dumps(document), capture_output=True, text=True, check=False,
    )
    findings = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    if out.returncode not in (0, 1) or (out.stderr.strip() and not findings):
        sys.exit(f"parliament failed on {name}: {out.stderr.strip()}")
    blocking = [f for f in findings if str(f.get("severity", "")).upper() in BLOCKING]
    for finding in findings:
        print(f"  {finding.get('severity')}: {finding.get('issue')} {finding.get('detail', '')} ({name})")
    return blocking


# What a parameter pasted into a policy's JSON must never let through.
INJECTIONS = ['a"b', "a}b", "a{b", "a\\b", "a,\"Effect\"", "aws:owner", "AWS:owner"]


def unconstrained_policy_parameters(path):
    """Parameters whose value reaches a policy document (as ${Name} in a Sub) without a
    constraint that keeps JSON syntax out: each must have AllowedValues, or an AllowedPattern
    (anchored, as CloudFormation applies it) that rejects every INJECTIONS sample."""
    template, _ = decode_str(open(path, encoding="utf-8").read())
    text = json.dumps([r.get("Properties", {}) for r in template.get("Resources", {}).values()])
    problems = []
    for name, spec in template.get("Parameters", {}).items():
        if "${" + name + "}" not in text or "AllowedValues" in spec:
            continue
        pattern = spec.get("AllowedPattern")
        if pattern is None:
            problems.append(f"{name}: reaches a policy document but has no AllowedPattern")
            continue
        if spec.get("Default") is not None and re.fullmatch(pattern, str(spec["Default"])) is None:
            problems.append(f"{name}: its default does not match its own AllowedPattern")
        for sample in INJECTIONS:
            if re.fullmatch(pattern, sample):
                problems.append(f"{name}: AllowedPattern accepts {sample!r}")
    return problems


def main():
    if sys.argv[1:2] == ["--check-parameters"]:
        problems = [p for path in sys.argv[2:] for p in unconstrained_policy_parameters(path)]
        for problem in problems:
            print(f"  {problem}")
        print(f"policy parameters: {len(problems)} problem(s)")
        sys.exit(1 if problems else 0)
    if sys.argv[1:2] == ["--dump"]:
        # The template's policies, resolved, one JSON object per line (for the IAM judge test).
        for name, document in template_policies(sys.argv[2] if len(sys.argv) > 2 else "template.yaml"):
            print(json.dumps({"name": name, "document": document}))
        return
    documents = [d for path in (sys.argv[1:] or ["template.yaml"]) for d in template_policies(path)]
    for number, line in enumerate(sys.stdin, 1):
        if line.strip():
            documents.append((f"generated policy {number}", json.loads(line)))
    blocking = []
    for name, document in documents:
        print(f"linting {name}")
        blocking += lint(name, document)
    print(f"parliament: {len(documents)} policies linted, {len(blocking)} finding(s) at MEDIUM or above")
    sys.exit(1 if blocking else 0)


if __name__ == "__main__":
    main()
