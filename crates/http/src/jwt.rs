//! OAuth2 JWT bearer grant (RFC 7523), as Salesforce's server-to-server flow uses it.
//!
//! Each token request carries a fresh RS256-signed assertion (`iss` = client
//! id, `sub` = user name, `aud` = the login host, `exp` = a few minutes ahead)
//! signed with the connected app's private key. Caching and the single refresh
//! in flight are the shared token endpoint's (see [`crate::auth`]).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::HttpError;
use crate::auth::{AccessToken, TokenEndpoint, TokenProvider};

/// How long an assertion is valid; Salesforce accepts at most 3 minutes.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(150);

/// The grant type of the JWT bearer flow.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// OAuth2 JWT bearer grant: POST `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
/// and `assertion=<RS256 JWT>` to the token URL; the answer gives
/// `access_token` (and, from Salesforce, `instance_url`).
///
/// The token is cached and reused until it expires (when the server says when)
/// or an API call answers 401.
pub struct OAuth2JwtBearer {
    endpoint: TokenEndpoint,
}

impl fmt::Debug for OAuth2JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2JwtBearer")
            .field("api", &self.endpoint.api)
            .field("token_url", &self.endpoint.redactor.url(&self.endpoint.url))
            .finish_non_exhaustive()
    }
}

impl OAuth2JwtBearer {
    /// A JWT bearer grant against `token_url`, asserting `username` for the
    /// app `client_id`, audience `audience` (Salesforce: the login URL, e.g.
    /// `https://login.salesforce.com`). `private_key_pem` is an unencrypted RSA
    /// key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn new(
        api: &str,
        token_url: Url,
        client_id: impl Into<String>,
        username: impl Into<String>,
        private_key_pem: SecretString,
        audience: impl Into<String>,
    ) -> Result<Self, HttpError> {
        let mut endpoint = TokenEndpoint::new(api, token_url)?;
        let signer = JwtSigner {
            key: parse_private_key(private_key_pem.expose_secret()).map_err(|reason| {
                HttpError::Auth {
                    api: api.to_string(),
                    url: endpoint.redactor.url(&endpoint.url),
                    reason,
                }
            })?,
            issuer: client_id.into(),
            subject: username.into(),
            audience: audience.into(),
            lifetime: DEFAULT_LIFETIME,
        };
        endpoint.form.push(("grant_type".into(), GRANT_TYPE.into()));
        endpoint.dynamic_form = Some((
            "assertion".into(),
            Box::new(move || signer.assertion().map(SecretString::from)),
        ));
        Ok(Self { endpoint })
    }

    /// Refresh this long before expiry, when the server states one (default 60 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.endpoint.refresh_margin = margin;
        self
    }
}

#[async_trait]
impl TokenProvider for OAuth2JwtBearer {
    async fn token(&self, force_refresh: bool) -> Result<AccessToken, HttpError> {
        self.endpoint.token(force_refresh).await
    }
}

/// Signs assertions with an RSA key.
struct JwtSigner {
    key: RsaKeyPair,
    issuer: String,
    subject: String,
    audience: String,
    lifetime: Duration,
}

impl JwtSigner {
    /// A fresh `header.claims.signature` JWT, RS256.
    fn assertion(&self) -> Result<String, String> {
        let exp =
            Utc::now().timestamp() + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.audience,
            "exp": exp,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the JWT assertion failed".to_string())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// Parses a PEM RSA private key (PKCS#8 or PKCS#1). Errors never include key material.
fn parse_private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            label = Some(rest.trim_end_matches('-').to_string());
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    let label = label.ok_or("the private key is not PEM (no `-----BEGIN` line)")?;
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| format!("the {label} PEM body is not valid base64"))?;
    match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("the PKCS#8 private key is not a usable RSA key: {e}")),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
            .map_err(|e| format!("the PKCS#1 private key is not a usable RSA key: {e}")),
        other => Err(format!(
            "unsupported PEM block `{other}`: expected `PRIVATE KEY` or `RSA PRIVATE KEY` \
             (encrypted keys are not supported)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    /// A fresh 2048-bit key as PKCS#8 PEM, plus its public key (DER).
    pub(crate) fn test_key() -> (String, Vec<u8>) {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&key).unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        (pem, key.public_key().as_ref().to_vec())
    }

    #[test]
    fn assertion_is_rs256_signed_with_the_claims() {
        let (pem, public) = test_key();
        let signer = JwtSigner {
            key: parse_private_key(&pem).unwrap(),
            issuer: "client-1".into(),
            subject: "user@example.com".into(),
            audience: "https://login.salesforce.com".into(),
            lifetime: DEFAULT_LIFETIME,
        };
        let jwt = signer.assertion().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256"}));
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "user@example.com");
        assert_eq!(claims["aud"], "https://login.salesforce.com");
        let exp = claims["exp"].as_i64().unwrap();
        let now = Utc::now().timestamp();
        assert!(exp > now && exp <= now + 150, "exp {exp} vs now {now}");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public);
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        assert!(verifier.verify(b"tampered.input", &signature).is_err());
    }

    #[test]
    fn bad_keys_are_rejected_without_echoing_them() {
        let e = parse_private_key("not a pem SECRETSTUFF").err().unwrap();
        assert!(e.contains("not PEM") && !e.contains("SECRETSTUFF"), "{e}");
        let e = parse_private_key("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----")
            .err()
            .unwrap();
        assert!(e.contains("not valid base64"), "{e}");
        let e = parse_private_key(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        )
        .err()
        .unwrap();
        assert!(e.contains("unsupported PEM block"), "{e}");
    }
}
