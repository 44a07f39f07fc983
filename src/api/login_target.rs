//! Where a login may send the browser when it is done: a page of this
//! server, or the callback `fly login` listens on at a loopback port. Any
//! other target would make the login an open redirect (or hand a token to
//! another host), so everything else is refused.

/// A checked `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginTarget {
    /// A path on this server (with its query), e.g. `/teams/main`.
    Path(String),
    /// `fly login`'s callback server: `http://{host}:{port}/auth/callback`.
    Fly { host: &'static str, port: u16 },
}

/// A `redirect_uri` that would send the browser (and its token) elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "redirect_uri must be a path on this server or fly's callback (http://127.0.0.1:PORT{FLY_CALLBACK_PATH}), not '{0}'"
)]
pub struct ForeignLoginTarget(pub String);

/// The path fly's callback server is sent to.
const FLY_CALLBACK_PATH: &str = "/auth/callback";

impl LoginTarget {
    /// Checks an (already URL-decoded) `redirect_uri`; empty means `/`.
    pub fn parse(raw: &str) -> Result<LoginTarget, ForeignLoginTarget> {
        if raw.is_empty() {
            return Ok(LoginTarget::Path("/".into()));
        }
        if let Some(target) = fly_callback(raw) {
            return Ok(target);
        }
        // `//host` and `/\host` are other hosts to a browser; control
        // characters could split the Location header.
        let local =
            raw.starts_with('/') && !raw.starts_with("//") && !raw.contains('\\') && !raw.chars().any(char::is_control);
        if local { Ok(LoginTarget::Path(raw.to_string())) } else { Err(ForeignLoginTarget(raw.to_string())) }
    }

    /// The target's form in a `redirect_uri` (and in the database).
    pub fn as_uri(&self) -> String {
        match self {
            LoginTarget::Path(path) => path.clone(),
            LoginTarget::Fly { host, port } => fly_callback_uri(host, *port),
        }
    }
}

/// The callback of a `fly login` listening on `port` of this machine.
pub fn fly_callback_uri(host: &str, port: u16) -> String {
    format!("http://{host}:{port}{FLY_CALLBACK_PATH}")
}

/// A port fly could listen on, as `fly_port` gives it.
pub fn parse_port(raw: &str) -> Option<u16> {
    let all_digits = !raw.is_empty() && raw.len() <= 5 && raw.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| raw.parse().ok()).flatten().filter(|port| *port != 0)
}

fn fly_callback(raw: &str) -> Option<LoginTarget> {
    let rest = raw.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/')?);
    if path != FLY_CALLBACK_PATH {
        return None;
    }
    let (host, port) = authority.split_once(':')?;
    let host = match host {
        "127.0.0.1" => "127.0.0.1",
        "localhost" => "localhost",
        _ => return None,
    };
    Some(LoginTarget::Fly { host, port: parse_port(port)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_fly_callbacks_are_targets() {
        assert_eq!(LoginTarget::parse(""), Ok(LoginTarget::Path("/".into())));
        assert_eq!(LoginTarget::parse("/teams/main?x=%2F"), Ok(LoginTarget::Path("/teams/main?x=%2F".into())));
        assert_eq!(
            LoginTarget::parse("http://127.0.0.1:4567/auth/callback"),
            Ok(LoginTarget::Fly { host: "127.0.0.1", port: 4567 })
        );
        assert_eq!(
            LoginTarget::parse("http://localhost:1/auth/callback"),
            Ok(LoginTarget::Fly { host: "localhost", port: 1 })
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "teams/main",
            "/a\r\nSet-Cookie: x=y",
            "javascript:alert(1)",
            "http://127.0.0.1:4567/elsewhere",
            "http://127.0.0.1:4567/auth/callback?next=https://evil.example",
            "http://127.0.0.1.evil.example:4567/auth/callback",
            "http://evil.example:4567/auth/callback",
            "http://user@127.0.0.1:4567/auth/callback",
            "https://127.0.0.1:4567/auth/callback",
            "http://127.0.0.1:0/auth/callback",
            "http://127.0.0.1:65536/auth/callback",
            "http://127.0.0.1:+80/auth/callback",
            "http://127.0.0.1/auth/callback",
        ] {
            assert!(LoginTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
