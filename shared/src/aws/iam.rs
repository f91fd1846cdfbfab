//! IAM: the users' role, its inline policies, and the customer-managed shards.

use tracing::instrument;

use super::sdk_error::{from_sdk, role_error, unless_missing};
use crate::domain::evaluation::Decision;
use crate::domain::ids::{ResolvedRole, RoleId, RoleIdentity};
use crate::error::Error;
use crate::ports::{
    ManagedPolicies, ManagedPolicy, PolicySimulator, PolicyVersion, RoleDirectory,
    RoleEvaluationInputs, RolePolicies, RolePolicyDocument, Simulated, Simulation,
};

impl RoleDirectory for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn role_id(&self, role_name: &str) -> Result<RoleId, Error> {
        parse_role_id(get_role(self, role_name).await?.role_id())
    }

    #[instrument(skip(self))]
    async fn role_for_permission_set(&self, permission_set: &str) -> Result<ResolvedRole, Error> {
        let mut roles = Vec::new();
        let mut pages = self
            .list_roles()
            .path_prefix(SSO_ROLE_PATH)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("iam:ListRoles", e))?;
            roles.extend(
                page.roles()
                    .iter()
                    .map(|r| (r.role_name().to_owned(), r.role_id().to_owned())),
            );
        }
        pick_permission_set_role(permission_set, roles)
    }

    #[instrument(skip(self))]
    async fn trust_policy(&self, role_name: &str) -> Result<String, Error> {
        trust_policy_of(&get_role(self, role_name).await?)
    }
}

/// The trust policy GetRole returned, decoded; a role without one is an answer we cannot read.
fn trust_policy_of(role: &aws_sdk_iam::types::Role) -> Result<String, Error> {
    role.assume_role_policy_document()
        .filter(|d| !d.is_empty())
        .map(decode_policy_document)
        .ok_or_else(|| Error::unreadable("iam:GetRole", "the role's trust policy"))
}

impl RoleEvaluationInputs for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn role_identity(&self, role_name: &str) -> Result<RoleIdentity, Error> {
        let role = get_role(self, role_name).await?;
        let arn = Some(role.arn().to_owned())
            .filter(|arn| arn.starts_with("arn:"))
            .ok_or_else(|| Error::unreadable("iam:GetRole", "the role ARN"))?;
        Ok(RoleIdentity {
            id: parse_role_id(role.role_id())?,
            trust_policy: trust_policy_of(&role).ok(),
            permissions_boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
            max_session_seconds: role.max_session_duration(),
            arn,
        })
    }

    #[instrument(skip(self))]
    async fn identity_policies(&self, role_name: &str) -> Result<Vec<RolePolicyDocument>, Error> {
        let mut found = Vec::new();
        for name in RolePolicies::list_role_policies(self, role_name).await? {
            // A policy deleted between the list and the read is simply gone.
            if let Some(document) = RolePolicies::get_role_policy(self, role_name, &name).await? {
                found.push(RolePolicyDocument {
                    name,
                    arn: None,
                    document,
                });
            }
        }
        for arn in self.attached_policies(role_name).await? {
            let output = self
                .get_policy()
                .policy_arn(&arn)
                .send()
                .await
                .map_err(|e| from_sdk("iam:GetPolicy", e))?;
            let policy = output
                .policy()
                .ok_or_else(|| Error::unreadable("iam:GetPolicy", format!("the policy {arn}")))?;
            let version = policy.default_version_id().ok_or_else(|| {
                Error::unreadable("iam:GetPolicy", format!("the default version of {arn}"))
            })?;
            let name = policy
                .policy_name()
                .map(str::to_owned)
                .unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(&arn).to_owned());
            let document = self.policy_document(&arn, version).await?;
            found.push(RolePolicyDocument {
                name,
                arn: Some(arn),
                document,
            });
        }
        Ok(found)
    }
}

