//! A headless browser for the login flow: follows redirects one hop at a
//! time (recording each), keeps the cookies atc sets, and submits forms.

use std::collections::BTreeMap;

/// One browser: its own cookie jar, so two of them are two users.
pub struct Browser {
    http: reqwest::Client,
    /// atc's URL; cookies go to it only.
    base: String,
    cookies: BTreeMap<String, String>,
    /// Every URL requested, in order.
    pub visited: Vec<String>,
}

/// Where following redirects ended.
pub struct Landing {
    pub url: String,
    pub status: reqwest::StatusCode,
    pub body: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: base.to_string(),
            cookies: BTreeMap::new(),
            visited: Vec::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The `Cookie` header this browser sends to atc.
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder, url: &str) -> reqwest::Response {
        self.visited.push(url.to_string());
        let request = if url.starts_with(&self.base) && !self.cookies.is_empty() {
            request.header("Cookie", self.cookie_header())
        } else {
            request
        };
        let response = request.send().await.unwrap_or_else(|err| panic!("request to {url}: {err}"));
        if url.starts_with(&self.base) {
            for set in response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
                let pair = set.split(';').next().unwrap_or("");
                let Some((name, value)) = pair.split_once('=') else { continue };
                if set.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        response
    }

    /// One request, no redirect followed.
    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let url = self.absolute(url);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let url = self.absolute(url);
        self.send(self.http.post(&url).form(form), &url).await
    }

    /// Follows `response`'s redirects (as GETs) to the page they end at.
    pub async fn follow(&mut self, mut response: reqwest::Response) -> Landing {
        let mut url = response.url().to_string();
        for _ in 0..20 {
            if !response.status().is_redirection() {
                let status = response.status();
                return Landing { url, status, body: response.text().await.unwrap_or_default() };
            }
            let location = response.headers()["location"].to_str().unwrap().to_string();
            url = self.absolute(&location);
            response = self.send(self.http.get(&url), &url).await;
        }
        panic!("too many redirects: {:?}", self.visited);
    }

    pub async fn visit(&mut self, url: &str) -> Landing {
        let response = self.get(url).await;
        self.follow(response).await
    }

    /// Submits the login form of `page` as a user would.
    pub async fn submit_login(&mut self, page: &Landing, username: &str, password: &str) -> Landing {
        let action = form_action(&page.body);
        let response = self.post_form(&action, &[("login", username), ("password", password)]).await;
        self.follow(response).await
    }
}

/// The `action` of the first form of a page, unescaped.
pub fn form_action(html: &str) -> String {
    let pattern = regex::Regex::new(r#"<form[^>]*action="([^"]*)""#).unwrap();
    let action = pattern.captures(html).unwrap_or_else(|| panic!("no form in page: {html}"))[1].to_string();
    action.replace("&amp;", "&")
}
