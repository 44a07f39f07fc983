//! Who a request comes from and what they may do: local users, opaque access
//! tokens, team roles.

pub mod roles;
mod tokens;
mod users;

pub use roles::{Access, Role, User};
pub use tokens::{IssuedToken, TokenService, hash_token, random_secret};
pub use users::{LocalUser, LocalUsers};
