//! Team roles and what a request may do with them.

use std::collections::BTreeMap;

use crate::db::{RoleMembers, Team};

/// Roles on a team, weakest first so they compare by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    PipelineOperator,
    Member,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Member, Role::PipelineOperator, Role::Viewer];

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
            Role::PipelineOperator => "pipeline-operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

/// The team whose owners administer atc.
pub const MAIN_TEAM: &str = "main";

/// What the caller of one request is: anonymous, or a user with roles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Access {
    pub user: Option<User>,
    /// The strongest role the user holds on each team.
    pub team_roles: BTreeMap<String, Role>,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub username: String,
    pub connector: String,
    pub sub: String,
}

impl Access {
    pub fn anonymous() -> Access {
        Access::default()
    }

    /// Works out a user's roles from every team's auth configuration.
    pub fn for_user(user: User, teams: &[Team]) -> Access {
        let id = format!("{}:{}", user.connector, user.username);
        let mut team_roles = BTreeMap::new();
        for team in teams {
            let strongest = team
                .auth
                .iter()
                .filter(|(_, members)| holds(members, &id))
                .filter_map(|(role, _)| Role::from_name(role))
                .max();
            if let Some(role) = strongest {
                team_roles.insert(team.name.clone(), role);
            }
        }
        let is_admin = team_roles.get(MAIN_TEAM) == Some(&Role::Owner);
        Access { user: Some(user), team_roles, is_admin }
    }

    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// Whether the caller holds at least `role` on `team` (admins hold every role).
    pub fn has_role(&self, team: &str, role: Role) -> bool {
        self.is_admin || self.team_roles.get(team).is_some_and(|held| *held >= role)
    }

    /// Whether the caller, a member of the step's team, may run a process
    /// in a step of `step_type` (`fly intercept`): a check's step serves
    /// every team that shares the resource, so only admins may enter it.
    pub fn may_intercept(&self, step_type: &str) -> bool {
        self.is_admin || step_type != "check"
    }

    /// The name under which the caller's actions are recorded (`paused_by`, `created_by`).
    pub fn display_name(&self) -> &str {
        self.user.as_ref().map(|u| u.username.as_str()).unwrap_or("")
    }
}

/// A role with no users and no groups listed admits every user, as in
/// Concourse (kept for teams configured before roles existed).
fn holds(members: &RoleMembers, user_id: &str) -> bool {
    (members.users.is_empty() && members.groups.is_empty())
        || members.users.iter().any(|u| u.eq_ignore_ascii_case(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TeamAuth;

    fn team(name: &str, roles: &[(&str, &str)]) -> Team {
        let mut auth = TeamAuth::new();
        for (role, user) in roles {
            auth.entry(role.to_string()).or_default().users.push(user.to_string());
        }
        Team { id: 1, name: name.into(), auth }
    }

    fn user(name: &str) -> User {
        User { username: name.into(), connector: "local".into(), sub: String::new() }
    }

    #[test]
    fn strongest_role_wins_and_ranks_cover_weaker_ones() {
        let teams = [team("dev", &[("viewer", "local:ann"), ("member", "local:ann")])];
        let access = Access::for_user(user("ann"), &teams);
        assert_eq!(access.team_roles.get("dev"), Some(&Role::Member));
        assert!(access.has_role("dev", Role::PipelineOperator));
        assert!(!access.has_role("dev", Role::Owner));
        assert!(!access.has_role("other", Role::Viewer));
        assert!(!access.is_admin);
    }

    #[test]
    fn only_admins_intercept_checks() {
        let teams = [team("main", &[("owner", "local:root")]), team("dev", &[("member", "local:ann")])];
        let member = Access::for_user(user("ann"), &teams);
        assert!(member.may_intercept("task"));
        assert!(member.may_intercept("get"));
        assert!(!member.may_intercept("check"));
        assert!(Access::for_user(user("root"), &teams).may_intercept("check"));
    }

    #[test]
    fn main_team_owners_are_admins_everywhere() {
        let teams = [team("main", &[("owner", "local:root")]), team("dev", &[])];
        let access = Access::for_user(user("ROOT"), &teams);
        assert!(access.is_admin);
        assert!(access.has_role("anything", Role::Owner));
    }
}
