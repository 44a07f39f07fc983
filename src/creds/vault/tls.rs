//! The HTTP client atc talks to Vault with, made once from the settings
//! (CAs to trust, a client certificate, `server_name`), so that a bad
//! certificate stops start-up instead of the first lookup. vaultrs's own
//! client cannot check the certificate against another name than the
//! URL's host; this one can.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest13::dns::{Addrs, Name, Resolve, Resolving};

use super::config::{VaultConfig, VaultConfigError};
use crate::creds::endpoint::Endpoint;

/// PEM material: a file a flag names, or the text a var source holds (as
/// Concourse takes each).
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Text(String),
}

impl fmt::Debug for Pem {
    /// Never the text: it may be a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "File({})", path.display()),
            Pem::Text(_) => f.write_str("Text(..)"),
        }
    }
}

impl Pem {
    fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())),
            Pem::Text(text) => Ok(text.as_bytes().to_vec()),
        }
    }
}

/// The client, and the base URL its requests go to (the URL, with
/// `server_name` as its host when one is set).
pub fn http_client(config: &VaultConfig) -> Result<(reqwest13::Client, String), VaultConfigError> {
    let error = |key: &str, message: String| VaultConfigError { setting: (config.names)(key), message };
    // reqwest's rustls needs a process-wide crypto provider: ring, as the rest of atc.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest13::ClientBuilder::new()
        .timeout(config.query_timeout)
        .tls_danger_accept_invalid_certs(config.insecure_skip_verify);
    if let Some(ca) = &config.ca_cert {
        let certs = reqwest13::Certificate::from_pem_bundle(&ca.bytes().map_err(|e| error("ca_cert", e))?)
            .map_err(|e| error("ca_cert", format!("not PEM certificates: {e}")))?;
        builder = builder.tls_certs_merge(certs);
    }
    if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
        let mut pem = cert.bytes().map_err(|e| error("client_cert", e))?;
        pem.push(b'\n');
        pem.extend(key.bytes().map_err(|e| error("client_key", e))?);
        let identity = reqwest13::Identity::from_pem(&pem).map_err(|e| error("client_cert", e.to_string()))?;
        builder = builder.identity(identity);
    }
    let mut base = config.url.clone();
    if let Some(name) = &config.server_name {
        // Connect to the URL's host, but greet and check the server as `name`.
        let endpoint = Endpoint::of(&config.url);
        let (scheme, rest) = config.url.split_once("://").unwrap_or(("https", &config.url));
        let path = rest.find('/').map_or("", |slash| &rest[slash..]);
        let port = endpoint.port.unwrap_or(if scheme == "https" { 443 } else { 80 });
        base = format!("{scheme}://{name}:{port}{path}");
        builder = builder.dns_resolver(Arc::new(ServerName { name: name.clone(), host: endpoint.host }));
    }
    let client = builder.build().map_err(|e| error("url", format!("cannot set up the HTTP client: {e}")))?;
    Ok((client, base))
}

/// Resolves the server name to the URL's host, looked up at each
/// connection; any other name as usual.
struct ServerName {
    name: String,
    host: String,
}

impl Resolve for ServerName {
    fn resolve(&self, name: Name) -> Resolving {
        let host = if name.as_str() == self.name { self.host.clone() } else { name.as_str().to_string() };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
