//! A Secret's data as the controllers hold it: bytes per key, shown by key only. Decisions and
//! observations are logged with `{:?}`; the values are credentials and must never be in them.

use std::collections::BTreeMap;
use std::ops::Deref;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(pub BTreeMap<String, Vec<u8>>);

impl Deref for SecretData {
    type Target = BTreeMap<String, Vec<u8>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SecretData {
    /// `text` with every value of this Secret (of four bytes or more) replaced by
    /// `[redacted]`, whether or not the Secret is otherwise valid: for text from the mover,
    /// which may quote what restic was given.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in self.0.values().filter_map(|v| std::str::from_utf8(v).ok()) {
            if value.len() >= 4 {
                text = text.replace(value, "[redacted]");
            }
        }
        text
    }
}

/// `text` scrubbed of `secret`'s values, if there is a Secret.
pub fn scrubbed(text: String, secret: Option<&SecretData>) -> String {
    match secret {
        Some(secret) => secret.scrub(&text),
        None => text,
    }
}

impl std::ops::DerefMut for SecretData {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretData")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_redacts_every_value_even_of_a_secret_that_does_not_parse() {
        let data = SecretData(
            [
                ("RESTIC_PASSWORD".to_owned(), b"hunter2-pw".to_vec()),
                ("misspelled".to_owned(), b"AKIA-secret".to_vec()),
                ("short".to_owned(), b"ab".to_vec()),
            ]
            .into(),
        );
        assert_eq!(
            data.scrub("Fatal: hunter2-pw and AKIA-secret ab"),
            "Fatal: [redacted] and [redacted] ab"
        );
    }

    #[test]
    fn debug_shows_keys_never_values() {
        let data = SecretData([("RESTIC_PASSWORD".to_owned(), b"hunter2".to_vec())].into());
        let shown = format!("{:?}", Some(data));
        assert!(shown.contains("RESTIC_PASSWORD"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("104"),
            "{shown}"
        );
    }
}
