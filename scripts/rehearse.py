"""Rehearse the deploy: the templates as CloudFormation would build them, checked for lost events.

    scripts/rehearse.py [--json] [TEMPLATE [FORWARDER]]   default: template.yaml forwarder.yaml

template.yaml is translated with the SAM translator (aws-sam-translator, the library SAM and
CloudFormation's AWS::Serverless transform use), so what is checked is the AWS::Events::Rule
resources SAM generates from the functions' events, not the template's own shorthand;
forwarder.yaml is plain CloudFormation. Checked, for every rule of both:
- it has an explicit Name under RuleNamePrefix (the guards and the failure queue's policy name
  the rules by it, whatever CloudFormation would generate for a long stack name);
- every target has a RetryPolicy and a DeadLetterConfig, so an event EventBridge cannot deliver
  is kept, not dropped; at home the dead letters go to FailureQueue (which redrive reads), in a
  forwarder to its own ForwarderDeadLetters queue (a dead-letter queue must be in the rule's
  region).
Then every parameter set CI validates (PARAMETER_SETS) is rendered from the translated template
by cloud-radar, a CloudFormation renderer this project did not write, with the physical names
CloudFormation gives (`<stack>-<logical id>-<suffix>`, real ARNs for every Fn::GetAtt: a
placeholder such as `OwnerTaggerRole.Arn` left in a Deny's Resource would make an evaluator deny
everything and hide gaps, so any left is a problem), and each IAM policy it renders is compared
with what the project's own renderer (scripts/lint_policies.py) gives for the same parameters:
they must be the same document. The translated template's size and counts are checked against
CloudFormation's limits. The organisation's template (scripts/package_org.py) is checked the same
way, and for what a service-managed StackSet needs: no transform, each function's code in its
region's bucket.

    scripts/rehearse.py --policies SET   the policies cloud-radar renders for SET, one JSON
                                         object per line ({"name", "document"}), for the judge
    scripts/rehearse.py --grants SET     docs/operators/function-roles.md for SET: every statement
                                         of the functions' roles and the tools' policies
    scripts/rehearse.py --environment SET   the session-policy function's environment as
                                         cloud-radar renders it for SET (JSON), which the
                                         operators' tools read with --stack

Exit status: 0 every check holds, 1 a check failed, 2 usage.
"""

import contextlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_policies  # noqa: E402  (the project's own renderer, to compare with)

STACK, ACCOUNT, REGION = "ssm-session-owner", "123456789012", "us-east-1"
# What CloudFormation appends to the names it makes up.
SUFFIX = "1A2B3C4D5E6F"
# The parameter sets CI validates (scripts/validate-templates), over the defaults.
PARAMETER_SETS = {
    "defaults": {},
    "static": {"SessionRights": "static"},
    "identity-center": dict(lint_policies.IDENTITY_CENTER),
    "every-option-on": dict(lint_policies.EVERY_OPTION_ON),
    # every option on, and managed nodes outside EC2 (HybridNodesPolicy, HybridNodeRole)
    "hybrid-nodes": dict(lint_policies.EVERY_OPTION_ON, HybridNodes="true"),
}
# CloudFormation's limits for a template passed as --template-body, and for any template.
TEMPLATE_BODY_LIMIT = 51_200
TEMPLATE_S3_LIMIT = 1_000_000
RESOURCE_LIMIT = 500


def load(path):
    """A template as plain JSON-shaped data, read by the project's reader (cfn-lint's decoder:
    the short tags in their long forms)."""
    return json.loads(json.dumps(lint_policies.read_template(path)))


class NoManagedPolicies:
    """The translator asks for AWS managed policies only for policy names in Policies; the
    functions name their own roles, so there is nothing to look up (and no network)."""

    def load(self):
        return {}


def packaged(template):
    """The template as `sam package` leaves it: each function's CodeUri an S3 object."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://rehearsal-bucket/{logical_id}.zip"
    return template


def translate(template):
    """template.yaml as the AWS::Serverless transform turns it into plain CloudFormation, once
    packaged."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The region only names the partition of generated ARNs; no call is made.
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="offline", aws_secret_access_key="offline")
    translator = Translator(NoManagedPolicies(), Parser(), boto_session=session)
    return translator.translate(sam_template=template, parameter_values={})


