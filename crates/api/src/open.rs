//! `Open<T>`: a status value that may be one we know or one another writer set.
//!
//! Upstream puts no `enum` on status fields (`VolumeReplication.status.state`, the data mover's
//! `phase` and `batchingStatus`, VolSync's `latestMoverStatus.result`), so any string is valid
//! there and another controller may write one we have never seen. A strict enum would make such
//! an object undecodable and stall every reconcile of it; `Open` keeps the string instead, and
//! the schema stays a plain string as upstream's is.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire_enum::Wire;

/// A known wire value, or the exact string some other writer put there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Open<T> {
    Known(T),
    Unknown(String),
}

impl<T: Copy> Open<T> {
    /// The value, when it is one we know.
    pub fn known(&self) -> Option<T> {
        match self {
            Open::Known(value) => Some(*value),
            Open::Unknown(_) => None,
        }
    }
}

impl<T: Wire> Open<T> {
    /// The exact string on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Open::Known(value) => value.wire(),
            Open::Unknown(text) => text,
        }
    }
}

impl<T> From<T> for Open<T> {
    fn from(value: T) -> Self {
        Open::Known(value)
    }
}

impl<T: PartialEq> PartialEq<T> for Open<T> {
    fn eq(&self, other: &T) -> bool {
        matches!(self, Open::Known(value) if value == other)
    }
}

impl<T: fmt::Display> fmt::Display for Open<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Open::Known(value) => value.fmt(f),
            Open::Unknown(text) => f.write_str(text),
        }
    }
}

impl<T: Serialize> Serialize for Open<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Open::Known(value) => value.serialize(serializer),
            Open::Unknown(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Open<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.parse() {
            Ok(value) => Open::Known(value),
            Err(_) => Open::Unknown(text),
        })
    }
}

impl<T> JsonSchema for Open<T> {
    fn schema_name() -> Cow<'static, str> {
        "OpenString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // As upstream: any string; the values we write are documented, not enforced.
        json_schema!({"type": "string"})
    }
}

/// Reads an optional open value as the known value, if it is one.
pub fn known<T: Copy>(value: &Option<Open<T>>) -> Option<T> {
    value.as_ref().and_then(Open::known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamover::BackupPhase;

    #[test]
    fn known_values_round_trip_and_unknown_ones_are_kept() {
        let known: Open<BackupPhase> = serde_json::from_str("\"Completed\"").unwrap();
        assert_eq!(known, BackupPhase::Completed);
        assert_eq!(serde_json::to_string(&known).unwrap(), "\"Completed\"");
        let other: Open<BackupPhase> = serde_json::from_str("\"WaitingForVelero\"").unwrap();
        assert_eq!(other, Open::Unknown("WaitingForVelero".into()));
        assert_eq!(other.known(), None);
        assert_eq!(other.to_string(), "WaitingForVelero");
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"WaitingForVelero\""
        );
        // Case matters on the wire: "completed" is not ours.
        let lower: Open<BackupPhase> = serde_json::from_str("\"completed\"").unwrap();
        assert_eq!(lower.known(), None);
        assert!(serde_json::from_str::<Open<BackupPhase>>("3").is_err());
    }
}
