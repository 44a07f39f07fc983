//! Logging in: fly's password grant, tokens, and the browser session flow.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::browser::{Browser, form_action};
use crate::support::{ADMIN, Backend, TestServer};

async fn fly_login_returns_a_working_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.password_grant(ADMIN.0, ADMIN.1).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 3000);
    let token = body["access_token"].as_str().unwrap();

    let user = server.get_json("/api/v1/user", Some(token)).await;
    assert_eq!(user["user_name"], "admin");
    assert_eq!(user["is_admin"], true);
    assert_eq!(user["teams"]["main"][0], "owner");
    server.stop().await;
}

async fn client_credentials_may_come_as_form_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .post(format!("{}/sky/issuer/token", server.url))
        .form(&[
            ("grant_type", "password"),
            ("username", ADMIN.0),
            ("password", ADMIN.1),
            ("client_id", "fly"),
            ("client_secret", "Zmx5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

async fn wrong_credentials_get_401_without_saying_which_part(backend: Backend) {
    let server = TestServer::start(backend).await;
    let wrong_password = server.password_grant(ADMIN.0, "nope").await;
    let unknown_user = server.password_grant("nobody", ADMIN.1).await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_user.status(), 401);
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown_user.json().await.unwrap();
    assert_eq!(a, b, "both failures must look the same");

    let wrong_client = server
        .http
        .post(format!("{}/sky/issuer/token", server.url))
        .basic_auth("fly", Some("wrong"))
        .form(&[("grant_type", "password"), ("username", ADMIN.0), ("password", ADMIN.1)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_client.status(), 401);
    server.stop().await;
}

async fn invalid_or_missing_tokens_are_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(server.get("/api/v1/user", None).await.status(), 401);
    assert_eq!(server.get("/api/v1/user", Some("made-up")).await.status(), 401);
    // Even open routes refuse a token that is presented but invalid.
    assert_eq!(server.get("/api/v1/teams", Some("made-up")).await.status(), 401);
    assert_eq!(server.get("/api/v1/teams", None).await.status(), 200);
    server.stop().await;
}

fn cookie_pairs(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn browser_login_sets_session_cookies_and_checks_csrf(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut browser = Browser::new(&server.url);
    let form = browser.visit("/sky/login?redirect_uri=/teams/main").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<form") && form.body.contains("name=\"password\""));

    let bad = browser.submit_login(&form, ADMIN.0, "nope").await;
    assert_eq!(bad.status, 401);
    assert!(browser.cookie("skymarshal_auth").is_none());

    let login = browser.post_form(&form_action(&form.body), &[("login", ADMIN.0), ("password", ADMIN.1)]).await;
    let callback = login.headers()["location"].to_str().unwrap().to_string();
    let login = browser.get(&callback).await;
    assert_eq!(login.status(), 307);
    let location = login.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/teams/main?csrf_token="), "{location}");
    let cookies = cookie_pairs(&login);
    let auth = cookies.iter().find(|(k, _)| k == "skymarshal_auth").expect("auth cookie").1.clone();
    let csrf = cookies.iter().find(|(k, _)| k == "skymarshal_csrf").expect("csrf cookie").1.clone();
    assert!(location.ends_with(&csrf));
    let cookie_header = format!("skymarshal_auth={auth}; skymarshal_csrf={csrf}");

    let with_cookie = |method: reqwest::Method, path: &str| {
        server.http.request(method, format!("{}{path}", server.url)).header("Cookie", cookie_header.clone())
    };
    let me: Value = with_cookie(reqwest::Method::GET, "/api/v1/user").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user_name"], "admin");

    let team_body = serde_json::json!({ "auth": { "owner": { "users": ["local:admin"] } } });
    let no_csrf = with_cookie(reqwest::Method::PUT, "/api/v1/teams/other").json(&team_body).send().await.unwrap();
    assert_eq!(no_csrf.status(), 401, "a cookie-authenticated change without X-Csrf-Token is refused");
    assert!(cookie_pairs(&no_csrf).iter().any(|(k, v)| k == "skymarshal_auth" && v.is_empty()));
    let wrong_csrf = with_cookie(reqwest::Method::PUT, "/api/v1/teams/other")
        .header("X-Csrf-Token", "forged")
        .json(&team_body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_csrf.status(), 401);
    let ok = with_cookie(reqwest::Method::PUT, "/api/v1/teams/other")
        .header("X-Csrf-Token", &csrf)
        .json(&team_body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);

    // Still logged in: /sky/login goes straight to the target.
    let again = with_cookie(reqwest::Method::GET, "/sky/login?redirect_uri=/").send().await.unwrap();
    assert_eq!(again.status(), 307);

    let logout = with_cookie(reqwest::Method::POST, "/sky/logout").send().await.unwrap();
    assert_eq!(logout.status(), 200);
    let after = with_cookie(reqwest::Method::GET, "/api/v1/user").send().await.unwrap();
    assert_eq!(after.status(), 401, "the session ends at logout");
    server.stop().await;
}

async fn login_refuses_offsite_redirects(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.get("/sky/login?redirect_uri=%2F%2Fevil.example%2F", None).await;
    assert_eq!(response.status(), 400);
    server.stop().await;
}

on_both_backends!(
    fly_login_returns_a_working_token,
    client_credentials_may_come_as_form_fields,
    wrong_credentials_get_401_without_saying_which_part,
    invalid_or_missing_tokens_are_401,
    browser_login_sets_session_cookies_and_checks_csrf,
    login_refuses_offsite_redirects,
);
