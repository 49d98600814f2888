//! Orders a request's candidate channels: priority tiers, weight-proportional within a tier.

use std::sync::Arc;

use crate::snapshot::ChannelEntry;

/// Orders `candidates` (already sorted by priority, highest first) for one request: each tier
/// keeps its place, and inside a tier channels are drawn without replacement in proportion to
/// their weight, so the first pick follows the weights and the rest are failover order.
pub fn order_candidates(mut candidates: Vec<Arc<ChannelEntry>>, rng: &mut fastrand::Rng) -> Vec<Arc<ChannelEntry>> {
    let mut start = 0;
    while start < candidates.len() {
        let priority = candidates[start].channel.priority;
        let end = start + candidates[start..].iter().take_while(|c| c.channel.priority == priority).count();
        weighted_shuffle(&mut candidates[start..end], rng);
        start = end;
    }
    candidates
}

fn weighted_shuffle(tier: &mut [Arc<ChannelEntry>], rng: &mut fastrand::Rng) {
    for position in 0..tier.len() {
        let rest = &tier[position..];
        let total: u64 = rest.iter().map(|c| c.channel.weight.max(0) as u64).sum();
        if total == 0 {
            // Weight-0 channels are kept only as the last resort, in their configured order.
            return;
        }
        let mut pick = rng.u64(0..total);
        let chosen = rest
            .iter()
            .position(|c| {
                let weight = c.channel.weight.max(0) as u64;
                if pick < weight {
                    true
                } else {
                    pick -= weight;
                    false
                }
            })
            .unwrap_or(0);
        tier.swap(position, position + chosen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burncloud_service_api::{Channel, ChannelKind};

    fn entry(id: i64, priority: i64, weight: i64) -> Arc<ChannelEntry> {
        Arc::new(ChannelEntry {
            channel: Channel {
                id,
                name: format!("c{id}"),
                kind: ChannelKind::Openai,
                base_url: None,
                key_hint: String::new(),
                models: vec![],
                model_mapping: Default::default(),
                priority,
                weight,
                enabled: true,
                created_at_ms: 0,
                updated_at_ms: 0,
            },
            base_url: String::new(),
            urls: std::array::from_fn(|_| reqwest::Url::parse("http://127.0.0.1/").unwrap()),
            authorization: None,
            api_key: String::new(),
        })
    }

    #[test]
    fn higher_priority_always_comes_first_and_weights_share_the_tier() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first_picks = [0u32; 4];
        for _ in 0..10_000 {
            let ordered =
                order_candidates(vec![entry(1, 10, 1), entry(2, 5, 1), entry(3, 5, 3), entry(0, 5, 0)], &mut rng);
            assert_eq!(ordered[0].channel.id, 1);
            assert_eq!(ordered[3].channel.id, 0, "weight 0 is the last resort");
            first_picks[ordered[1].channel.id as usize] += 1;
        }
        // Channel 3 has three times channel 2's weight: about 7,500 of 10,000 second places.
        assert!((7_200..7_800).contains(&first_picks[3]), "{first_picks:?}");
    }
}
