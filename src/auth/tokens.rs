//! Opaque access tokens: random, handed out once, stored only as a SHA-256
//! digest, expiring after `--auth-duration`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::{AccessToken, Db, DbResult};

/// Digest under which a token is stored and looked up.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes, URL-safe: tokens, CSRF secrets, login nonces and codes.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token just issued: the only moment its value is known.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub value: String,
    pub csrf_token: String,
    pub expires_in: Duration,
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct TokenService {
    db: Db,
    lifetime: Duration,
}

impl TokenService {
    pub fn new(db: Db, lifetime: Duration) -> TokenService {
        TokenService { db, lifetime }
    }

    pub async fn issue(&self, username: &str, connector: &str) -> DbResult<IssuedToken> {
        let value = random_secret();
        let csrf_token = random_secret();
        let expires_at = crate::db::now().saturating_add(self.lifetime.as_secs() as i64);
        let sub = format!("{connector}:{username}");
        self.db
            .save_access_token(
                &hash_token(&value),
                &AccessToken {
                    username: username.to_string(),
                    connector: connector.to_string(),
                    sub: sub.clone(),
                    csrf_token: csrf_token.clone(),
                    expires_at,
                },
            )
            .await?;
        self.db.record_login(username, connector, &sub).await?;
        Ok(IssuedToken { value, csrf_token, expires_in: self.lifetime, expires_at })
    }

    /// The token's record when it exists and has not expired.
    pub async fn verify(&self, value: &str) -> DbResult<Option<AccessToken>> {
        self.db.find_access_token(&hash_token(value)).await
    }

    pub async fn revoke(&self, value: &str) -> DbResult<()> {
        self.db.delete_access_token(&hash_token(value)).await
    }
}
