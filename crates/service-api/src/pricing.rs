//! Which rates a call pays: a price's own, a prompt-length tier's, or its peak hours'; and the
//! checks a price must pass before it is kept.

use crate::{Money, PeakHours, Price, PriceInput, Rates};

impl Price {
    /// The price's own token rates (off-peak, short prompt).
    pub fn base_rates(&self) -> Rates {
        Rates {
            input_per_mtok: self.input_per_mtok,
            output_per_mtok: self.output_per_mtok,
            cache_read_per_mtok: self.cache_read_per_mtok,
            cache_write_per_mtok: self.cache_write_per_mtok,
            cache_write_1h_per_mtok: self.cache_write_1h_per_mtok,
        }
    }

    /// The rates a call pays whose prompt has `prompt_tokens` tokens (cache reads and writes
    /// included) and which started at `at_ms` (Unix milliseconds): the highest tier the prompt
    /// is above, else the peak rates inside peak hours, else the price's own.
    pub fn rates_for(&self, prompt_tokens: u64, at_ms: i64) -> Rates {
        let tier = self
            .tiers
            .iter()
            .filter(|tier| prompt_tokens > tier.above_prompt_tokens)
            .max_by_key(|tier| tier.above_prompt_tokens);
        match (tier, &self.peak) {
            (Some(tier), _) => tier.rates,
            (None, Some(peak)) if peak.covers(at_ms) => peak.rates,
            _ => self.base_rates(),
        }
    }
}

impl PriceInput {
    /// This price as `model`'s.
    pub fn priced(self, model: &str) -> Price {
        Price {
            model: model.to_string(),
            input_per_mtok: self.input_per_mtok,
            output_per_mtok: self.output_per_mtok,
            cache_read_per_mtok: self.cache_read_per_mtok,
            cache_write_per_mtok: self.cache_write_per_mtok,
            cache_write_1h_per_mtok: self.cache_write_1h_per_mtok,
            per_image: self.per_image,
            per_audio_second: self.per_audio_second,
            per_million_characters: self.per_million_characters,
            tiers: self.tiers,
            peak: self.peak,
        }
    }

    /// Checks that this price can be billed, and sorts its tiers lowest first: no negative rate
    /// anywhere, tiers with distinct thresholds, peak hours with at least one window, and not
    /// both tiers and peak hours (no provider bills that way, and which would win is not obvious).
    pub fn check(&mut self) -> Result<(), String> {
        let own_rates = Rates {
            input_per_mtok: self.input_per_mtok,
            output_per_mtok: self.output_per_mtok,
            cache_read_per_mtok: self.cache_read_per_mtok,
            cache_write_per_mtok: self.cache_write_per_mtok,
            cache_write_1h_per_mtok: self.cache_write_1h_per_mtok,
        };
        let units = [self.per_image, self.per_audio_second, self.per_million_characters];
        if has_negative(&own_rates) || units.into_iter().flatten().any(|rate| rate < Money::ZERO) {
            return Err(NEGATIVE.into());
        }
        if !self.tiers.is_empty() && self.peak.is_some() {
            return Err("a price has prompt-length tiers or peak hours, not both".into());
        }
        self.tiers.sort_by_key(|tier| tier.above_prompt_tokens);
        if self.tiers.windows(2).any(|pair| pair[0].above_prompt_tokens == pair[1].above_prompt_tokens) {
            return Err("two tiers have the same above_prompt_tokens".into());
        }
        let mut scheduled = self.tiers.iter().map(|tier| &tier.rates).chain(self.peak.as_ref().map(|peak| &peak.rates));
        if scheduled.any(has_negative) {
            return Err(NEGATIVE.into());
        }
        if self.peak.as_ref().is_some_and(|peak| peak.windows_utc.is_empty()) {
            return Err("peak hours need at least one window, e.g. \"01:00-04:00\"".into());
        }
        Ok(())
    }
}

const NEGATIVE: &str = "prices must not be negative";

fn has_negative(rates: &Rates) -> bool {
    [Some(rates.input_per_mtok), Some(rates.output_per_mtok), rates.cache_read_per_mtok]
        .into_iter()
        .chain([rates.cache_write_per_mtok, rates.cache_write_1h_per_mtok])
        .flatten()
        .any(|rate| rate < Money::ZERO)
}

impl PeakHours {
    /// Whether a call starting at `at_ms` falls in peak hours.
    pub fn covers(&self, at_ms: i64) -> bool {
        let days = at_ms.div_euclid(MS_PER_DAY);
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday as 0.
        let weekday = (days + 3).rem_euclid(7);
        if self.weekdays_only && weekday >= 5 {
            return false;
        }
        let minute = (at_ms.rem_euclid(MS_PER_DAY) / 60_000) as u16;
        self.windows_utc.iter().any(|window| window.contains(minute))
    }
}

