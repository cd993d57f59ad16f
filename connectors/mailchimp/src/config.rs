//! Mailchimp destination configuration.

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

/// Configuration of the Mailchimp destination (the sync's `config` table).
///
/// ```
/// let config: weft_mailchimp::MailchimpConfig = toml::from_str(r#"
///     api_key = { env = "MAILCHIMP_API_KEY" }   # a key like `0123abcd-us6`
///     list_id = "a1b2c3d4e5"
///     status_if_new = "subscribed"
/// "#).unwrap();
/// assert_eq!(config.list_id, "a1b2c3d4e5");
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
    /// The audience (list) id members are written to.
    pub list_id: String,
    /// Status given to members Mailchimp does not have yet: `subscribed`
    /// (default), `pending`, `unsubscribed`, `cleaned` or `transactional`.
    #[serde(default = "default_status_if_new")]
    pub status_if_new: String,
    /// Double opt-in: new members become `pending` (Mailchimp mails them a
    /// confirmation) whatever `status_if_new` says. Default false.
    #[serde(default)]
    pub double_opt_in: bool,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
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
            http: None,
        }
    }

    /// Checks field values (the key itself is checked when it is resolved).
    pub fn validate(&self) -> Result<(), MailchimpError> {
        if self.list_id.is_empty()
            || !self
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

        let mut doi = c;
        doi.double_opt_in = true;
        assert_eq!(doi.new_member_status(), "pending");
    }
}