def names_under_prefix(name):
    """Whether a rule's Name is `!Sub ${RuleNamePrefix}...`."""
    sub = name.get("Fn::Sub") if isinstance(name, dict) else None
    return isinstance(sub, str) and sub.startswith("${RuleNamePrefix}") and len(sub) > len("${RuleNamePrefix}")


def check_rules(label, resources, dead_letter_queue):
    """Problems with the rules of one rendered template, and a line per rule."""
    problems, seen = [], []
    for logical_id, resource in sorted(resources.items()):
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        props = resource.get("Properties", {})
        where = f"{label} {logical_id}"
        if not names_under_prefix(props.get("Name")):
            problems.append(f"{where}: no Name under RuleNamePrefix (found {props.get('Name')!r})")
        targets = props.get("Targets") or []
        if not targets:
            problems.append(f"{where}: no target")
        for target in targets:
            tid = target.get("Id", "?")
            dead_letters = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dead_letters != {"Fn::GetAtt": [dead_letter_queue, "Arn"]}:
                problems.append(f"{where} target {tid}: dead letters go to {dead_letters!r}, not {dead_letter_queue}")
            retry = target.get("RetryPolicy") or {}
            if not retry.get("MaximumRetryAttempts") or not retry.get("MaximumEventAgeInSeconds"):
                problems.append(f"{where} target {tid}: no RetryPolicy with attempts and an event age")
        seen.append(f"rule {where}: {len(targets)} target(s)")
    if not seen:
        problems.append(f"{label}: no EventBridge rule at all")
    return problems, seen


def physical(logical, resource, params):
    """The Ref and the attributes CloudFormation gives a resource: (ref, {attribute: value})."""
    kind = resource.get("Type", "")
    props = resource.get("Properties", {}) or {}
    made_up = f"{STACK}-{logical}-{SUFFIX}"
    arn = lambda service, rest: f"arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"  # noqa: E731
    if kind == "AWS::IAM::Role":
        name = made_up[:64]
        return name, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "RoleId": "AROA" + SUFFIX + "EXAMPLE"}
    if kind == "AWS::Lambda::Function":
        name = made_up[:64]
        return name, {"Arn": arn("lambda", f"function:{name}")}
    if kind == "AWS::SQS::Queue":
        name = made_up[:80]
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}", {"Arn": arn("sqs", name), "QueueName": name}
    if kind == "AWS::Logs::LogGroup":
        return made_up, {"Arn": arn("logs", f"log-group:{made_up}:*")}
    if kind == "AWS::Events::Rule":
        name = props.get("Name")
        if isinstance(name, dict) and "Fn::Sub" in name:
            name = name["Fn::Sub"].replace("${RuleNamePrefix}", params.get("RuleNamePrefix", "ssm-session-owner-"))
        name = name if isinstance(name, str) else made_up[:64]
        return name, {"Arn": arn("events", f"rule/{name}")}
    if kind == "AWS::IAM::ManagedPolicy":
        name = props.get("ManagedPolicyName")
        if isinstance(name, dict) and "Ref" in name:
            name = params.get(name["Ref"])
        name = name if isinstance(name, str) else made_up
        return f"arn:aws:iam::{ACCOUNT}:policy/{name}", {}
    if kind == "AWS::S3::Bucket":
        name = made_up.lower()[:63]
        return name, {"Arn": f"arn:aws:s3:::{name}"}
    if kind == "AWS::CloudWatch::Alarm":
        return made_up, {"Arn": arn("cloudwatch", f"alarm:{made_up}")}
    return made_up, {"Arn": arn("sample", made_up)}


