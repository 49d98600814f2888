//! Published prices shipped with BurnCloud (`presets/prices.json`): each one with the provider's
//! page it was read from and the day it was checked, offered on the Prices page and applied only
//! when the user asks.

use std::sync::OnceLock;

use burncloud_service_api::{Currency, PricePreset, ServiceError, ServiceResult};

const CATALOG: &str = include_str!("../presets/prices.json");

/// The shipped catalog, parsed once. A catalog that does not parse fails its unit test, never a
/// user's call: here it would answer an error naming the fault.
pub fn catalog() -> ServiceResult<&'static [PricePreset]> {
    static PARSED: OnceLock<Result<Vec<PricePreset>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| serde_json::from_str(CATALOG).map_err(|error| format!("the shipped price presets: {error}")))
        .as_deref()
        .map_err(|error| ServiceError::Storage(error.clone()))
}

/// The preset for each of `models` in `currency`, in the order asked; an error naming every model
/// that has none in that currency (and the currencies it has), so nothing is half applied.
pub fn choose<'a>(
    catalog: &'a [PricePreset],
    models: &[String],
    currency: Currency,
) -> ServiceResult<Vec<&'a PricePreset>> {
    if models.is_empty() {
        return Err(ServiceError::invalid("choose at least one model"));
    }
    let mut chosen = Vec::with_capacity(models.len());
    let mut missing = Vec::new();
    for model in models {
        match catalog.iter().find(|preset| &preset.model == model && preset.currency == currency) {
            Some(preset) => chosen.push(preset),
            None => {
                let published: Vec<&str> = catalog
                    .iter()
                    .filter(|preset| &preset.model == model)
                    .map(|preset| preset.currency.as_str())
                    .collect();
                missing.push(if published.is_empty() {
                    format!("{model} (no published price)")
                } else {
                    format!("{model} (published in {} only)", published.join(", "))
                });
            }
        }
    }
    if !missing.is_empty() {
        return Err(ServiceError::invalid(format!(
            "no published price in {} for: {}",
            currency.as_str(),
            missing.join("; ")
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burncloud_service_api::Money;

    /// Every shipped preset is a price `set_price` would accept, sourced from an https page,
    /// checked on a real date, and one per model and currency.
    #[test]
    fn every_shipped_preset_is_a_valid_sourced_price() {
        let catalog = catalog().expect("the catalog parses");
        assert!(catalog.len() >= 20, "presets for Anthropic, DeepSeek, OpenAI and Qwen");
        for provider in ["Anthropic", "DeepSeek", "OpenAI", "Qwen"] {
            assert!(catalog.iter().any(|p| p.provider == provider), "{provider} has presets");
        }
        for preset in catalog {
            let name = format!("{} {}", preset.model, preset.currency.as_str());
            assert!(preset.source.starts_with("https://"), "{name}: source {}", preset.source);
            let date: Vec<u32> = preset.checked.split('-').filter_map(|part| part.parse().ok()).collect();
            assert!(
                date.len() == 3 && (2026..2100).contains(&date[0]) && (1..=12).contains(&date[1]),
                "{name}: checked {}",
                preset.checked
            );
            let price = &preset.price;
            assert!(price.input_per_mtok > Money::ZERO && price.output_per_mtok > Money::ZERO, "{name}");
            assert!(price.cache_read_per_mtok.is_some(), "{name}: every preset carries its cache read price");
            let mut checked = price.clone();
            checked.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(checked.tiers, price.tiers, "{name}: tiers listed lowest first");
            let twins = catalog.iter().filter(|p| p.model == preset.model && p.currency == preset.currency).count();
            assert_eq!(twins, 1, "{name} listed once");
        }
    }

    #[test]
    fn choosing_names_every_model_without_a_price_in_the_currency() {
        let catalog = catalog().unwrap();
        let models = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let chosen = choose(catalog, &models(&["deepseek-flash", "claude-opus-5-5"]), Currency::Usd).unwrap();
        assert_eq!(chosen.iter().map(|p| p.model.as_str()).collect::<Vec<_>>(), ["deepseek-flash", "claude-opus-5-5"]);
        let cny = choose(catalog, &models(&["deepseek-flash"]), Currency::Cny).unwrap();
        assert_eq!(cny[0].price.input_per_mtok, Money::parse("1").unwrap(), "DeepSeek's CNY price, not its USD one");
        let error = choose(catalog, &models(&["claude-opus-5-5", "no-such-model", "qwen3-max"]), Currency::Cny)
            .unwrap_err()
            .to_string();
        assert!(error.contains("claude-opus-5-5 (published in USD only)"), "{error}");
        assert!(error.contains("no-such-model (no published price)"), "{error}");
        assert!(!error.contains("qwen3-max"), "{error}");
        assert!(choose(catalog, &[], Currency::Usd).is_err());
    }
}
