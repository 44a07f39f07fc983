//! The browser login flow as scripts and `fly login` (without `-u`/`-p`)
//! drive it: Concourse's paths, form fields and cookies, fly's loopback
//! callback, and the checks that keep the flow from being forged or turned
//! into an open redirect.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::on_both_backends;
use crate::support::browser::{Browser, form_action};
use crate::support::{ADMIN, Backend, TestServer};

/// Plays `fly login`'s callback server: listens on a loopback port and
/// passes on the `token` of every request, as fly reads it.
struct FlyCallback {
    port: u16,
    tokens: mpsc::UnboundedReceiver<String>,
}

impl FlyCallback {
    async fn listen() -> FlyCallback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, tokens) = mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let sender = sender.clone();
            async move {
                let query = uri.query().unwrap_or("").to_string();
                let token = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(key, _)| key == "token")
                    .map(|(_, value)| value)
                    .unwrap_or_default();
                let _ = sender.send(format!("{} {token}", uri.path()));
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        FlyCallback { port, tokens }
    }

    /// The next token fly received, split as fly splits it: type and value.
    async fn received(&mut self) -> (String, String, String) {
        let got = tokio::time::timeout(Duration::from_secs(10), self.tokens.recv())
            .await
            .expect("fly's callback is called in time")
            .expect("callback server running");
        let (path, token) = got.split_once(' ').unwrap();
        let (kind, value) = token.split_once(' ').unwrap_or_else(|| panic!("token '{token}' is not 'TYPE VALUE'"));
        (path.to_string(), kind.to_string(), value.to_string())
    }
}

fn path_of(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &without_scheme[without_scheme.find('/').unwrap_or(without_scheme.len())..];
    path.split('?').next().unwrap_or("").to_string()
}

async fn user_name(server: &TestServer, token: &str) -> Value {
    server.get_json("/api/v1/user", Some(token)).await["user_name"].clone()
}

async fn fly_login_through_the_browser_hands_fly_a_working_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut fly = FlyCallback::listen().await;
    let mut browser = Browser::new(&server.url);

    // What `fly login -c URL` prints for the user to open.
    let form = browser.visit(&format!("/login?fly_port={}", fly.port)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let paths: Vec<String> = browser.visited.iter().map(|u| path_of(u)).collect();
    assert_eq!(
        paths,
        ["/login", "/sky/login", "/sky/issuer/auth", "/sky/issuer/auth/local", "/sky/issuer/auth/local/login"]
    );
    assert!(form_action(&form.body).starts_with("/sky/issuer/auth/local/login?"));
    assert!(form.body.contains("name=\"login\"") && form.body.contains("name=\"password\""));

    let landed = browser.submit_login(&form, ADMIN.0, ADMIN.1).await;
    assert_eq!(landed.status, 200);
    assert_eq!(path_of(browser.visited.iter().rev().nth(1).unwrap()), "/sky/callback");
    assert!(landed.url.starts_with(&format!("http://127.0.0.1:{}/auth/callback?token=Bearer%20", fly.port)));
    let (path, kind, token) = fly.received().await;
    assert_eq!((path.as_str(), kind.as_str()), ("/auth/callback", "Bearer"));
    assert_eq!(user_name(&server, &token).await, "admin", "fly's token works on the API");
    let session = browser.cookie("skymarshal_auth").expect("the browser is logged in too").to_string();
    assert!(session.starts_with("\"Bearer ") && session.ends_with('"'), "{session}");
    assert!(!session.contains(&token), "fly gets a token of its own");

    // Logged in already: the next `fly login` needs no password.
    let again = browser.visit(&format!("/login?fly_port={}", fly.port)).await;
    assert!(again.url.contains("/auth/callback?token="), "{}", again.url);
    let (_, _, second) = fly.received().await;
    assert_ne!(second, token);
    assert_eq!(user_name(&server, &second).await, "admin");

    // Fly then sends the browser to the success page.
    let success = browser.visit("/fly_success?noop=true").await;
    assert_eq!(success.status, 200);
    assert!(success.body.contains("sent to fly"));
    server.stop().await;
}

