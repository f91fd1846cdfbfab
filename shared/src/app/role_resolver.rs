//! The users' role id (`AROA…`): from config, or one GetRole per process.

use tokio::sync::OnceCell;
use tracing::info;

use crate::config::Config;
use crate::domain::ids::RoleId;
use crate::error::Error;
use crate::ports::RoleDirectory;

pub struct RoleIdCache {
    role_name: String,
    cell: OnceCell<RoleId>,
}

impl RoleIdCache {
    pub fn new(config: &Config) -> Self {
        let cell = match &config.session_role_id {
            Some(id) => OnceCell::new_with(Some(id.clone())),
            None => OnceCell::new(),
        };
        Self {
            role_name: config.session_role_name.clone(),
            cell,
        }
    }

    /// The id, resolving it on first use. A failure is not cached, so the next event retries.
    pub async fn get<R: RoleDirectory + Sync>(&self, iam: &R) -> Result<&RoleId, Error> {
        self.cell
            .get_or_try_init(|| async {
                let id = iam.role_id(&self.role_name).await?;
                info!(role_name = %self.role_name, role_id = %id, "resolved the users' role id");
                Ok(id)
            })
            .await
    }
}