const MS_PER_DAY: i64 = 86_400_000;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DayWindow, PriceTier};

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn rates(input: &str, output: &str) -> Rates {
        Rates { input_per_mtok: money(input), output_per_mtok: money(output), ..Rates::default() }
    }

    fn input(tiers: Vec<PriceTier>, peak: Option<PeakHours>) -> PriceInput {
        PriceInput { input_per_mtok: money("1"), output_per_mtok: money("2"), tiers, peak, ..PriceInput::default() }
    }

    fn price(tiers: Vec<PriceTier>, peak: Option<PeakHours>) -> Price {
        input(tiers, peak).priced("m")
    }

    fn windows(windows: &[&str]) -> Vec<DayWindow> {
        windows.iter().map(|window| window.parse().unwrap()).collect()
    }

    /// 2026-12-07 is a Monday; `hour` and `minute` in UTC.
    fn monday(hour: i64, minute: i64) -> i64 {
        let days = 20_794; // 2026-12-07
        assert_eq!(crate::civil_from_days(days), (2026, 12, 7));
        (days * 86_400 + hour * 3600 + minute * 60) * 1000
    }

    #[test]
    fn the_highest_tier_below_the_prompt_wins_on_every_token() {
        let tiers = vec![
            PriceTier { above_prompt_tokens: 32_000, rates: rates("4", "16") },
            PriceTier { above_prompt_tokens: 128_000, rates: rates("7", "28") },
        ];
        let price = price(tiers, None);
        assert_eq!(price.rates_for(32_000, 0), price.base_rates(), "exactly at the threshold: not above it");
        assert_eq!(price.rates_for(32_001, 0).input_per_mtok, money("4"));
        assert_eq!(price.rates_for(128_000, 0).output_per_mtok, money("16"));
        assert_eq!(price.rates_for(200_000, 0).output_per_mtok, money("28"));
    }

    #[test]
    fn peak_hours_follow_the_utc_clock_on_weekdays() {
        let peak = PeakHours {
            windows_utc: windows(&["01:00-04:00", "06:00-10:00"]),
            weekdays_only: true,
            rates: rates("2", "4"),
        };
        let price = price(vec![], Some(peak.clone()));
        let cases = [
            (monday(0, 59), false),
            (monday(1, 0), true),
            (monday(3, 59), true),
            (monday(4, 0), false),
            (monday(6, 30), true),
            (monday(10, 0), false),
            (monday(24 * 4 + 9, 0), true),  // Friday 09:00
            (monday(24 * 5 + 2, 0), false), // Saturday 02:00
            (monday(24 * 6 + 7, 0), false), // Sunday 07:00
        ];
        for (at, in_peak) in cases {
            assert_eq!(peak.covers(at), in_peak, "at {}", crate::rfc3339_from_unix_ms(at));
            let expected = if in_peak { money("2") } else { money("1") };
            assert_eq!(price.rates_for(10, at).input_per_mtok, expected);
        }
        let every_day = PeakHours { weekdays_only: false, ..peak };
        assert!(every_day.covers(monday(24 * 5 + 2, 0)), "every day: Saturday counts too");
        let whole_day = PeakHours { windows_utc: windows(&["00:00-24:00"]), ..every_day };
        assert!(whole_day.covers(monday(23, 59)));
    }

    #[test]
    fn schedules_that_cannot_be_billed_are_refused() {
        let peak = |windows_utc: Vec<DayWindow>| PeakHours { windows_utc, weekdays_only: true, rates: rates("1", "1") };
        assert!(input(vec![], Some(peak(vec![]))).check().is_err(), "no window");
        assert!(input(vec![], Some(peak(windows(&["01:00-04:00", "06:00-10:00"])))).check().is_ok());
        let tier = |above| PriceTier { above_prompt_tokens: above, rates: rates("1", "1") };
        let mut sorted = input(vec![tier(200), tier(100)], None);
        sorted.check().unwrap();
        assert_eq!(sorted.tiers[0].above_prompt_tokens, 100, "sorted lowest first");
        assert!(input(vec![tier(5), tier(5)], None).check().is_err());
        assert!(input(vec![tier(5)], Some(peak(windows(&["01:00-02:00"])))).check().is_err());
        let negative = PriceTier { above_prompt_tokens: 1, rates: rates("-1", "1") };
        assert!(input(vec![negative], None).check().is_err());
        let mut negative_unit = PriceInput { per_image: Some(money("-0.01")), ..input(vec![], None) };
        assert!(negative_unit.check().is_err(), "unit prices are checked too");
    }
}
