//! `POST /services/oauth2/token`: the refresh-token, client-credentials and
//! JWT-bearer grants.
//!
//! The JWT-bearer assertion is checked for structure (three base64url parts,
//! a JSON header with `alg: RS256`) and claims (`iss` = client id, `sub` =
//! username, `aud` = a Salesforce login URL or the sandbox itself, `exp` in the
//! future). Its signature is not verified: the sandbox holds no certificate.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::hash::h;
use crate::json::Obj;
use crate::state::lock;

use super::data::make_id;
use super::errors::oauth_error;
use super::schema::SObject;
use super::{Shared, respond_json};

/// The org id every token belongs to.
const ORG_ID: &str = "00D5g000004weftEAA";

/// Audiences a JWT-bearer assertion may name (besides the sandbox's own URL).
const AUDIENCES: &[&str] = &[
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

pub(super) async fn token(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let instance_url = format!("http://{host}");
    let (basic_id, basic_secret) = basic_credentials(&headers);
    let client_id = param("client_id").map(str::to_owned).or(basic_id);
    let client_secret = param("client_secret").map(str::to_owned).or(basic_secret);
    let client_ok = client_id.as_deref() == Some(st.auth.client_id.as_str())
        && client_secret.as_deref() == Some(st.auth.client_secret.as_str());
    match param("grant_type") {
        Some("refresh_token") => {
            if client_id.as_deref() != Some(st.auth.client_id.as_str()) {
                return oauth_error("invalid_client_id", "client identifier invalid");
            }
            if !client_ok {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            if param("refresh_token") != Some(st.auth.refresh_token.as_str()) {
                return oauth_error("invalid_grant", "expired access/refresh token");
            }
        }
        Some("client_credentials") => {
            if !client_ok {
                return oauth_error("invalid_client", "invalid client credentials");
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(assertion) = param("assertion") else {
                return oauth_error("invalid_grant", "invalid assertion");
            };
            if let Err((error, description)) = check_jwt(&st, assertion, &instance_url) {
                return oauth_error(error, description);
            }
        }
        Some(_) => return oauth_error("unsupported_grant_type", "grant type not supported"),
        None => return oauth_error("invalid_request", "grant type not supported"),
    }
    issue(&st, &instance_url)
}

/// `Authorization: Basic base64(id:secret)`, if present.
fn basic_credentials(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let decoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((id, secret)) => (Some(id.to_owned()), Some(secret.to_owned())),
        None => (None, None),
    }
}

fn check_jwt(
    st: &super::SalesforceState,
    assertion: &str,
    instance_url: &str,
) -> Result<(), (&'static str, &'static str)> {
    const INVALID: (&str, &str) = ("invalid_grant", "invalid assertion");
    let parts: Vec<&str> = assertion.trim().split('.').collect();
    let [head, claims, signature] = parts[..] else {
        return Err(INVALID);
    };
    let decode = |s: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let (Some(head), Some(claims)) = (decode(head), decode(claims)) else {
        return Err(INVALID);
    };
    if head.get("alg").and_then(Value::as_str) != Some("RS256")
        || signature.is_empty()
        || URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .is_err()
    {
        return Err(INVALID);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(st.auth.client_id.as_str()) {
        return Err(("invalid_client_id", "client identifier invalid"));
    }
    if claims.get("sub").and_then(Value::as_str) != Some(st.auth.username.as_str()) {
        return Err(("invalid_grant", "user hasn't approved this consumer"));
    }
    let aud_ok = |a: &str| {
        let a = a.trim_end_matches('/');
        AUDIENCES.contains(&a) || a == instance_url
    };
    let aud_valid = match claims.get("aud") {
        Some(Value::String(a)) => aud_ok(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_valid {
        return Err(("invalid_grant", "audience is invalid"));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > st.clock.now() => Ok(()),
        Some(_) => Err(("invalid_grant", "expired authorization code")),
        None => Err(INVALID),
    }
}

/// Issues a new access token.
fn issue(st: &super::SalesforceState, instance_url: &str) -> Response {
    let seq = st.next_seq();
    let mut token = format!("{}!AQ", &ORG_ID[..15]);
    let r = h(st.org.seed, 0x70_4E, seq);
    token.push_str(&URL_SAFE_NO_PAD.encode(r.to_be_bytes()));
    token.push_str(&URL_SAFE_NO_PAD.encode(h(st.org.seed, 0x70_4F, seq).to_be_bytes()));
    lock(&st.tokens).push(token.clone());
    let issued_at = (st.clock.now() * 1_000).to_string();
    let user = make_id(SObject::User.key_prefix(), 0);
    let id = format!("{instance_url}/id/{ORG_ID}/{user}");
    let mut sig = Vec::with_capacity(32);
    for k in 0..4 {
        sig.extend_from_slice(&h(st.org.seed, 0x51_6E ^ seq, k).to_be_bytes());
    }
    let mut out = String::with_capacity(256);
    let mut o = Obj::new(&mut out);
    o.str("access_token", &token)
        .str("instance_url", instance_url)
        .str("id", &id)
        .str("token_type", "Bearer")
        .str("issued_at", &issued_at)
        .str("signature", &STANDARD.encode(sig));
    o.end();
    respond_json(StatusCode::OK, out)
}