def render(translated, params):
    """The translated template rendered by cloud-radar with `params`, and the physical names it
    was given: (rendered template, {physical value: "<logical>.<attribute>"})."""
    import copy

    from cloud_radar.cf.unit import Template

    template = copy.deepcopy(translated)
    names = {}
    for logical, resource in template["Resources"].items():
        ref, attributes = physical(logical, resource, params)
        # a Metadata of its own: SAM shares the function's Metadata object with the resources it
        # generates from it (EventInvokeConfig), so writing into it would rename the function
        resource["Metadata"] = {**resource.get("Metadata", {}), "Cloud-Radar": {"ref": ref, "attribute-values": attributes}}
        if resource.get("Type") == "AWS::IAM::ManagedPolicy":
            # its Ref is the ARN IAM gives a named policy, which both renderers spell the same
            continue
        names[ref] = f"{logical}.Ref"
        for attribute, value in attributes.items():
            names[value] = f"{logical}.{attribute}"
    Template.AccountId, Template.StackName = ACCOUNT, STACK
    # cloud-radar renders AWS::NoValue as a value ("", "not yet implemented"); CloudFormation
    # removes the list element or property that holds it, and so does this.
    Template.NoValue = NO_VALUE
    # cloud-radar prints the template object while it renders (a debugging print of its hooks);
    # this script's standard output is JSON for the tests, so that goes to standard error.
    with contextlib.redirect_stdout(sys.stderr):
        radar = Template(template)
        rendered = radar.render(params=params, region=REGION)
    return without_no_value(rendered), names


NO_VALUE = "<AWS::NoValue>"


def without_no_value(node):
    if isinstance(node, dict):
        return {k: without_no_value(v) for k, v in node.items() if v != NO_VALUE}
    if isinstance(node, list):
        return [without_no_value(v) for v in node if v != NO_VALUE]
    return node


def policies_of(rendered):
    """Every IAM policy document of a rendered template: {name as lint_policies names it: doc}."""
    found = {}
    for logical, resource in rendered["Resources"].items():
        props = resource.get("Properties", {}) or {}
        documents = [(f"{logical}/{p.get('PolicyName')}", p["PolicyDocument"])
                     for p in props.get("Policies", []) or [] if isinstance(p, dict) and "PolicyDocument" in p]
        if "PolicyDocument" in props:
            documents.append((logical, props["PolicyDocument"]))
        for name, document in documents:
            found[name] = json.loads(document) if isinstance(document, str) else document
    return found


PLACEHOLDER = re.compile(r"\b[A-Z][A-Za-z0-9]+\.(Arn|RoleId|QueueName|Ref)\b")


def canonical(document, names):
    """A document with every physical name replaced by `<logical>.<attribute>`, longest first."""
    text = json.dumps(document, sort_keys=True)
    for value in sorted(names, key=len, reverse=True):
        text = text.replace(json.dumps(value)[1:-1], "{" + names[value] + "}")
    return json.loads(text)


