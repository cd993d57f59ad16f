//! Secrets in config: read from an environment variable or a file, never inline.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Where a secret comes from: `{ env = "STRIPE_API_KEY" }` or `{ file = "/run/secrets/key" }`.
///
/// Inline values are refused by design: config files get committed and shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// Read from this environment variable.
    Env {
        /// Variable name.
        env: String,
    },
    /// Read from this file (surrounding whitespace trimmed).
    File {
        /// File path.
        file: PathBuf,
    },
}

impl SecretRef {
    /// Reads the secret; errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<SecretString, CoreError> {
        let (location, value) = match self {
            SecretRef::Env { env } => (
                format!("environment variable {env}"),
                std::env::var(env).map_err(|e| e.to_string()),
            ),
            SecretRef::File { file } => (
                format!("file {}", file.display()),
                std::fs::read_to_string(file).map_err(|e| e.to_string()),
            ),
        };
        let value = value.map_err(|reason| CoreError::Secret {
            location: location.clone(),
            reason,
        })?;
        let value = value.trim();
        if value.is_empty() {
            return Err(CoreError::Secret {
                location,
                reason: "it is empty".into(),
            });
        }
        Ok(SecretString::from(value.to_string()))
    }

    /// Where the secret is read from, for messages.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env { env } => format!("env {env}"),
            SecretRef::File { file } => format!("file {}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reads_env_and_file_and_refuses_inline() {
        // SAFETY-free: a unique variable name per test process.
        let name = format!("WEFT_TEST_SECRET_{}", std::process::id());
        let missing = SecretRef::Env { env: name.clone() }
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(missing.contains(&name), "{missing}");
        let dir = tempfile_dir();
        let path = dir.join("key");
        std::fs::write(&path, "sk_test_abc\n").unwrap();
        let s = SecretRef::File { file: path.clone() }.resolve().unwrap();
        assert_eq!(s.expose_secret(), "sk_test_abc");
        let parsed: Result<SecretRef, _> = toml::from_str::<toml::Value>("k = \"inline\"")
            .unwrap()
            .get("k")
            .unwrap()
            .clone()
            .try_into();
        assert!(
            parsed.is_err(),
            "an inline string must not parse as a secret"
        );
        let parsed: SecretRef = toml::from_str::<toml::Table>("k = { env = \"X\" }").unwrap()["k"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(parsed, SecretRef::Env { env: "X".into() });
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("weft-secret-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
