//! A stretch of the day in UTC (`HH:MM-HH:MM`), as peak hours are written: parsed once, when a
//! price is read, so that billing a call only compares numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const MINUTES_PER_DAY: u16 = 24 * 60;

/// A stretch of the day in UTC, written `HH:MM-HH:MM`, the end excluded (`24:00` ends at
/// midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DayWindow {
    start_minute: u16,
    end_minute: u16,
}

impl DayWindow {
    /// Whether the minute of the day (0 = 00:00 UTC) falls inside.
    pub fn contains(self, minute: u16) -> bool {
        (self.start_minute..self.end_minute).contains(&minute)
    }
}

impl FromStr for DayWindow {
    type Err = String;

    fn from_str(window: &str) -> Result<Self, String> {
        let minutes = |text: &str| -> Option<u16> {
            let (hours, minutes) = text.trim().split_once(':')?;
            let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
            (minutes < 60 && hours <= 24 && hours * 60 + minutes <= MINUTES_PER_DAY).then_some(hours * 60 + minutes)
        };
        let parsed = window.split_once('-').and_then(|(start, end)| Some((minutes(start)?, minutes(end)?)));
        match parsed {
            Some((start_minute, end_minute)) if start_minute < end_minute => Ok(DayWindow { start_minute, end_minute }),
            _ => Err(format!("peak window `{window}` is not HH:MM-HH:MM in UTC with the start before the end")),
        }
    }
}

impl TryFrom<String> for DayWindow {
    type Error = String;

    fn try_from(window: String) -> Result<Self, String> {
        window.parse()
    }
}

impl From<DayWindow> for String {
    fn from(window: DayWindow) -> String {
        window.to_string()
    }
}

impl fmt::Display for DayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = (self.start_minute, self.end_minute);
        write!(f, "{:02}:{:02}-{:02}:{:02}", start / 60, start % 60, end / 60, end % 60)
    }
}

impl schemars::JsonSchema for DayWindow {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DayWindow".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A stretch of the day in UTC, HH:MM-HH:MM, the start before the end (excluded).",
            "pattern": "^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$",
            "examples": ["01:00-04:00"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_once_and_read_back_as_written() {
        for bad in ["25:00-26:00", "04:00-01:00", "1-2", "01:60-02:00", "01:00-01:00", ""] {
            assert!(bad.parse::<DayWindow>().is_err(), "{bad:?}");
        }
        let window: DayWindow = "06:00-10:00".parse().unwrap();
        assert_eq!(window.to_string(), "06:00-10:00");
        assert_eq!(serde_json::to_value(window).unwrap(), "06:00-10:00");
        let error = serde_json::from_str::<DayWindow>("\"10:00-09:00\"").unwrap_err().to_string();
        assert!(error.contains("10:00-09:00"), "{error}");
    }
}
