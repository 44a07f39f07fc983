//! The server a credential manager's requests go to, as its CLIENT spans
//! name it (`server.address`, `server.port`).

/// The server requests go to, as spans name it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: Option<u16>,
}

impl Endpoint {
    /// The host and port of `url` (checked to be http(s) with a host).
    pub fn of(url: &str) -> Endpoint {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => match port.parse() {
                Ok(port) => Endpoint { host: host.trim_matches(['[', ']']).to_string(), port: Some(port) },
                Err(_) => Endpoint { host: authority.to_string(), port: None },
            },
            _ => Endpoint { host: authority.trim_matches(['[', ']']).to_string(), port: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_urls_host_and_port() {
        let of = |url| {
            let endpoint = Endpoint::of(url);
            (endpoint.host, endpoint.port)
        };
        assert_eq!(of("http://127.0.0.1:8200"), ("127.0.0.1".into(), Some(8200)));
        assert_eq!(of("https://vault.example.com/"), ("vault.example.com".into(), None));
        assert_eq!(of("https://[::1]:8200/v1"), ("::1".into(), Some(8200)));
    }
}
