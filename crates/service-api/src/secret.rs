//! A string that never shows itself in Debug, Display or serialized output.

use std::fmt;

/// A secret value (API key). Read it with [`Secret::expose`]; everything else redacts it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short hint that identifies the secret without revealing it, like `sk-…9f3a`.
    pub fn hint(&self) -> String {
        let value = self.0.as_str();
        let chars: Vec<char> = value.chars().collect();
        if chars.len() < 8 {
            return if chars.is_empty() { String::new() } else { "…".to_string() };
        }
        let head: String = match value.find('-') {
            Some(dash) if dash <= 3 => value[..=dash].to_string(),
            _ => chars[..2].iter().collect(),
        };
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "writeOnly": true, "description": "Never shown again once stored."})
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn never_shows_itself() {
        let secret = Secret::new("sk-abcdefghijklmnop9f3a");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.to_string(), "***");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
        assert_eq!(secret.hint(), "sk-…9f3a");
        assert_eq!(Secret::new("abcdefghijkl").hint(), "ab…ijkl");
        assert_eq!(Secret::new("short").hint(), "…");
    }
}
