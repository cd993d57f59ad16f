//! Redaction of secrets from URLs and free text before they reach logs or errors.

use url::Url;

/// The replacement written in place of a secret.
pub const REDACTED: &str = "REDACTED";

/// Query parameter names treated as secret by every client (case-insensitive).
pub const DEFAULT_SECRET_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "key",
    "password",
    "client_secret",
    "secret",
    "signature",
    "sig",
    "code",
    "assertion",
];

/// Shortest secret value that is replaced inside free text (shorter ones
/// would mangle unrelated text and are not meaningful secrets).
const MIN_SECRET_LEN: usize = 4;

/// Knows which query parameters and which literal values are secret.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Lower-cased secret query parameter names.
    names: Vec<String>,
    /// Literal secret values (API keys, passwords) to replace in any text.
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("names", &self.names)
            .field("values", &format_args!("[{} redacted]", self.values.len()))
            .finish()
    }
}

impl Redactor {
    /// A redactor with the default secret parameter names and no literal values.
    pub(crate) fn new() -> Self {
        Self {
            names: DEFAULT_SECRET_PARAMS
                .iter()
                .map(|n| n.to_string())
                .collect(),
            values: Vec::new(),
        }
    }

    /// Adds secret query parameter names.
    pub(crate) fn add_names<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for n in names {
            let n = n.to_ascii_lowercase();
            if !self.names.contains(&n) {
                self.names.push(n);
            }
        }
    }

    /// Adds a literal secret value to replace wherever it appears.
    pub(crate) fn add_value(&mut self, value: &str) {
        if value.len() >= MIN_SECRET_LEN && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    /// Whether `name` is a secret query parameter name.
    pub(crate) fn is_secret_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The URL as text with secret query values and any password replaced.
    pub(crate) fn url(&self, url: &Url) -> String {
        let mut out = url.clone();
        if out.password().is_some() {
            let _ = out.set_password(Some(REDACTED));
        }
        if out.query().is_some() {
            let pairs: Vec<(String, String)> = out
                .query_pairs()
                .map(|(k, v)| {
                    let v = if self.is_secret_name(&k) {
                        REDACTED.to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            out.query_pairs_mut().clear().extend_pairs(pairs);
        }
        self.text(out.as_str(), &[])
    }

    /// Free text with known secret values and `name=value` pairs of secret
    /// parameter names replaced; `extra` are per-request secret values.
    pub(crate) fn text(&self, text: &str, extra: &[&str]) -> String {
        let mut out = text.to_string();
        for v in self
            .values
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            if v.len() >= MIN_SECRET_LEN && out.contains(v) {
                out = out.replace(v, REDACTED);
            }
        }
        self.scrub_pairs(&out)
    }

    /// Replaces the value of every `name=value` pair whose name is secret.
    fn scrub_pairs(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                // Find the name ending at i.
                let mut start = i;
                while start > 0 && is_name_byte(bytes[start - 1]) {
                    start -= 1;
                }
                if start < i && self.is_secret_name(&text[start..i]) {
                    let mut end = i + 1;
                    while end < bytes.len() && !is_value_end(bytes[end]) {
                        end += 1;
                    }
                    if end > i + 1 && &text[i + 1..end] != REDACTED {
                        out.push_str(&text[copied..=i]);
                        out.push_str(REDACTED);
                        copied = end;
                        i = end;
                        continue;
                    }
                }
            }
            i += 1;
        }
        out.push_str(&text[copied..]);
        out
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn is_value_end(b: u8) -> bool {
    matches!(
        b,
        b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b',' | b';' | b')' | b'\\'
    ) || b.is_ascii_whitespace()
}

/// Trims text to at most `max` characters, marking the cut.
pub(crate) fn trim_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn url_query_secrets_are_replaced() {
        let mut r = Redactor::new();
        r.add_names(["sessionid"]);
        let u = Url::parse("https://x.test/a?api_key=abc123&limit=10&SessionId=zz").unwrap();
        assert_eq!(
            r.url(&u),
            "https://x.test/a?api_key=REDACTED&limit=10&SessionId=REDACTED"
        );
    }

    #[test]
    fn text_values_and_pairs_are_replaced() {
        let mut r = Redactor::new();
        r.add_value("sk_test_SENTINEL123");
        let t = r.text(
            "bad key sk_test_SENTINEL123 at /v1?token=abcd&x=1 \"password=hunter2\"",
            &["zz"],
        );
        assert_eq!(
            t,
            "bad key REDACTED at /v1?token=REDACTED&x=1 \"password=REDACTED\""
        );
    }

    #[test]
    fn trimming_counts_characters() {
        assert_eq!(trim_chars("héllo", 3), "hél…");
        assert_eq!(trim_chars("abc", 3), "abc");
    }
}
