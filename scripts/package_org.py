"""Package the product for an organisation: the functions' code in one bucket per region, and
template.yaml as a plain CloudFormation template (no transform) that a service-managed StackSet
accepts.

    scripts/package-org --bucket-prefix PREFIX --regions R1,R2,... [--org-id o-...]
                        [--artifacts DIR] [--output FILE] [--dry-run]

- A service-managed StackSet refuses a template that references a macro, and AWS::Serverless is
  one: template.yaml is translated here with the SAM translator (the library the transform runs),
  and the result has no Transform.
- A Lambda function's code must be in a bucket in the function's own region: each function's
  Code is `{S3Bucket: ${CodeBucketPrefix}-${AWS::Region}, S3Key: functions/<name>-<sha256>.zip}`,
  and the zip is put in the bucket `<PREFIX>-<region>` of every region in --regions (created when
  missing: public access blocked, TLS only, objects readable by the organisation's accounts
  through aws:PrincipalOrgID, nobody else). The key names the zip's content, so an upgrade is a
  new key and a stack update picks it up; a key already there is never overwritten.
- The template (over --template-body's 51,200 bytes) is put in the first region's bucket under
  templates/, readable by the same accounts, and its URL printed for --template-url.

--artifacts DIR takes DIR/<function>/bootstrap (cargo lambda's layout); without it the functions
are built with scripts/build-lambdas (arm64). --dry-run writes the template and prints what
would be uploaded, and calls no AWS API. The organisation id comes from --org-id, or from
organizations:DescribeOrganization. Credentials, region and endpoint come from the SDK's
environment (AWS_PROFILE, AWS_ENDPOINT_URL).

    scripts/package-org --bucket-policy BUCKET ORG_ID   the policy the buckets get (JSON)

Prints one JSON object per line: {"bucket", "region", "key", "action"} per upload, then
{"template", "template_url", "bytes"}. Exit status: 0 done, 1 an AWS error, 2 usage.
"""

import argparse
import copy
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rehearse  # noqa: E402  (the SAM translation the rehearsal checks)

# The template's functions and the crates that build them.
FUNCTIONS = {"OwnerTaggerFunction": "owner-tagger", "SessionPolicyFunction": "session-policy"}
CODE_BUCKET = {"Fn::Sub": "${CodeBucketPrefix}-${AWS::Region}"}
# S3's bucket names: 3-63 of a-z 0-9 . -; the region (up to 14 characters) and a dash follow.
PREFIX = re.compile(r"^[a-z0-9][a-z0-9.-]{1,47}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
# A zip's bytes depend only on what it holds: one fixed time, one fixed mode.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def zipped(bootstrap):
    """The bootstrap binary as Lambda's zip, byte for byte the same for the same binary."""
    with open(bootstrap, "rb") as f:
        binary = f.read()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", ZIP_TIME)
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, binary)
    return out.getvalue()


def code_key(function, data):
    return f"functions/{function}-{hashlib.sha256(data).hexdigest()}.zip"


def org_template(template, keys, bucket_prefix):
    """The SAM-translated template with each function's code in its region's bucket.

    `template` is template.yaml as read (rehearse.load), `keys` {logical id: S3 key}."""
    translated = rehearse.translate(rehearse.packaged(copy.deepcopy(template)))
    translated.pop("Transform", None)
    translated["Parameters"] = {
        "CodeBucketPrefix": {
            "Type": "String",
            "Default": bucket_prefix,
            "Description": "Buckets that hold the functions' code, one per region: <prefix>-<region> (scripts/package-org).",
            "AllowedPattern": PREFIX.pattern[1:-1],
        },
        **translated.get("Parameters", {}),
    }
    for logical, key in keys.items():
        function = translated["Resources"][logical]
        function["Properties"]["Code"] = {"S3Bucket": CODE_BUCKET, "S3Key": key}
        # sam build's hint; CloudFormation ignores it, but it points at a build that did not run
        function.pop("Metadata", None)
    return translated


def template_bytes(translated):
    return json.dumps(translated, separators=(",", ":"), sort_keys=True).encode()


def org_policy(bucket, org_id, partition="aws"):
    """Readable by the organisation's accounts (CloudFormation and Lambda fetch the code with
    the deploying account's credentials), by nobody else, and over TLS only."""
    objects = f"arn:{partition}:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrganisationReadsCode",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": objects,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}},
            },
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:{partition}:s3:::{bucket}", objects],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def usage(message):
    print(f"package-org: {message}", file=sys.stderr)
    sys.exit(2)


