//! Formatting for people: money, counts, times, durations.

use burncloud_service_api::{civil_from_days, Currency, Money};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The smallest amount `money` shows: 0.0001, in nanos.
const DISPLAY_STEP: i64 = 100_000;

/// `$12.5` / `¥12.5`, rounded to 4 decimals for display (exact values stay in the data).
pub fn money(currency: Currency, amount: Money) -> String {
    let rounded = Money((amount.0 + amount.0.signum() * DISPLAY_STEP / 2) / DISPLAY_STEP * DISPLAY_STEP);
    format!("{}{rounded}", symbol(currency))
}

/// `$0.0000156`: the exact amount, for one call's cost, which rounding would show as nothing.
pub fn money_exact(currency: Currency, amount: Money) -> String {
    format!("{}{amount}", symbol(currency))
}

/// One call's cost in a list: as `money` from 0.0001 up, and below it to two significant digits
/// (`$0.0000063`), so that a cheap priced call never reads as free.
pub fn call_cost(currency: Currency, amount: Money) -> String {
    if amount.0.abs() >= DISPLAY_STEP / 2 || amount.0 == 0 {
        return money(currency, amount);
    }
    let digits = amount.0.unsigned_abs().ilog10();
    let step = 10_i64.pow(digits.saturating_sub(1));
    let rounded = (amount.0 + amount.0.signum() * step / 2) / step * step;
    format!("{}{}", symbol(currency), Money(rounded))
}

fn symbol(currency: Currency) -> &'static str {
    match currency {
        Currency::Usd => "$",
        Currency::Cny => "¥",
    }
}

/// `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1.2K`, `3.4M` for chart labels.
pub fn compact(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}K", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// `2026-11-28 09:05:03` (UTC) from epoch milliseconds.
pub fn timestamp(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `2026-11-28` (UTC) from epoch milliseconds: the key the usage report's days use.
pub fn day(ms: i64) -> String {
    timestamp(ms)[..10].to_string()
}

/// `850 ms`, `1.2 s`.
pub fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `4.68 GB`, `512 KB`: decimal units, as the hubs show sizes.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1000.0 && unit + 1 < UNITS.len() {
        scaled /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{value} B"),
        _ if scaled < 10.0 => format!("{scaled:.2} {}", UNITS[unit]),
        _ if scaled < 100.0 => format!("{scaled:.1} {}", UNITS[unit]),
        _ => format!("{scaled:.0} {}", UNITS[unit]),
    }
}

/// `1h 02m`, `3m 05s`, `12s`: time left.
pub fn eta(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes_and_time_left() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4_683_073_952), "4.68 GB");
        assert_eq!(bytes(491_400_032), "491 MB");
        assert_eq!(bytes(12_500_000), "12.5 MB");
        assert_eq!(eta(12), "12s");
        assert_eq!(eta(185), "3m 05s");
        assert_eq!(eta(3725), "1h 02m");
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(money(Currency::Usd, Money::parse("12.5").unwrap()), "$12.5");
        assert_eq!(money(Currency::Cny, Money::parse("0.00008").unwrap()), "¥0.0001");
        assert_eq!(money(Currency::Usd, Money::ZERO), "$0");
        let per_call = |text: &str| call_cost(Currency::Usd, Money::parse(text).unwrap());
        assert_eq!(per_call("0.000006345"), "$0.0000063", "two significant digits below 0.0001");
        assert_eq!(per_call("0.00001269"), "$0.000013");
        assert_eq!(per_call("0.000000001"), "$0.000000001");
        assert_eq!(per_call("0.00004999"), "$0.00005");
        assert_eq!(per_call("0.00005"), "$0.0001", "from half the display step up: as money()");
        assert_eq!(per_call("1.23456"), "$1.2346");
        assert_eq!(per_call("0"), "$0");
        assert_eq!(call_cost(Currency::Cny, Money::parse("-0.0000087").unwrap()), "¥-0.0000087");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_795_833_550_960), "2026-11-28 02:39:10");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(millis(850), "850 ms");
        assert_eq!(compact(1_500.0), "1.5K");
    }
}
