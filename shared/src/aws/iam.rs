//! IAM: the users' role, its inline policies, and the customer-managed shards.

use tracing::instrument;

use super::sdk_error::{from_sdk, role_error, unless_missing};
use crate::domain::ids::RoleId;
use crate::error::Error;
use crate::ports::{ManagedPolicies, ManagedPolicy, PolicyVersion, RoleDirectory, RolePolicies};

impl RoleDirectory for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn role_id(&self, role_name: &str) -> Result<RoleId, Error> {
        let output = self
            .get_role()
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| role_error("iam:GetRole", role_name, e))?;
        let id = output
            .role()
            .map(|r| r.role_id())
            .ok_or_else(|| Error::unreadable("iam:GetRole", "the role"))?;
        RoleId::parse(id).map_err(|problem| Error::Aws {
            operation: "iam:GetRole",
            code: "UnexpectedRoleId".into(),
            message: problem,
            retryable: false,
        })
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