/// `iam:SimulatePrincipalPolicy` on the role. moto does not implement it, so this adapter is
/// covered with `aws-smithy-mocks` (`tools/doctor/tests/doctor_mocked.rs`).
impl PolicySimulator for aws_sdk_iam::Client {
    #[instrument(skip(self, simulation), fields(actions = ?simulation.actions, resource = %simulation.request.resource))]
    #[expect(
        clippy::too_many_lines,
        reason = "the simulator's request and every field of its answer, read strictly"
    )]
    async fn simulate(&self, simulation: &Simulation) -> Result<Vec<Simulated>, Error> {
        use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
        const SIMULATE: &str = "iam:SimulatePrincipalPolicy";
        let entries: Vec<ContextEntry> = simulation
            .request
            .context
            .iter()
            .map(|(key, values)| {
                let kind = if values.len() == 1 {
                    ContextKeyTypeEnum::String
                } else {
                    ContextKeyTypeEnum::StringList
                };
                ContextEntry::builder()
                    .context_key_name(key)
                    .context_key_type(kind)
                    .set_context_key_values(Some(values.clone()))
                    .build()
            })
            .collect();
        let mut results = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .simulate_principal_policy()
                .policy_source_arn(&simulation.role_arn)
                .set_action_names(Some(simulation.actions.clone()))
                .resource_arns(&simulation.request.resource)
                .set_context_entries(Some(entries.clone()))
                .set_policy_input_list(
                    (!simulation.extra_policies.is_empty())
                        .then(|| simulation.extra_policies.clone()),
                )
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| from_sdk(SIMULATE, e))?;
            results.extend(page.evaluation_results().iter().cloned());
            marker = page
                .is_truncated()
                .then(|| page.marker().map(str::to_owned))
                .flatten();
            if marker.is_none() {
                break;
            }
        }
        let decision = |d: &PolicyEvaluationDecisionType, action: &str| match d {
            PolicyEvaluationDecisionType::Allowed => Ok(Decision::Allowed),
            PolicyEvaluationDecisionType::ImplicitDeny => Ok(Decision::ImplicitDeny),
            PolicyEvaluationDecisionType::ExplicitDeny => Ok(Decision::ExplicitDeny),
            other => Err(Error::unreadable(
                SIMULATE,
                format!("a known decision for {action} (got {})", other.as_str()),
            )),
        };
        simulation
            .actions
            .iter()
            .map(|action| {
                let result = results
                    .iter()
                    .find(|r| r.eval_action_name().eq_ignore_ascii_case(action))
                    .ok_or_else(|| Error::unreadable(SIMULATE, format!("a result for {action}")))?;
                // With resources named, IAM may answer per resource: that answer is the one.
                let specific = result
                    .resource_specific_results()
                    .iter()
                    .find(|r| r.eval_resource_name() == simulation.request.resource);
                let (found, statements, missing) = match specific {
                    Some(r) => (
                        decision(r.eval_resource_decision(), action)?,
                        r.matched_statements(),
                        r.missing_context_values(),
                    ),
                    None => (
                        decision(result.eval_decision(), action)?,
                        result.matched_statements(),
                        result.missing_context_values(),
                    ),
                };
                Ok(Simulated {
                    action: action.clone(),
                    decision: found,
                    matched: statements
                        .iter()
                        .filter_map(|s| s.source_policy_id().map(str::to_owned))
                        .collect(),
                    missing_context: missing.to_vec(),
                })
            })
            .collect()
    }
}

/// The role, by name; a missing role is [`Error::RoleNotFound`].
async fn get_role(
    iam: &aws_sdk_iam::Client,
    role_name: &str,
) -> Result<aws_sdk_iam::types::Role, Error> {
    iam.get_role()
        .role_name(role_name)
        .send()
        .await
        .map_err(|e| role_error("iam:GetRole", role_name, e))?
        .role
        .ok_or_else(|| Error::unreadable("iam:GetRole", "the role"))
}

/// A role id from GetRole that is not `AROA…` is a permanent error, never a guess.
fn parse_role_id(id: &str) -> Result<RoleId, Error> {
    RoleId::parse(id).map_err(|problem| Error::Aws {
        operation: "iam:GetRole",
        code: "UnexpectedRoleId".into(),
        message: problem,
        retryable: false,
    })
}

/// Where IAM Identity Center puts the roles of its permission sets (some accounts add a region).
pub(crate) const SSO_ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

/// Whether `role_name` is the Identity Center role of `permission_set`:
/// `AWSReservedSSO_<set>_<suffix>`, the suffix without `_` (a set named `Data` does not match
/// the role of `Data_Science`).
pub(crate) fn is_role_of_permission_set(role_name: &str, permission_set: &str) -> bool {
    role_name
        .strip_prefix("AWSReservedSSO_")
        .and_then(|rest| rest.strip_prefix(permission_set))
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|suffix| !suffix.is_empty() && !suffix.contains('_'))
}

