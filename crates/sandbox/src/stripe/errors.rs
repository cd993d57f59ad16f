//! Stripe's error responses: `{"error": {"type", "code", "message", "param", "doc_url"}}`.

use axum::response::Response;
use http::StatusCode;

use crate::json::Obj;

use super::respond;

/// A Stripe API error, rendered in Stripe's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StripeError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
}

impl StripeError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    /// `parameter_unknown`: a parameter the endpoint does not take.
    pub(crate) fn unknown_param(param: &str) -> Self {
        Self {
            code: Some("parameter_unknown"),
            ..Self::invalid(format!("Received unknown parameter: {param}"), Some(param))
        }
    }

    /// `resource_missing`: no such object (404 for a path id, 400 for a parameter).
    pub(crate) fn missing(object: &str, id: &str, param: &str, status: StatusCode) -> Self {
        Self {
            status,
            code: Some("resource_missing"),
            ..Self::invalid(format!("No such {object}: '{id}'"), Some(param))
        }
    }

    /// An integer parameter that is not one.
    pub(crate) fn invalid_integer(param: &str, value: &str) -> Self {
        Self {
            code: Some("parameter_invalid_integer"),
            ..Self::invalid(format!("Invalid integer: {value}"), Some(param))
        }
    }

    /// 401 for a missing or wrong key.
    pub(crate) fn unauthorized(message: String) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::invalid(message, None)
        }
    }

    /// 429 from the rate limiter.
    pub(crate) fn rate_limited() -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: Some("rate_limit"),
            ..Self::invalid(
                "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
                None,
            )
        }
    }

    /// 500 `api_error`.
    pub(crate) fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            code: None,
            message: "Sorry, something went wrong on Stripe's end. Please try again.".to_owned(),
            param: None,
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> String {
        let mut s = String::with_capacity(256);
        let mut top = Obj::new(&mut s);
        {
            let mut e = top.obj("error");
            if let Some(code) = self.code {
                e.str("code", code).str(
                    "doc_url",
                    &format!(
                        "https://stripe.com/docs/error-codes/{}",
                        code.replace('_', "-")
                    ),
                );
            }
            e.str("message", &self.message);
            if let Some(param) = &self.param {
                e.str("param", param);
            }
            e.str("type", self.kind);
            e.end();
        }
        top.end();
        s
    }

    pub(crate) fn into_response(self) -> Response {
        respond(self.status, self.body())
    }
}

/// "sk_test_abcd...wxyz" with everything but the mode prefix and the last four
/// characters masked, as Stripe does.
pub(crate) fn redact_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(i, _)| key[..=i].chars().count())
        .unwrap_or(0);
    if chars.len() < prefix_len + 8 {
        return format!(
            "{}{}",
            chars[..prefix_len].iter().collect::<String>(),
            "*".repeat(4)
        );
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    let head: String = chars[..prefix_len].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - prefix_len - 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted() {
        assert_eq!(redact_key("sk_test_abcdefghijkl"), "sk_test_********ijkl");
        assert_eq!(redact_key("sk_test_ab"), "sk_test_****");
        assert_eq!(redact_key("short"), "****");
    }

    #[test]
    fn error_body_shape() {
        let e = StripeError::missing(
            "customer",
            "cus_x",
            "starting_after",
            StatusCode::BAD_REQUEST,
        );
        assert_eq!(
            e.body(),
            r#"{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such customer: 'cus_x'","param":"starting_after","type":"invalid_request_error"}}"#
        );
    }
}
