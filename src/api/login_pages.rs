//! The HTML pages of the browser login, from `web/`, with every value
//! filled in escaped.

use axum::response::Html;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The local connector's password form, posting `login` and `password` to
/// `action`; `username` is kept after a failed attempt.
pub fn password_form(action: &str, username: &str, error: Option<&str>) -> Html<String> {
    const TEMPLATE: &str = include_str!("../../web/login.html");
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    Html(
        TEMPLATE
            .replace("{{error}}", &error)
            .replace("{{action}}", &escape(action))
            .replace("{{username}}", &escape(username)),
    )
}

/// Where fly's callback server sends the browser once it has its token.
pub fn fly_success() -> Html<&'static str> {
    Html(include_str!("../../web/fly_success.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let page = password_form("/sky/issuer/auth/local/login?back=&state=a", "<b>\"me\"</b>", Some("x & y")).0;
        assert!(page.contains("action=\"/sky/issuer/auth/local/login?back=&amp;state=a\""));
        assert!(page.contains("value=\"&lt;b&gt;&quot;me&quot;&lt;/b&gt;\""));
        assert!(page.contains("x &amp; y"));
        assert!(!page.contains("{{"));
    }
}
