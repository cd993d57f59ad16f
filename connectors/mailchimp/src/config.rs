//! Mailchimp configuration, shared by the source and the sync destination.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::HttpSettings;

use crate::MailchimpError;

/// Member statuses Mailchimp accepts for a new member.
pub(crate) const STATUSES: [&str; 5] = [
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];

/// Configuration of the Mailchimp connector: a sync's `config` table (the
/// destination) or a pipeline's (the source). One key, one budget: a source
/// and a sync on the same account share Mailchimp's 10 connections.
///
/// As a destination (`list_id` names the audience written to):
///
/// ```
/// let config: weft_mailchimp::MailchimpConfig = toml::from_str(r#"
///     api_key = { env = "MAILCHIMP_API_KEY" }   # a key like `0123abcd-us6`
///     list_id = "a1b2c3d4e5"
///     status_if_new = "subscribed"
/// "#).unwrap();
/// assert_eq!(config.list_id, "a1b2c3d4e5");
/// ```
///
/// As a source (every audience is read; `list_id` is not needed):
///
/// ```
/// let config: weft_mailchimp::MailchimpConfig = toml::from_str(r#"
///     api_key = { env = "MAILCHIMP_API_KEY" }
///     page_size = 500
/// "#).unwrap();
/// assert_eq!((config.page_size, config.settle_secs), (500, 60));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailchimpConfig {
    /// API key: `{ env = "MAILCHIMP_API_KEY" }` or `{ file = "..." }`. Its
    /// suffix after the last `-` is the data centre (`us6`), which gives the
    /// default base URL `https://us6.api.mailchimp.com/3.0`.
    pub api_key: SecretRef,
    /// API root including `/3.0`; omitted = derived from the key's data
    /// centre. Set it for the sandbox or a proxy (a key without a data
    /// centre is then accepted).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The audience (list) id members are written to (required by the
    /// destination; the source reads every audience and ignores it).
    #[serde(default)]
    pub list_id: String,
    /// Status given to members Mailchimp does not have yet: `subscribed`
    /// (default), `pending`, `unsubscribed`, `cleaned` or `transactional`.
    #[serde(default = "default_status_if_new")]
    pub status_if_new: String,
    /// Double opt-in: new members become `pending` (Mailchimp mails them a
    /// confirmation) whatever `status_if_new` says. Default false.
    #[serde(default)]
    pub double_opt_in: bool,
    /// Source: records per list page (`count`), 1 to 1000 (Mailchimp's
    /// maximum, the default).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Source: how far behind the extraction's start an incremental cursor
    /// is held (seconds, default 60), so members changed while a read runs
    /// are read again next run.
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// A request rate for the account's budget, on top of Mailchimp's 10
    /// simultaneous connections (requests per second; default: none).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

/// Mailchimp's largest `count`.
pub(crate) const MAX_PAGE_SIZE: u32 = 1_000;

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

fn default_settle_secs() -> u64 {
    60
}

fn default_status_if_new() -> String {
    "subscribed".into()
}

impl MailchimpConfig {
    /// A config writing to `list_id` with the key read from `api_key`.
    pub fn new(api_key: SecretRef, list_id: impl Into<String>) -> Self {
        MailchimpConfig {
            api_key,
            base_url: None,
            list_id: list_id.into(),
            status_if_new: default_status_if_new(),
            double_opt_in: false,
            page_size: default_page_size(),
            settle_secs: default_settle_secs(),
            requests_per_second: None,
            http: None,
        }
    }

    /// A source config reading every audience with the key read from `api_key`.
    pub fn source(api_key: SecretRef) -> Self {
        Self::new(api_key, "")
    }

    /// Checks field values (the key itself is checked when it is resolved);
    /// an empty `list_id` is left to the destination to refuse.
    pub fn validate(&self) -> Result<(), MailchimpError> {
        if !self
            .list_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(MailchimpError::Config {
                field: "list_id",
                reason: format!(
                    "must be a Mailchimp list id (letters, digits, `_`, `-`), got {:?}",
                    self.list_id
                ),
            });
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(MailchimpError::Config {
                field: "page_size",
                reason: format!("must be 1 to {MAX_PAGE_SIZE}, got {}", self.page_size),
            });
        }
        if let Some(r) = self.requests_per_second
            && !(r.is_finite() && r > 0.0)
        {
            return Err(MailchimpError::Config {
                field: "requests_per_second",
                reason: format!("must be a positive number, got {r}"),
            });
        }
        if !STATUSES.contains(&self.status_if_new.as_str()) {
            return Err(MailchimpError::Config {
                field: "status_if_new",
                reason: format!(
                    "must be one of {}, got {:?}",
                    STATUSES.join(", "),
                    self.status_if_new
                ),
            });
        }
        Ok(())
    }

    /// The status sent for members new to the list (`pending` under double opt-in).
    pub(crate) fn new_member_status(&self) -> &str {
        if self.double_opt_in {
            "pending"
        } else {
            &self.status_if_new
        }
    }
}

/// The data centre of a Mailchimp key: the text after its last `-`
/// (`0123abcd-us6` -> `us6`), if it looks like one.
pub(crate) fn data_centre(key: &str) -> Option<&str> {
    let (_, dc) = key.rsplit_once('-')?;
    let ok = !dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then_some(dc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn data_centre_is_the_key_suffix() {
        assert_eq!(data_centre("0123abcd-us6"), Some("us6"));
        assert_eq!(data_centre("a-b-us21"), Some("us21"));
        assert_eq!(data_centre("0123abcd"), None);
        assert_eq!(data_centre("0123abcd-"), None);
        assert_eq!(data_centre("0123abcd-us/6"), None);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: MailchimpConfig =
            serde_json::from_str(r#"{"api_key":{"env":"K"},"list_id":"abc123"}"#).unwrap();
        assert_eq!(c.status_if_new, "subscribed");
        assert!(!c.double_opt_in);
        assert_eq!(c.new_member_status(), "subscribed");
        c.validate().unwrap();

        let err = serde_json::from_str::<MailchimpConfig>(
            r#"{"api_key":{"env":"K"},"list_id":"a","audience":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `audience`"));

        let mut bad = c.clone();
        bad.status_if_new = "active".into();
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("`status_if_new`") && e.contains("\"active\""),
            "{e}"
        );
        let mut bad = c.clone();
        bad.list_id = "../x".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("`list_id`")
        );

        let mut bad = c.clone();
        bad.page_size = 1001;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("`page_size` must be 1 to 1000, got 1001")
        );
        let source: MailchimpConfig =
            serde_json::from_str(r#"{"api_key":{"env":"K"},"settle_secs":5}"#).unwrap();
        assert_eq!(
            (
                source.list_id.as_str(),
                source.page_size,
                source.settle_secs
            ),
            ("", 1000, 5)
        );
        source.validate().unwrap();

        let mut doi = c;
        doi.double_opt_in = true;
        assert_eq!(doi.new_member_status(), "pending");
    }
}
