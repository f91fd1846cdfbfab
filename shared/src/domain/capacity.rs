//! Capacity, pure: a grant that does not fit, and the one measure of headroom every report
//! and log line uses.

use crate::domain::ids::RoleId;
use crate::domain::session_name::SessionName;
use crate::domain::settings::StoreKind;
use crate::domain::shard_packing::typical_user_cost;
use crate::domain::statements::inline_size;

/// The length of a typical username: the unit of "headroom in users".
pub(crate) const TYPICAL_NAME_LEN: usize = 10;

/// A store's policy characters: in use, and available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub used: usize,
    pub available: usize,
}

impl Capacity {
    /// Characters in use, in percent of those available (100 when none are).
    pub fn used_percent(self) -> usize {
        (self.used * 100).checked_div(self.available).unwrap_or(100)
    }
}

/// A grant that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub user: SessionName,
    pub needed: usize,
    pub used: usize,
    pub budget: usize,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session policy budget full: granting {} needs {} characters, the role's policies already use {} of {} (whitespace not counted)",
            self.user, self.needed, self.used, self.budget
        )
    }
}

/// How many more users of a typical (10-character) name fit in `available` characters of
/// which `used` are taken, in the store of kind `store`.
pub(crate) fn headroom_users(
    store: StoreKind,
    role_id: &RoleId,
    used: usize,
    available: usize,
) -> usize {
    let per_user = match store {
        StoreKind::Managed => typical_user_cost(role_id),
        StoreKind::Inline => inline_size(role_id, TYPICAL_NAME_LEN),
    };
    available.saturating_sub(used) / per_user.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_counts_whole_users_of_a_typical_name_and_never_underflows() {
        let role = RoleId::parse("AROARZPUZDIKBSV3HPLXQ").unwrap();
        let per_inline = inline_size(&role, TYPICAL_NAME_LEN);
        assert_eq!(
            headroom_users(StoreKind::Inline, &role, 0, per_inline * 3),
            3
        );
        assert_eq!(
            headroom_users(StoreKind::Inline, &role, 1, per_inline * 3),
            2
        );
        assert_eq!(
            headroom_users(StoreKind::Managed, &role, 0, typical_user_cost(&role) * 7),
            7
        );
        assert_eq!(headroom_users(StoreKind::Managed, &role, 900, 100), 0);
    }
}