def own_rendering(template_path, params):
    """What the project's renderer gives for the same parameters, with its own sample names
    mapped to `<logical>.<attribute>` the same way."""
    template = lint_policies.read_template(template_path)
    names = {}
    for logical in template.get("Resources", {}):
        names[f"arn:aws:iam::{ACCOUNT}:role/{logical}"] = f"{logical}.Arn"
        names[f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"] = f"{logical}.Arn"
        names[f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}"] = f"{logical}.Arn"
        names[f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*"] = f"{logical}.Arn"
        names[f"arn:aws:s3:::{logical.lower()}"] = f"{logical}.Arn"
        names[f"{STACK}-{logical}-SAMPLE0123"] = f"{logical}.Ref"
    return {
        name.split(" ", 1)[1]: canonical(document, names)
        for name, document in lint_policies.template_policies(template_path, params)
    }


def check_renderings(template_path, translated, what=""):
    """Per parameter set: cloud-radar's policies against the project's renderer's, and no
    placeholder left. Returns (problems, lines, {set: {name: document}})."""
    problems, lines, rendered_sets = [], [], {}
    what = f"{what} " if what else ""
    template = lint_policies.read_template(template_path)
    for label, overrides in PARAMETER_SETS.items():
        params = lint_policies.template_parameters(template, overrides)
        rendered, names = render(translated, params)
        theirs = policies_of(rendered)
        rendered_sets[label] = theirs
        label = f"{what}{label}"
        for name, document in theirs.items():
            found = PLACEHOLDER.search(json.dumps(document))
            if found:
                problems.append(f"{label}: {name} holds the placeholder {found.group(0)!r}, not an ARN")
        ours = own_rendering(template_path, overrides)
        theirs_canonical = {n: canonical(d, names) for n, d in theirs.items()}
        if set(ours) != set(theirs_canonical):
            problems.append(f"{label}: the renderers render different policies: ours {sorted(set(ours) - set(theirs_canonical))}, cloud-radar's {sorted(set(theirs_canonical) - set(ours))}")
        equal = 0
        for name in sorted(set(ours) & set(theirs_canonical)):
            if ours[name] != theirs_canonical[name]:
                problems.append(f"{label}: {name} differs between scripts/lint_policies.py and cloud-radar")
            else:
                equal += 1
        lines.append(f"render {label}: cloud-radar rendered {len(theirs)} policies, {equal} the same as the project's renderer's")
    return problems, lines, rendered_sets


def check_limits(translated):
    body = json.dumps(translated, separators=(",", ":"))
    problems, lines = [], [f"size translated template: {len(body):,} bytes of JSON, {len(translated['Resources'])} resources"]
    if len(body) > TEMPLATE_S3_LIMIT:
        problems.append(f"translated template is {len(body):,} bytes, over CloudFormation's {TEMPLATE_S3_LIMIT:,}")
    if len(translated["Resources"]) > RESOURCE_LIMIT:
        problems.append(f"{len(translated['Resources'])} resources, over CloudFormation's {RESOURCE_LIMIT}")
    if len(body) > TEMPLATE_BODY_LIMIT:
        lines.append(f"size over --template-body's {TEMPLATE_BODY_LIMIT:,} bytes: deploy it from S3 (--template-url)")
    return problems, lines


def check_org(template_path):
    """The organisation's template (scripts/package-org) as a service-managed StackSet takes it:
    no transform and no AWS::Serverless resource left, each function's code in the bucket of the
    region it is deployed to, within the size --template-url takes, and its policies rendered
    as the project renders them."""
    import package_org

    keys = {logical: f"functions/{crate}-rehearsal.zip" for logical, crate in package_org.FUNCTIONS.items()}
    org = package_org.org_template(load(template_path), keys, "rehearsal-code")
    problems, size = [], len(package_org.template_bytes(org))
    if "Transform" in org:
        problems.append(f"org template: a Transform is left ({org['Transform']!r}); a service-managed StackSet refuses it")
    serverless = sorted(k for k, r in org["Resources"].items() if r.get("Type", "").startswith("AWS::Serverless::"))
    if serverless:
        problems.append(f"org template: AWS::Serverless resources are left: {serverless}")
    for logical, resource in sorted(org["Resources"].items()):
        if resource.get("Type") == "AWS::Lambda::Function":
            code = resource["Properties"].get("Code")
            if code != {"S3Bucket": package_org.CODE_BUCKET, "S3Key": keys.get(logical)}:
                problems.append(f"org template: {logical}'s code is {code!r}, not in its region's bucket")
    if size > TEMPLATE_S3_LIMIT:
        problems.append(f"org template: {size:,} bytes, over --template-url's {TEMPLATE_S3_LIMIT:,}")
    lines = [f"org template: {size:,} bytes (--template-url, at most {TEMPLATE_S3_LIMIT:,}), no transform, "
             f"{sum(1 for r in org['Resources'].values() if r.get('Type') == 'AWS::Lambda::Function')} functions' code per region"]
    renderings, rendered, _ = check_renderings(template_path, org, "org")
    return problems + renderings, lines + rendered


def rehearse(template_path, forwarder_path):
    translated = translate(packaged(load(template_path)))
    problems, rules = check_rules(os.path.basename(template_path), translated["Resources"], "FailureQueue")
    more, forwarded = check_rules(os.path.basename(forwarder_path), load(forwarder_path)["Resources"], "ForwarderDeadLetters")
    limits, sizes = check_limits(translated)
    renderings, rendered, _ = check_renderings(template_path, translated)
    org_problems, org_lines = check_org(template_path)
    return (problems + more + limits + renderings + org_problems,
            rules + forwarded + sizes + rendered + org_lines, translated)


def rendered_shipped(label):
    """template.yaml, translated and rendered by cloud-radar with the parameter set `label`."""
    path = os.path.join(ROOT, "template.yaml")
    params = lint_policies.template_parameters(lint_policies.read_template(path), PARAMETER_SETS[label])
    rendered, _ = render(translate(packaged(load(path))), params)
    return rendered


# The roles and policies of the product's own functions and tools, for the operators' page.
GRANTS = [
    ("OwnerTaggerRole/owner-tagger", "the owner-tagger function's role"),
    ("SessionPolicyRole/session-policy", "the session-policy function's role"),
    ("ShareExpiryRole/share-expiry", "the share expiry schedules' role (Sharing=true)"),
    ("DoctorPolicy", "DoctorPolicy (stack output DoctorPolicyArn): for whoever runs doctor and capacity"),
    ("RedrivePolicy", "RedrivePolicy (stack output RedrivePolicyArn): for whoever runs redrive"),
]


def grants_page(label):
    """docs/operators/function-roles.md: every statement of the functions' roles and the tools'
    policies, as cloud-radar renders them from the SAM translation for the parameter set."""
    policies = policies_of(rendered_shipped(label))
    lines = [
        "# What the product's roles may do",
        "",
        "Generated by `scripts/rehearse.py --grants " + label + " > docs/operators/function-roles.md`: every",
        "statement of the functions' roles and of the operators' tool policies, as CloudFormation",
        "builds them (the SAM translation rendered by cloud-radar) with the default parameters, in a",
        f"stack named `{STACK}` in account {ACCOUNT}, {REGION}. The test",
        "`the_function_roles_page_is_what_the_template_grants` fails when this page and the template",
        "disagree. Other parameters change the names (the users' role, the prefixes), not the",
        "shape.",
        "",
    ]
    for name, title in GRANTS:
        document = policies.get(name)
        if document is None:
            continue
        lines += [f"## {title}", "", "| Sid | Effect | Action | Resource | Condition |", "|---|---|---|---|---|"]
        for statement in document["Statement"]:
            cell = lambda v: "<br>".join(f"`{x}`" for x in (v if isinstance(v, list) else [v]))  # noqa: E731
            condition = "<br>".join(
                f"`{op}` `{key}`: {cell(value)}"
                for op, keys in (statement.get("Condition") or {}).items()
                for key, value in keys.items()
            )
            action = cell(statement.get("Action", statement.get("NotAction")))
            if "NotAction" in statement:
                action = "all but " + action
            lines.append(" | ".join([
                f"| {statement.get('Sid', '')}", statement["Effect"], action,
                cell(statement.get("Resource", statement.get("NotResource", ""))), condition or "",
            ]) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    one_set = len(sys.argv) == 3 and sys.argv[2] in PARAMETER_SETS
    if sys.argv[1:2] == ["--grants"] and one_set:
        print(grants_page(sys.argv[2]))
        return 0
    if sys.argv[1:2] == ["--environment"] and one_set:
        function = rendered_shipped(sys.argv[2])["Resources"]["SessionPolicyFunction"]["Properties"]
        print(json.dumps(function["Environment"]["Variables"], sort_keys=True))
        return 0
    if sys.argv[1:2] == ["--policies"] and one_set:
        for name, document in policies_of(rendered_shipped(sys.argv[2])).items():
            print(json.dumps({"name": name, "document": document}))
        return 0
    args = [a for a in sys.argv[1:] if a != "--json"]
    if any(a.startswith("-") for a in args) or len(args) > 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    template = args[0] if args else os.path.join(ROOT, "template.yaml")
    forwarder = args[1] if len(args) > 1 else os.path.join(ROOT, "forwarder.yaml")
    problems, lines, translated = rehearse(template, forwarder)
    if "--json" in sys.argv:
        json.dump(translated, sys.stdout)
        print()
        return 1 if problems else 0
    for line in lines:
        print(line)
    for problem in problems:
        print(f"PROBLEM {problem}")
    rules = sum(1 for line in lines if line.startswith("rule "))
    print(f"rehearsal: {rules} rule(s), {len(PARAMETER_SETS)} parameter set(s) rendered, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