async fn browser_login_returns_to_the_page_with_a_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut browser = Browser::new(&server.url);
    let form = browser.visit("/sky/login?redirect_uri=/teams/main").await;
    let failed = browser.submit_login(&form, ADMIN.0, "wrong").await;
    assert_eq!(failed.status, 401);
    assert!(failed.body.contains("invalid username or password"));
    assert!(browser.cookie("skymarshal_auth").is_none());

    let response = browser.post_form(&form_action(&form.body), &[("login", ADMIN.0), ("password", ADMIN.1)]).await;
    assert_eq!(response.status(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with("/sky/callback?code="), "{callback}");
    let response = browser.get(&callback).await;
    assert!(response.status().is_redirection());
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let csrf = browser.cookie("skymarshal_csrf").expect("csrf cookie").to_string();
    assert_eq!(location, format!("/teams/main?csrf_token={csrf}"));
    let me: Value = server
        .http
        .get(format!("{}/api/v1/user", server.url))
        .header("Cookie", browser.cookie_header())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_name"], "admin");
    server.stop().await;
}

async fn logins_cannot_be_forged_or_replayed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut attacker = Browser::new(&server.url);
    let mut victim = Browser::new(&server.url);
    let form = attacker.visit("/sky/login?redirect_uri=/").await;
    let action = form_action(&form.body);

    // A page elsewhere making the victim post the attacker's credentials.
    let forged = victim.post_form(&action, &[("login", ADMIN.0), ("password", ADMIN.1)]).await;
    assert_eq!(forged.status(), 400);
    let body: Value = forged.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("start again at /sky/login"), "{body}");
    // Nor can the victim's own login cookie stand in for the attacker's.
    victim.visit("/sky/login").await;
    assert!(victim.cookie("skymarshal_login").is_some());
    let forged = victim.post_form(&action, &[("login", ADMIN.0), ("password", ADMIN.1)]).await;
    assert_eq!(forged.status(), 400);
    assert_eq!(victim.get(&action).await.status(), 400, "the form is not shown to another browser");

    // The attacker's finished login, replayed in the victim's browser.
    let response = attacker.post_form(&action, &[("login", ADMIN.0), ("password", ADMIN.1)]).await;
    let callback = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(victim.get(&callback).await.status(), 400);
    assert!(victim.cookie("skymarshal_auth").is_none());

    // The code is good once, in the browser that logged in.
    assert!(attacker.get(&callback).await.status().is_redirection());
    assert!(attacker.cookie("skymarshal_auth").is_some());
    assert_eq!(attacker.get(&callback).await.status(), 400);
    assert_eq!(attacker.get("/sky/callback?state=made-up&code=made-up").await.status(), 400);
    assert_eq!(attacker.get("/sky/callback?error=access_denied").await.status(), 400);
    server.stop().await;
}

async fn login_targets_are_this_server_or_fly_on_loopback(backend: Backend) {
    let server = TestServer::start(backend).await;
    for target in [
        "https%3A%2F%2Fevil.example%2F",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "http%3A%2F%2Fevil.example%3A4000%2Fauth%2Fcallback",
        "http%3A%2F%2F127.0.0.1%3A4000%2Felsewhere",
    ] {
        let response = server.get(&format!("/sky/login?redirect_uri={target}"), None).await;
        assert_eq!(response.status(), 400, "{target}");
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"][0].as_str().unwrap().contains("redirect_uri"), "{body}");
    }
    for port in ["0", "abc", "70000", "-1"] {
        assert_eq!(server.get(&format!("/login?fly_port={port}"), None).await.status(), 400, "{port}");
        assert_eq!(server.get(&format!("/fly_success?fly_port={port}"), None).await.status(), 400, "{port}");
    }
    let to_fly = server.get("/fly_success?fly_port=4567", None).await;
    assert_eq!(to_fly.headers()["location"], "/sky/login?redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fauth%2Fcallback");
    // The flow's own steps refuse requests that are not part of a login.
    assert_eq!(server.get("/sky/issuer/auth", None).await.status(), 400);
    assert_eq!(server.get("/sky/issuer/auth/local/login?state=x", None).await.status(), 400);
    server.stop().await;
}

on_both_backends!(
    fly_login_through_the_browser_hands_fly_a_working_token,
    browser_login_returns_to_the_page_with_a_session,
    logins_cannot_be_forged_or_replayed,
    login_targets_are_this_server_or_fly_on_loopback,
);
