"""Check every deploy command the project gives against the templates it deploys.

    scripts/check_deploys.py FILE...   samconfig.toml files and Markdown pages to read

A template that names an IAM resource (a role's RoleName, a managed policy's ManagedPolicyName,
a user's, group's or instance profile's name) needs CAPABILITY_NAMED_IAM: CloudFormation refuses
it with CAPABILITY_IAM alone. Each deploy command found (`sam deploy`, `aws cloudformation deploy`,
`create-stack`, `update-stack`, `create-stack-set`, `update-stack-set`, and a samconfig.toml's
`[*.deploy.parameters] capabilities`) is matched with the template it deploys (`--template-file`,
`-t`, `--template-body file://`; `sam deploy` and samconfig.toml: template.yaml; a packaged
template: the one it was packaged from), and each one that lacks the capability is reported with
its file and line. Exit status: 0 none, 1 some, 2 usage.
"""

import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_policies  # noqa: E402  (the project's template reader)

NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
# What `sam package` or the organisation packaging writes, and the template it comes from.
PACKAGED = {"packaged.yaml": "template.yaml", "packaged-forwarder.yaml": "forwarder.yaml",
            "org-template.json": "template.yaml"}
DEPLOY = re.compile(
    r"\b(sam\s+deploy|aws\s+cloudformation\s+(deploy|create-stack-set|update-stack-set|create-stack|update-stack))\b"
)
TEMPLATE = re.compile(r"(?:--template-file|--template-body\s+file://|(?<!\S)-t)\s*[= ]?\s*(?:file://)?(\S+)")


def named_iam(template):
    """The logical ids of the IAM resources `template` names, with the property that names them."""
    resources = lint_policies.read_template(os.path.join(ROOT, template)).get("Resources", {})
    return sorted(
        f"{logical_id} ({NAMED_IAM[r['Type']]})"
        for logical_id, r in resources.items()
        if r.get("Type") in NAMED_IAM and NAMED_IAM[r["Type"]] in (r.get("Properties") or {})
    )


def commands(path):
    """Each deploy command of a Markdown page's code blocks (or of a whole script): (line
    number, command text with its continuation lines)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    markdown = path.endswith(".md")
    found, i, in_code = [], 0, not markdown
    while i < len(lines):
        if markdown and lines[i].lstrip().startswith("```"):
            in_code = not in_code
        elif in_code and DEPLOY.search(lines[i]) and not lines[i].lstrip().startswith("#"):
            start, text = i + 1, lines[i]
            # continuation lines
            while text.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i]
            found.append((start, text))
        i += 1
    return found


def template_of(command):
    match = TEMPLATE.search(command)
    if match:
        name = os.path.basename(match.group(1).strip("\"'`"))
        return PACKAGED.get(name, name)
    if re.search(r"\bsam\s+deploy\b", command):
        return "template.yaml"
    if re.search(r"--template-url\b", command):
        # the only template the project puts at a URL: scripts/package-org's, from template.yaml
        return "template.yaml"
    return None


def problems(paths):
    found = []
    for path in paths:
        shown = os.path.relpath(path, ROOT)
        if path.endswith(".toml"):
            with open(path, "rb") as f:
                config = tomllib.load(f)
            for env, sections in config.items():
                deploy = sections.get("deploy", {}).get("parameters") if isinstance(sections, dict) else None
                if deploy is None:
                    continue
                capabilities = deploy.get("capabilities", "")
                if isinstance(capabilities, list):
                    capabilities = " ".join(capabilities)
                named = named_iam("template.yaml")
                if named and "CAPABILITY_NAMED_IAM" not in capabilities:
                    found.append(f"{shown} [{env}.deploy.parameters]: capabilities {capabilities!r} lack CAPABILITY_NAMED_IAM, which template.yaml needs for {', '.join(named)}")
            continue
        for line, command in commands(path):
            template = template_of(command)
            if template is None or not os.path.exists(os.path.join(ROOT, template)):
                # a template the project does not ship (or no template at all): not ours to check
                continue
            named = named_iam(template)
            if named and "CAPABILITY_NAMED_IAM" not in command:
                found.append(f"{shown}:{line}: deploys {template} without CAPABILITY_NAMED_IAM, which it needs for {', '.join(named)}")
    return found


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    found = problems(sys.argv[1:])
    for problem in found:
        print(problem)
    print(f"deploy commands: {len(sys.argv) - 1} file(s) read, {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
