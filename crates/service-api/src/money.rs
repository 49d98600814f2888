//! Money as integer nano-units inside, decimal strings at every API.

use std::fmt;

/// An amount in nano-units of the account currency (1 unit = 1_000_000_000 nanos).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

pub const NANOS_PER_UNIT: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid amount {0:?}: expected a decimal string like \"12.5\" with at most 9 decimals")]
pub struct MoneyParseError(pub String);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Parses a decimal string such as `"10"`, `"0.15"` or `"-2.5"`.
    pub fn parse(text: &str) -> Result<Money, MoneyParseError> {
        let error = || MoneyParseError(text.to_string());
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !all_digits(whole)
            || !all_digits(fraction)
            || fraction.len() > 9
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(error());
        }
        let whole_value: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| error())? };
        let mut fraction_value: i64 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            fraction_value += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
        }
        let nanos =
            whole_value.checked_mul(NANOS_PER_UNIT).and_then(|n| n.checked_add(fraction_value)).ok_or_else(error)?;
        Ok(Money(if negative { -nanos } else { nanos }))
    }

    /// The cost of `tokens` at `per_million` per one million tokens, rounded half up to a nano.
    pub fn per_million_tokens(per_million: Money, tokens: u64) -> Money {
        Money::per_units(per_million, tokens, 1_000_000)
    }

    /// The cost of `count` at `rate` per `per` of them (an image, 1000 ms of audio, a million
    /// characters), rounded half up to a nano.
    pub fn per_units(rate: Money, count: u64, per: u64) -> Money {
        let per = i128::from(per.max(1));
        let product = i128::from(rate.0) * i128::from(count);
        let rounded = (product + per / 2) / per;
        Money(rounded.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / NANOS_PER_UNIT as u64;
        let fraction = magnitude % NANOS_PER_UNIT as u64;
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{fraction:09}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An amount in the account currency as a decimal string, at most 9 decimals.",
            "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?$",
            "examples": ["12.5"]
        })
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accept JSON numbers too: people type `"amount": 10` and mean it.
        let value = serde_json::Value::deserialize(deserializer)?;
        let text = match &value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(serde::de::Error::custom("expected a decimal string")),
        };
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Money;

    fn check(text: &str, nanos: i64, shown: &str) {
        let money = Money::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(money.0, nanos, "{text}");
        assert_eq!(money.to_string(), shown, "{text}");
    }

    #[test]
    fn parses_and_prints_decimal_strings() {
        check("10", 10_000_000_000, "10");
        check("0.15", 150_000_000, "0.15");
        check(".5", 500_000_000, "0.5");
        check("-2.5", -2_500_000_000, "-2.5");
        check("1.000000001", 1_000_000_001, "1.000000001");
        check(" 3 ", 3_000_000_000, "3");
    }

    #[test]
    fn rejects_what_is_not_an_amount() {
        for bad in ["", "abc", "1.2.3", "1.", "1e5", "0.0000000001", "99999999999999999999", "--1"] {
            assert!(Money::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn prices_tokens_with_rounding() {
        let per_million = Money::parse("0.15").unwrap();
        assert_eq!(Money::per_million_tokens(per_million, 1_000_000), per_million);
        assert_eq!(Money::per_million_tokens(per_million, 1).0, 150);
        assert_eq!(Money::per_million_tokens(Money(1), 499_999).0, 0);
        assert_eq!(Money::per_million_tokens(Money(1), 500_000).0, 1);
    }

    #[test]
    fn prices_units_with_rounding() {
        let per_second = Money::parse("0.0001").unwrap();
        assert_eq!(Money::per_units(per_second, 9_500, 1000), Money::parse("0.00095").unwrap());
        assert_eq!(Money::per_units(Money(3), 1, 2).0, 2, "half a nano rounds up");
        assert_eq!(Money::per_units(Money::parse("0.04").unwrap(), 3, 1), Money::parse("0.12").unwrap());
        assert_eq!(Money::per_units(Money(i64::MAX), u64::MAX, 1), Money(i64::MAX), "saturates");
    }
}
