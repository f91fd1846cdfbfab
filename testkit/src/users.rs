//! The users' role id and session names the tests use.

/// A role id the test knows to be valid (moto's ids are).
pub fn role_id_of(id: &str) -> shared::domain::ids::RoleId {
    shared::domain::ids::RoleId::parse(id).expect("valid role id")
}

/// The users' role as the stores take it: its name and id.
pub fn resolved(name: &str, id: &str) -> shared::domain::ids::ResolvedRole {
    shared::domain::ids::ResolvedRole {
        name: name.to_owned(),
        id: role_id_of(id),
    }
}

/// A session name the test knows to be valid.
pub fn user(name: &str) -> shared::domain::session_name::SessionName {
    shared::domain::session_name::SessionName::parse(name).expect("valid test username")
}
