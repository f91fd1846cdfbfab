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


# What Ref AWS::NoValue resolves to: dropped from the list or map that holds it.
NO_VALUE = object()


def condition(name, template, params):
    """Evaluate the template's condition `name` with `params`."""
    return evaluate(template["Conditions"][name], template, params)


def evaluate(node, template, params):
    """Evaluate a condition function (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
    (function, arguments), = node.items()
    if function == "Condition":
        return condition(arguments, template, params)
    if function == "Fn::Equals":
        left, right = (resolve(a, template, params) for a in arguments)
        return str(left) == str(right)
    values = [evaluate(a, template, params) for a in arguments]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    raise ValueError(f"unsupported condition function {function}")


def resolve(node, template, params):
    """Replace Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join, Fn::Split and Fn::Select with
    concrete sample values, evaluating conditions with `params`."""
    resources = template.get("Resources", {})
    if isinstance(node, list):
        return [v for v in (resolve(n, template, params) for n in node) if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if node == {"Ref": "AWS::NoValue"}:
        return NO_VALUE
    if set(node) == {"Ref"}:
        name = node["Ref"]
        return str(params.get(name, SAMPLE.get(name, f"sample-{name}")))
    if set(node) == {"Fn::Sub"}:
        text = node["Fn::Sub"]
        variables = {}
        if isinstance(text, list):
            text, variables = text[0], resolve(text[1] if len(text) > 1 else {}, template, params)
        # ${LogicalId} in a Sub is that resource's Ref: a physical name CloudFormation makes up.
        names = {logical: f"ssm-session-owner-{logical}-SAMPLE0123" for logical in resources}
        for key, value in {**SAMPLE, **params, **names, **variables}.items():
            text = text.replace("${" + key + "}", str(value))
        # ${LogicalId.Attribute} is that resource's Fn::GetAtt
        text = re.sub(r"\$\{([A-Za-z0-9]+)\.([A-Za-z0-9.]+)\}",
                      lambda m: resolve({"Fn::GetAtt": [m.group(1), m.group(2)]}, template, params)
                      if m.group(1) in resources else m.group(0), text)
        return text.replace("${!", "${")
    if set(node) == {"Fn::GetAtt"}:
        logical, attribute = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        kind = resources.get(logical, {}).get("Type", "")
        if kind == "AWS::SQS::Queue":
            # A named queue is called what it says; CloudFormation names the others after the
            # stack and the logical id.
            named = resources[logical].get("Properties", {}).get("QueueName")
            name = resolve(named, template, params) if named else logical
            return f"arn:aws:sqs:us-east-1:123456789012:{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:us-east-1:123456789012:log-group:{logical}:*"
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{logical}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{logical.lower()}"
        return f"arn:aws:iam::123456789012:role/{logical}"
    if set(node) == {"Fn::If"}:
        name, then, otherwise = node["Fn::If"]
        return resolve(then if condition(name, template, params) else otherwise, template, params)
    if set(node) == {"Fn::Join"}:
        separator, values = node["Fn::Join"]
        return separator.join(str(v) for v in resolve(values, template, params))
    if set(node) == {"Fn::Split"}:
        separator, text = node["Fn::Split"]
        return resolve(text, template, params).split(separator)
    if set(node) == {"Fn::Select"}:
        index, values = node["Fn::Select"]
        return resolve(values, template, params)[int(index)]
    resolved = {k: resolve(v, template, params) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


# The defaults, with the static-mode statement (EndOwnSessions) in, as the tests read them.
DEFAULT_OVERRIDES = {"SessionRights": "static"}
# Every option of the end-user policy on: the largest it gets.
# The parameters of an Identity Center deploy (docs/operators/deploy.md).
IDENTITY_CENTER = {
    "PermissionSetName": "ResearchUsers",
    "UsersRoleName": "",
    "SessionRights": "static",
    "AttachEndUserPolicy": "false",
}
EVERY_OPTION_ON = {
    "SessionRights": "static",
    "GuardDenies": "true",
    "ShellSessions": "product",
    "PortForwarding": "true",
    "ForwardedPorts": "3389,8787,8888",
    "SshSessions": "true",
    "SshOsUsers": "ec2-user,ubuntu,rstudio-user,jupyter",
    "SessionLogBucket": "research-session-logs-123456789012",
    "SessionLogGroup": "/research/ssm-sessions",
    "SessionKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "RunAsEnabled": "true",
    "RunAsDefaultUser": "researcher",
    "CreateTrail": "true",
}


def template_parameters(template, overrides):
    params = {
        name: SAMPLE_PARAMETERS.get(name, spec.get("Default", "sample"))
        for name, spec in template.get("Parameters", {}).items()
    }
    params.update({k: v for k, v in overrides.items() if k in params})
    return params


def read_template(path):
    template, matches = decode_str(open(path, encoding="utf-8").read())
    if matches:
        sys.exit(f"cannot read {path}: {matches}")
    return template


def template_policies(path, overrides=None):
    template = read_template(path)
    params = template_parameters(template, DEFAULT_OVERRIDES if overrides is None else overrides)
    resources = template.get("Resources", {})
    for logical, resource in resources.items():
        if "Condition" in resource and not condition(resource["Condition"], template, params):
            continue
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
            resolved = resolve(document, template, params)
            if isinstance(resolved, str):
                resolved = json.loads(resolved)
            yield f"{os.path.basename(path)} {name}", resolved


def template_documents(path, overrides):
    """The session documents a template creates with `overrides`, resolved: {logical: resource}."""
    template = read_template(path)
    params = template_parameters(template, overrides)
    return {
        logical: resolve(resource["Properties"], template, params)
        for logical, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::SSM::Document"
        and ("Condition" not in resource or condition(resource["Condition"], template, params))
    }


def lint(name, document):
    out = subprocess.run(
        [PARLIAMENT, "--json", "--minimum_severity", "LOW"],
        input=json.dumps(document), capture_output=True, text=True, check=False,
    )
    findings = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    if out.returncode not in (0, 1) or (out.stderr.strip() and not findings):
        sys.exit(f"parliament failed on {name}: {out.stderr.strip()}")
    blocking = [
        f for f in findings
        if str(f.get("severity", "")).upper() in BLOCKING and not stale_data(f)
    ]
    for finding in findings:
        known = " [parliament's data is older than the key; see STALE_DATA]" if stale_data(finding) else ""
        print(f"  {finding.get('severity')}: {finding.get('issue')} {finding.get('detail', '')} ({name}){known}")
    return blocking


# Findings that come from parliament's IAM data predating a key, not from the policy: parliament
# 1.6.4 (the latest) does not know ssm:SessionDocumentAccessCheck, which the Service
# Authorization Reference lists for ssm:StartSession. The IAM judge (iam-simulate, with 2026 data)
# validates every condition key of the policies it evaluates, this one included.
STALE_DATA = {("UNKNOWN_CONDITION_FOR_ACTION", "ssm:SessionDocumentAccessCheck")}


def stale_data(finding):
    detail = json.dumps(finding.get("detail", ""))
    return any(finding.get("issue") == issue and key in detail for issue, key in STALE_DATA)


# What a parameter pasted into a policy's JSON must never let through.
INJECTIONS = ['a"b', "a}b", "a{b", "a\\b", "a,\"Effect\"", "aws:owner", "AWS:owner"]


def unconstrained_policy_parameters(path):
    """Parameters whose value reaches a policy document (as ${Name} in a Sub) without a
    constraint that keeps JSON syntax out: each must have AllowedValues, or an AllowedPattern
    (anchored, as CloudFormation applies it) that rejects every INJECTIONS sample. A parameter
    of type Number is a number by CloudFormation's own check, so it carries no JSON syntax."""
    template, _ = decode_str(open(path, encoding="utf-8").read())
    text = json.dumps([r.get("Properties", {}) for r in template.get("Resources", {}).values()])
    problems = []
    for name, spec in template.get("Parameters", {}).items():
        if "${" + name + "}" not in text or "AllowedValues" in spec:
            continue
        if spec.get("Type") == "Number":
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


