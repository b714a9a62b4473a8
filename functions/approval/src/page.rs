//! The Function URL's answers: small HTML pages, never cached, never sending
//! the link on as a referrer (it is a credential).

use crate::ports::{ApprovalRequest, KeyError};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use aws_lambda_events::http::header::{HeaderName, HeaderValue};
use aws_lambda_events::http::HeaderMap;
use stepdeploy_shared::approvals::status;

/// What the Function URL answers.
pub type Page = LambdaFunctionUrlResponse;

/// Text made safe to put in HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page titled `title` around `body_html`.
pub fn page(status: u16, title: &str, body_html: &str) -> Page {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><meta name=\"robots\" content=\"noindex\"></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\"><h1>{t}</h1>{body_html}</body></html>",
        t = html_escape(title)
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let mut page = Page::default();
    page.status_code = i64::from(status);
    page.headers = headers;
    page.body = Some(html);
    page.is_base64_encoded = false;
    // The local emulator insists on `cookies` (always serialised, here empty).
    page.cookies = Vec::new();
    page
}

/// Why a valid-looking link cannot be used now.
pub fn refuse(status: u16, why: &str) -> Page {
    page(
        status,
        "This link cannot be used",
        &format!("<p>{}</p><p>Nothing was changed.</p>", html_escape(why)),
    )
}

/// The key cannot be read or is unusable.
pub fn unavailable(e: &KeyError) -> Page {
    match e {
        KeyError::TooShort(_) => refuse(
            503,
            "the approval service is misconfigured (its signing key is too short)",
        ),
        KeyError::Aws(e) => refuse(
            503,
            &format!("the approval service is unavailable ({})", e.operation),
        ),
    }
}

/// The page for a gate that is no longer pending.
pub fn settled(request: &ApprovalRequest) -> Page {
    match request.status.as_str() {
        status::APPROVED | status::SETTLING => refuse(409, "this change was already approved"),
        status::REJECTED => refuse(409, "this change was already rejected"),
        status::EXPIRED => refuse(410, "this approval request expired"),
        _ => refuse(410, "this run has ended"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed response serialises to the JSON the function always answered.
    #[test]
    fn a_page_is_the_function_url_response_it_was() {
        let json = serde_json::to_value(page(200, "T <1>", "<p>b</p>")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "statusCode": 200,
                "headers": {"content-type": "text/html; charset=utf-8", "cache-control": "no-store", "referrer-policy": "no-referrer"},
                "body": "<!doctype html><html><head><meta charset=\"utf-8\"><title>T &lt;1&gt;</title><meta name=\"robots\" content=\"noindex\"></head>\
                         <body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\"><h1>T &lt;1&gt;</h1><p>b</p></body></html>",
                "isBase64Encoded": false,
                "cookies": []
            })
        );
    }
}