def parse(argv):
    parser = argparse.ArgumentParser(prog="package-org", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket-prefix", required=True)
    parser.add_argument("--regions", required=True, help="comma-separated; the first holds the template")
    parser.add_argument("--org-id")
    parser.add_argument("--artifacts", help="DIR/<function>/bootstrap; default: scripts/build-lambdas")
    parser.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    parser.add_argument("--output", default=os.path.join(ROOT, "target", "org-template.json"))
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if not PREFIX.match(args.bucket_prefix):
        usage(f"--bucket-prefix {args.bucket_prefix!r} is not 2-48 of a-z 0-9 . - (the bucket is <prefix>-<region>)")
    given, args.regions = args.regions, [r for r in args.regions.split(",") if r]
    bad = [r for r in args.regions if not REGION.match(r)]
    if not args.regions or bad:
        usage(f"--regions {given!r} must name regions, comma-separated ({', '.join(bad) or 'none given'} is not one)")
    if args.org_id is not None and not ORG_ID.match(args.org_id):
        usage(f"--org-id {args.org_id!r} is not an organisation id (o-...)")
    return args


def artifacts(directory):
    if directory is None:
        subprocess.run([os.path.join(ROOT, "scripts", "build-lambdas")], check=True)
        directory = os.path.join(ROOT, "target", "lambda")
    found = {}
    for logical, crate in FUNCTIONS.items():
        bootstrap = os.path.join(directory, crate, "bootstrap")
        if not os.path.isfile(bootstrap):
            usage(f"{bootstrap} is missing (build with scripts/build-lambdas, or give --artifacts)")
        found[logical] = (crate, zipped(bootstrap))
    return found


def upload(s3, bucket, key, data, owner):
    """Put `data` at `key` unless it is there already; returns what was done. (Listed, not
    HEAD: moto enforces a bucket policy on object requests and denies any conditional statement,
    which AWS does not; listing is a bucket request.)"""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, ExpectedBucketOwner=owner)
    if any(o["Key"] == key for o in listed.get("Contents", [])):
        return "present"
    s3.put_object(Bucket=bucket, Key=key, Body=data, ExpectedBucketOwner=owner)
    return "uploaded"


def ensure_bucket(s3, bucket, region, owner):
    """The region's bucket, created when missing, public access blocked; one that exists must
    be this account's. Returns whether it was created."""
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
        created = False
    except s3.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise RuntimeError(f"bucket {bucket} exists but cannot be used by account {owner}: {e}") from e
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        created = True
    s3.put_public_access_block(
        Bucket=bucket,
        ExpectedBucketOwner=owner,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return created


def main(argv):
    if argv[:1] == ["--bucket-policy"] and len(argv) == 3:
        print(json.dumps(org_policy(argv[1], argv[2])))
        return 0
    args = parse(argv)
    built = artifacts(args.artifacts)
    keys = {logical: code_key(crate, data) for logical, (crate, data) in built.items()}
    translated = org_template(rehearse.load(args.template), keys, args.bucket_prefix)
    body = template_bytes(translated)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "wb") as f:
        f.write(body)
    home = args.regions[0]
    template_key = f"templates/template-{hashlib.sha256(body).hexdigest()}.json"
    template_bucket = f"{args.bucket_prefix}-{home}"
    if args.dry_run:
        for region in args.regions:
            for logical, key in keys.items():
                print(json.dumps({"bucket": f"{args.bucket_prefix}-{region}", "region": region, "key": key, "action": "would upload"}))
    else:
        import boto3
        import botocore.exceptions

        try:
            owner = boto3.client("sts", region_name=home).get_caller_identity()["Account"]
            org_id = args.org_id or boto3.client("organizations", region_name=home).describe_organization()["Organization"]["Id"]
            for region in args.regions:
                s3 = boto3.client("s3", region_name=region)
                bucket = f"{args.bucket_prefix}-{region}"
                if ensure_bucket(s3, bucket, region, owner):
                    print(json.dumps({"bucket": bucket, "region": region, "action": "created"}))
                uploads = [(key, built[logical][1]) for logical, key in keys.items()]
                if region == home:
                    uploads.append((template_key, body))
                for key, data in uploads:
                    action = upload(s3, bucket, key, data, owner)
                    print(json.dumps({"bucket": bucket, "region": region, "key": key, "action": action}))
                # Last, after the uploads: moto denies object writes under any conditional
                # statement (it cannot evaluate conditions), which AWS does not.
                s3.put_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner, Policy=json.dumps(org_policy(bucket, org_id)))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, RuntimeError) as e:
            print(f"package-org: {e}", file=sys.stderr)
            return 1
    url = f"https://{template_bucket}.s3.{home}.amazonaws.com/{template_key}"
    print(json.dumps({"template": args.output, "template_url": url, "bytes": len(body)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