def broken_rules(template, overrides):
    """The descriptions of the template's Rules that `overrides` break."""
    params = template_parameters(template, overrides)
    broken = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], template, params):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], template, params):
                broken.append(f"{name}: {assertion.get('AssertDescription', '')}")
    return broken


# (parameters, whether CloudFormation must accept them), for --check-rules.
RULE_CASES = [
    ({}, True),
    (EVERY_OPTION_ON, True),
    ({"ShellSessions": "product"}, True),
    ({"ShellSessions": "off", "PortForwarding": "false", "SshSessions": "true"}, True),
    ({"ShellSessions": "account", "SessionLogBucket": "research-session-logs"}, False),
    ({"ShellSessions": "account", "SessionLogGroup": "/research/ssm"}, False),
    ({"ShellSessions": "off", "SessionKmsKeyArn": EVERY_OPTION_ON["SessionKmsKeyArn"]}, False),
    ({"ShellSessions": "account", "RunAsEnabled": "true"}, False),
    ({"ShellSessions": "off", "PortForwarding": "false", "SshSessions": "false"}, False),
]


def check_rules(paths):
    """Each RULE_CASES entry is accepted or refused by every template's Rules as it says."""
    problems = []
    for path in paths:
        template = read_template(path)
        for overrides, accepted in RULE_CASES:
            broken = broken_rules(template, overrides)
            if bool(broken) == accepted:
                problems.append(f"{path} with {overrides or 'the defaults'}: "
                                f"{'refused: ' + '; '.join(broken) if broken else 'accepted'}")
    return problems


