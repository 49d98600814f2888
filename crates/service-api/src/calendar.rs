//! UTC calendar dates from Unix time, for displays and for hub answers that give epoch seconds.

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-09-18T13:20:06Z` from Unix seconds.
pub fn rfc3339_from_unix_seconds(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// `2024-09-18T13:20:06.123Z` from Unix milliseconds (Ollama's timestamps).
pub fn rfc3339_from_unix_ms(ms: i64) -> String {
    let seconds = rfc3339_from_unix_seconds(ms.div_euclid(1000));
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_epoch_time() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(rfc3339_from_unix_ms(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(rfc3339_from_unix_seconds(1_726_665_606), "2024-09-18T13:20:06Z");
    }
}
