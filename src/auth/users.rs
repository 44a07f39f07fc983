//! Local users given by `--add-local-user`.

use sha2::{Digest, Sha256};

/// A local user and how to check their password: a bcrypt hash as given, or
/// a digest of a plain password (never kept in memory as given).
#[derive(Clone)]
pub struct LocalUser {
    pub username: String,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Bcrypt(String),
    Sha256([u8; 32]),
}

impl std::fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalUser({}, password redacted)", self.username)
    }
}

/// A `--add-local-user` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLocalUser {
    #[error("must be USERNAME:PASSWORD")]
    NotUserPassword,
    #[error("username must not be empty")]
    EmptyUsername,
    #[error("password of '{username}' must not be empty")]
    EmptyPassword { username: String },
    /// A bcrypt hash cheaper than Concourse accepts (cost below 10).
    #[error("bcrypt hash of '{username}' must have a cost of at least 10")]
    WeakBcryptHash { username: String },
}

impl LocalUser {
    pub fn new(username: &str, password: &str) -> LocalUser {
        let secret = if is_bcrypt_hash(password) {
            Secret::Bcrypt(password.to_string())
        } else {
            Secret::Sha256(Sha256::digest(password.as_bytes()).into())
        };
        LocalUser { username: username.to_string(), secret }
    }

    /// Parses `USERNAME:PASSWORD` as the flag takes it.
    pub fn parse_flag(value: &str) -> Result<LocalUser, InvalidLocalUser> {
        let (username, password) = value.split_once(':').ok_or(InvalidLocalUser::NotUserPassword)?;
        if username.is_empty() {
            return Err(InvalidLocalUser::EmptyUsername);
        }
        if password.is_empty() {
            return Err(InvalidLocalUser::EmptyPassword { username: username.to_string() });
        }
        if is_bcrypt_hash(password) {
            let cost: u32 = password[4..6].parse().unwrap_or(0);
            if cost < 10 {
                return Err(InvalidLocalUser::WeakBcryptHash { username: username.to_string() });
            }
        }
        Ok(LocalUser::new(username, password))
    }

    pub fn verify(&self, password: &str) -> bool {
        match &self.secret {
            Secret::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Secret::Sha256(digest) => {
                let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
                constant_time_eq(&given, digest)
            }
        }
    }
}

fn is_bcrypt_hash(value: &str) -> bool {
    value.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| value.starts_with(p))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Every local user atc knows.
#[derive(Debug, Clone, Default)]
pub struct LocalUsers(Vec<LocalUser>);

impl LocalUsers {
    pub fn new(users: Vec<LocalUser>) -> LocalUsers {
        LocalUsers(users)
    }

    /// The username when the credentials match a local user. Which part was
    /// wrong is deliberately not told apart.
    pub fn authenticate(&self, username: &str, password: &str) -> Option<&str> {
        let user = self.0.iter().find(|u| u.username == username)?;
        user.verify(password).then_some(user.username.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|u| u.username.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_passwords_verify() {
        let user = LocalUser::parse_flag("alice:s3cret:with:colons").unwrap();
        assert_eq!(user.username, "alice");
        assert!(user.verify("s3cret:with:colons"));
        assert!(!user.verify("s3cret"));
    }

    #[test]
    fn bcrypt_hashes_verify() {
        let hash = bcrypt::hash("hunter22", 10).unwrap();
        let user = LocalUser::parse_flag(&format!("bob:{hash}")).unwrap();
        assert!(user.verify("hunter22"));
        assert!(!user.verify(&hash));
    }

    #[test]
    fn rejects_malformed_flags() {
        assert!(LocalUser::parse_flag("nopassword").is_err());
        assert!(LocalUser::parse_flag(":pw").is_err());
        assert!(LocalUser::parse_flag("user:").is_err());
        let weak = bcrypt::hash("pw", 4).unwrap();
        assert!(LocalUser::parse_flag(&format!("u:{weak}")).is_err());
    }

    #[test]
    fn authenticate_needs_both_parts_right() {
        let users = LocalUsers::new(vec![LocalUser::new("a", "pw")]);
        assert_eq!(users.authenticate("a", "pw"), Some("a"));
        assert_eq!(users.authenticate("a", "nope"), None);
        assert_eq!(users.authenticate("b", "pw"), None);
    }
}
