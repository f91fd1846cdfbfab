//! moto with every request of the code under test counted.

use crate::{create_role, rewrite, role_id_of, run_instances, sample_event, Moto, REGION};

/// moto with the users' role, one client set for the code under test (every request it sends
/// is counted) and one for the test to seed and read back moto (not counted).
pub struct CountedMoto {
    pub moto: Moto,
    pub clients: shared::aws::Clients,
    pub counter: shared::aws::CallCounter,
    pub admin: shared::aws::Clients,
    pub role_name: String,
    pub role_id: shared::domain::ids::RoleId,
}

impl CountedMoto {
    pub async fn start(role: &str) -> Self {
        let moto = Moto::start().expect("moto starts");
        let sdk = moto.sdk_config().await;
        let counter = shared::aws::CallCounter::default();
        let clients = shared::aws::Clients::with_counter(&sdk, Some(counter.clone()));
        let admin = shared::aws::Clients::new(&sdk);
        let role_id = role_id_of(&create_role(&admin.iam, role).await);
        Self {
            moto,
            clients,
            counter,
            admin,
            role_name: role.to_owned(),
            role_id,
        }
    }

    /// The users' role as the stores take it.
    pub fn role(&self) -> shared::domain::ids::ResolvedRole {
        shared::domain::ids::ResolvedRole {
            name: self.role_name.clone(),
            id: self.role_id.clone(),
        }
    }

    /// An instance as the owner-tagger leaves it: `CreatedBy` and `AwsUserId` for `name`.
    pub async fn launch_for(&self, name: &str) -> String {
        let value = format!("{}:{name}", self.role_id);
        run_instances(
            &self.admin.ec2,
            1,
            &[("CreatedBy", name), ("AwsUserId", &value)],
        )
        .await
        .remove(0)
    }
}

impl CountedMoto {
    /// Configuration for the session-policy function against this moto. moto has no SSM
    /// session APIs, so ending sessions on termination is off.
    pub fn session_config(&self, role: &str) -> shared::Config {
        shared::Config::from_lookup(|k| match k {
            "SESSION_ROLE_NAME" => Some(role.into()),
            "SESSION_ROLE_ID" => Some(self.role_id.to_string()),
            "END_SESSIONS_ON_TERMINATE" => Some("false".into()),
            "REGIONS" => Some(REGION.into()),
            _ => None,
        })
        .expect("valid test configuration")
    }
}

impl CountedMoto {
    /// `events/tag-change-user-id-added.json` for this instance and user of the users' role.
    pub fn tag_event(&self, instance_id: &str, name: &str) -> serde_json::Value {
        let value = format!("{}:{name}", self.role_id);
        rewrite(
            &sample_event("tag-change-user-id-added.json"),
            &[
                ("i-0a1b2c3d4e5f60001", instance_id),
                ("AROAEXAMPLEROLEID1234:tim.malone", &value),
            ],
        )
    }

    /// `events/state-change-terminated.json` for this instance.
    pub fn terminated_event(&self, instance_id: &str) -> serde_json::Value {
        rewrite(
            &sample_event("state-change-terminated.json"),
            &[("i-0a1b2c3d4e5f60006", instance_id)],
        )
    }

    /// Terminate an instance in moto.
    pub async fn terminate(&self, instance_id: &str) {
        self.admin
            .ec2
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .expect("moto TerminateInstances");
    }
}