def main():
    if sys.argv[1:2] == ["--check-parameters"]:
        problems = [p for path in sys.argv[2:] for p in unconstrained_policy_parameters(path)]
        for problem in problems:
            print(f"  {problem}")
        print(f"policy parameters: {len(problems)} problem(s)")
        sys.exit(1 if problems else 0)
    if sys.argv[1:2] == ["--check-rules"]:
        problems = check_rules(sys.argv[2:])
        for problem in problems:
            print(f"  {problem}")
        print(f"template rules: {len(RULE_CASES)} parameter sets per template, {len(problems)} problem(s)")
        sys.exit(1 if problems else 0)
    if sys.argv[1:2] in (["--dump"], ["--dump-documents"]):
        # The template's policies (or session documents), resolved, one JSON object per line,
        # for the tests: --dump TEMPLATE [NAME=VALUE...] with parameters over the defaults (no
        # NAME=VALUE: the defaults with SessionRights=static; "every-option-on": the largest,
        # with any NAME=VALUE over it).
        path = sys.argv[2] if len(sys.argv) > 2 else "template.yaml"
        settings = sys.argv[3:]
        overrides = dict(EVERY_OPTION_ON) if "every-option-on" in settings else {}
        overrides.update(setting.split("=", 1) for setting in settings if setting != "every-option-on")
        overrides = overrides or None
        if sys.argv[1] == "--dump":
            for name, document in template_policies(path, overrides):
                print(json.dumps({"name": name, "document": document}))
        else:
            for logical, properties in template_documents(path, overrides or {}).items():
                print(json.dumps({"name": logical, "properties": properties}))
        return
    paths = sys.argv[1:] or ["template.yaml"]
    # The shipped policies with the defaults, and with every option on.
    documents = [d for path in paths for d in template_policies(path)]
    documents += [
        (f"{name} (every option on)", document)
        for path in paths
        for name, document in template_policies(path, EVERY_OPTION_ON)
        if name.endswith("EndUserPolicy")
    ]
    # Managed nodes outside EC2: the hybrid-nodes policy, and the guards and boundary it changes.
    documents += [
        (f"{name} (HybridNodes=true)", document)
        for path in paths
        for name, document in template_policies(path, dict(EVERY_OPTION_ON, HybridNodes="true"))
        if name.endswith(("HybridNodesPolicy", "GuardPolicy", "UsersBoundary", "OwnerTaggerRole/owner-tagger"))
    ]
    # The Identity Center deploy: its guards name the permission set's role by its path.
    documents += [
        (f"{name} (Identity Center)", document)
        for path in paths
        for name, document in template_policies(path, IDENTITY_CENTER)
        if name.endswith("EndUserPolicy") or name.endswith("GuardPolicy")
    ]
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