/// The one role of a permission set among `roles` (name, id), or why not.
pub(crate) fn pick_permission_set_role(
    permission_set: &str,
    roles: Vec<(String, String)>,
) -> Result<ResolvedRole, Error> {
    let mut matching: Vec<(String, String)> = roles
        .into_iter()
        .filter(|(name, _)| is_role_of_permission_set(name, permission_set))
        .collect();
    match matching.len() {
        0 => Err(Error::PermissionSetRoleNotFound {
            permission_set: permission_set.to_owned(),
        }),
        1 => {
            let (name, id) = matching.remove(0);
            let id = RoleId::parse(&id).map_err(|problem| Error::Aws {
                operation: "iam:ListRoles",
                code: "UnexpectedRoleId".into(),
                message: problem,
                retryable: false,
            })?;
            Ok(ResolvedRole { name, id })
        }
        _ => Err(Error::AmbiguousRole {
            permission_set: permission_set.to_owned(),
            roles: matching.into_iter().map(|(name, _)| name).collect(),
        }),
    }
}

impl RolePolicies for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn list_role_policies(&self, role_name: &str) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let mut pages = self
            .list_role_policies()
            .role_name(role_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| role_error("iam:ListRolePolicies", role_name, e))?;
            names.extend(page.policy_names().iter().cloned());
        }
        Ok(names)
    }

    #[instrument(skip(self))]
    async fn get_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
    ) -> Result<Option<String>, Error> {
        let output = unless_missing(
            "iam:GetRolePolicy",
            self.get_role_policy()
                .role_name(role_name)
                .policy_name(policy_name)
                .send()
                .await,
        )?;
        Ok(output.map(|o| decode_policy_document(o.policy_document())))
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn put_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<(), Error> {
        self.put_role_policy()
            .role_name(role_name)
            .policy_name(policy_name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| from_sdk("iam:PutRolePolicy", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn delete_role_policy(&self, role_name: &str, policy_name: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeleteRolePolicy",
            self.delete_role_policy()
                .role_name(role_name)
                .policy_name(policy_name)
                .send()
                .await,
        )
        .map(|_| ())
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto returns them as written.
pub fn decode_policy_document(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        return raw.to_owned();
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

const LIST_POLICIES: &str = "iam:ListPolicies";

impl ManagedPolicies for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn list_policies(&self, path: &str) -> Result<Vec<ManagedPolicy>, Error> {
        use aws_sdk_iam::types::PolicyScopeType;
        let mut found = Vec::new();
        let mut pages = self
            .list_policies()
            .scope(PolicyScopeType::Local)
            .path_prefix(path)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk(LIST_POLICIES, e))?;
            for policy in page.policies() {
                let field = |value: Option<&str>, what: &str| {
                    value
                        .map(str::to_owned)
                        .ok_or_else(|| Error::unreadable(LIST_POLICIES, format!("a policy {what}")))
                };
                found.push(ManagedPolicy {
                    name: field(policy.policy_name(), "name")?,
                    arn: field(policy.arn(), "ARN")?,
                    id: field(policy.policy_id(), "id")?,
                    default_version: field(policy.default_version_id(), "default version")?,
                });
            }
        }
        Ok(found)
    }

    #[instrument(skip(self))]
    async fn attached_policies(&self, role_name: &str) -> Result<Vec<String>, Error> {
        let mut arns = Vec::new();
        let mut pages = self
            .list_attached_role_policies()
            .role_name(role_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| role_error("iam:ListAttachedRolePolicies", role_name, e))?;
            for policy in page.attached_policies() {
                let arn = policy.policy_arn().ok_or_else(|| {
                    Error::unreadable("iam:ListAttachedRolePolicies", "a policy ARN")
                })?;
                arns.push(arn.to_owned());
            }
        }
        Ok(arns)
    }

    #[instrument(skip(self))]
    async fn policy_document(&self, arn: &str, version: &str) -> Result<String, Error> {
        let output = self
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| from_sdk("iam:GetPolicyVersion", e))?;
        // An empty document would read as an empty shard and be planned for deletion.
        let document = output
            .policy_version()
            .and_then(|v| v.document())
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| {
                Error::unreadable("iam:GetPolicyVersion", format!("the document of {arn}"))
            })?;
        Ok(decode_policy_document(document))
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
    ) -> Result<ManagedPolicy, Error> {
        const CREATE: &str = "iam:CreatePolicy";
        let output = self
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .description("ssm-session-owner: per-user TerminateSession/ResumeSession statements")
            .send()
            .await
            .map_err(|e| from_sdk(CREATE, e))?;
        let policy = output
            .policy()
            .ok_or_else(|| Error::unreadable(CREATE, "the new policy"))?;
        let field = |value: Option<&str>, what: &str| {
            value
                .map(str::to_owned)
                .ok_or_else(|| Error::unreadable(CREATE, format!("the new policy's {what}")))
        };
        Ok(ManagedPolicy {
            name: field(policy.policy_name(), "name")?,
            arn: field(policy.arn(), "ARN")?,
            id: field(policy.policy_id(), "id")?,
            default_version: field(policy.default_version_id(), "default version")?,
        })
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, Error> {
        const CREATE: &str = "iam:CreatePolicyVersion";
        let output = self
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| from_sdk(CREATE, e))?;
        output
            .policy_version()
            .and_then(|v| v.version_id())
            .map(str::to_owned)
            .ok_or_else(|| Error::unreadable(CREATE, "the new version's id"))
    }

    #[instrument(skip(self))]
    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, Error> {
        const LIST: &str = "iam:ListPolicyVersions";
        let output = self
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| from_sdk(LIST, e))?;
        output
            .versions()
            .iter()
            .map(|v| {
                Ok(PolicyVersion {
                    id: v
                        .version_id()
                        .ok_or_else(|| Error::unreadable(LIST, "a version id"))?
                        .to_owned(),
                    is_default: v.is_default_version(),
                    created: v
                        .create_date()
                        .ok_or_else(|| Error::unreadable(LIST, "a version's creation date"))?
                        .secs(),
                })
            })
            .collect()
    }

    #[instrument(skip(self))]
    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeletePolicyVersion",
            self.delete_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await,
        )
        .map(|_| ())
    }

    #[instrument(skip(self))]
    async fn attach_role_policy(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        self.attach_role_policy()
            .role_name(role_name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| from_sdk("iam:AttachRolePolicy", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn detach_role_policy(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DetachRolePolicy",
            self.detach_role_policy()
                .role_name(role_name)
                .policy_arn(arn)
                .send()
                .await,
        )
        .map(|_| ())
    }

    #[instrument(skip(self))]
    async fn delete_policy(&self, arn: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeletePolicy",
            self.delete_policy().policy_arn(arn).send().await,
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_set_finds_exactly_its_role() {
        let role = |name: &str, id: &str| (name.to_owned(), id.to_owned());
        let roles = vec![
            role("AWSReservedSSO_Data_0123456789abcdef", "AROADATA00000001"),
            role(
                "AWSReservedSSO_Data_Science_fedcba9876543210",
                "AROASCIENCE00001",
            ),
            role(
                "AWSReservedSSO_Research_aaaabbbbccccdddd",
                "AROARESEARCH0001",
            ),
        ];
        assert_eq!(
            pick_permission_set_role("Data", roles.clone())
                .unwrap()
                .name,
            "AWSReservedSSO_Data_0123456789abcdef"
        );
        assert_eq!(
            pick_permission_set_role("Data_Science", roles.clone())
                .unwrap()
                .name,
            "AWSReservedSSO_Data_Science_fedcba9876543210"
        );
        assert!(matches!(
            pick_permission_set_role("Admin", roles.clone()),
            Err(Error::PermissionSetRoleNotFound { .. })
        ));
        let mut two = roles;
        two.push(role(
            "AWSReservedSSO_Research_1111222233334444",
            "AROARESEARCH0002",
        ));
        let err = pick_permission_set_role("Research", two).unwrap_err();
        assert_eq!(
            err.to_string(),
            "permission set Research matches more than one Identity Center role: AWSReservedSSO_Research_aaaabbbbccccdddd, AWSReservedSSO_Research_1111222233334444"
        );
        assert!(!err.is_retryable());
    }
}
