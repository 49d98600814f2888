//! Orders a request's candidate channels by its group's strategy: the first is the pick, the rest
//! are the failover order. Rotation state lives per group and model, so each model's traffic is
//! spread exactly as configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burncloud_service_api::Strategy;

/// What the balancer needs to know of a channel: which one it is, for its rotation state.
pub trait Keyed {
    fn key(&self) -> i64;
}

/// A channel as a member of a group, with the group's weight and priority for it.
#[derive(Debug)]
pub struct Member<C> {
    pub channel: Arc<C>,
    pub weight: i64,
    pub priority: i64,
}

/// Smooth weighted round-robin and rotation counters, per model.
#[derive(Debug, Default)]
pub struct Rotation {
    by_model: Mutex<HashMap<String, ModelRotation>>,
}

#[derive(Debug, Default)]
struct ModelRotation {
    counter: usize,
    current: HashMap<i64, i64>,
}

impl<C> Clone for Member<C> {
    fn clone(&self) -> Self {
        Member { channel: self.channel.clone(), weight: self.weight, priority: self.priority }
    }
}

impl ModelRotation {
    /// Smooth weighted round-robin (as nginx does it): over any run of picks each member's share
    /// equals its weight share, spread out rather than in bursts. Returns an index into `members`.
    fn smooth_weighted<C: Keyed>(&mut self, members: &[&Member<C>]) -> usize {
        let total: i64 = members.iter().map(|m| m.weight.max(0)).sum();
        if total == 0 {
            self.counter = self.counter.wrapping_add(1);
            return (self.counter - 1) % members.len();
        }
        let mut best = 0;
        let mut best_value = i64::MIN;
        for (index, member) in members.iter().enumerate() {
            let value = self.current.entry(member.channel.key()).or_insert(0);
            *value += member.weight.max(0);
            if *value > best_value {
                best_value = *value;
                best = index;
            }
        }
        *self.current.entry(members[best].channel.key()).or_insert(0) -= total;
        best
    }
}

/// `members` (already filtered to those serving the model) in the order to try them.
pub fn order<C: Keyed>(strategy: Strategy, rotation: &Rotation, model: &str, members: Vec<&Member<C>>) -> Vec<Arc<C>> {
    if members.is_empty() {
        return Vec::new();
    }
    let mut rotations = rotation.by_model.lock().unwrap_or_else(|p| p.into_inner());
    if !rotations.contains_key(model) {
        rotations.insert(model.to_string(), ModelRotation::default());
    }
    let state = rotations.get_mut(model).expect("inserted just above");
    let by_weight = |list: &mut Vec<&Member<C>>| list.sort_by_key(|m| std::cmp::Reverse(m.weight));
    let ordered: Vec<&Member<C>> = match strategy {
        Strategy::RoundRobin => {
            let start = state.counter % members.len();
            state.counter = state.counter.wrapping_add(1);
            members[start..].iter().chain(members[..start].iter()).copied().collect()
        }
        Strategy::Weighted => {
            let picked = state.smooth_weighted(&members);
            let mut rest: Vec<&Member<C>> =
                members.iter().enumerate().filter(|(i, _)| *i != picked).map(|(_, m)| *m).collect();
            by_weight(&mut rest);
            std::iter::once(members[picked]).chain(rest).collect()
        }
        Strategy::Priority => {
            let mut tiers: Vec<i64> = members.iter().map(|m| m.priority).collect();
            tiers.sort_unstable_by(|a, b| b.cmp(a));
            tiers.dedup();
            let mut ordered = Vec::with_capacity(members.len());
            for (rank, tier) in tiers.into_iter().enumerate() {
                let mut in_tier: Vec<&Member<C>> = members.iter().filter(|m| m.priority == tier).copied().collect();
                if rank == 0 {
                    let picked = state.smooth_weighted(&in_tier);
                    ordered.push(in_tier.remove(picked));
                }
                by_weight(&mut in_tier);
                ordered.extend(in_tier);
            }
            ordered
        }
    };
    ordered.into_iter().map(|m| m.channel.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ChannelEntry;
    use crate::upstream::UpstreamUrl;
    use burncloud_service_api::{Channel, ChannelKind};

    fn member(id: i64, weight: i64, priority: i64) -> Member<ChannelEntry> {
        let channel = Arc::new(ChannelEntry {
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
                native_responses: true,
                created_at_ms: 0,
                updated_at_ms: 0,
            },
            wire: crate::adapters::Wire::OpenAi,
            base_url: String::new(),
            urls: std::array::from_fn(|_| UpstreamUrl::new(reqwest::Url::parse("http://127.0.0.1/").unwrap())),
            responses_url: None,
            auth_headers: Vec::new(),
            api_key: String::new(),
        });
        Member { channel, weight, priority }
    }

    fn first_picks(strategy: Strategy, members: &[Member<ChannelEntry>], picks: usize) -> HashMap<i64, usize> {
        let rotation = Rotation::default();
        let mut counts = HashMap::new();
        for _ in 0..picks {
            let ordered = order(strategy, &rotation, "m", members.iter().collect());
            assert_eq!(ordered.len(), members.len(), "every member stays available for failover");
            *counts.entry(ordered[0].channel.id).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn weighted_shares_are_exact_over_ten_thousand_picks() {
        let members = [member(1, 1, 0), member(2, 10, 0), member(3, 5, 0), member(4, 0, 0)];
        let counts = first_picks(Strategy::Weighted, &members, 10_000);
        for (id, weight) in [(1, 1.0), (2, 10.0), (3, 5.0)] {
            let share = counts[&id] as f64 / 10_000.0;
            let expected = weight / 16.0;
            assert!((share - expected).abs() <= 0.01, "channel {id}: {share} vs {expected}");
        }
        assert!(!counts.contains_key(&4), "weight 0 is never picked first");
    }

    #[test]
    fn round_robin_rotates_evenly() {
        let members = [member(1, 1, 0), member(2, 99, 0), member(3, 1, 0)];
        let counts = first_picks(Strategy::RoundRobin, &members, 9_999);
        assert!(counts.values().all(|&c| c == 3_333), "{counts:?}");
    }

    #[test]
    fn priority_keeps_to_the_top_tier_and_rotates_within_it() {
        let members = [member(1, 1, 10), member(2, 1, 10), member(3, 5, 1)];
        let counts = first_picks(Strategy::Priority, &members, 1_000);
        assert_eq!((counts[&1], counts[&2]), (500, 500));
        assert!(!counts.contains_key(&3));
        let rotation = Rotation::default();
        let ordered = order(Strategy::Priority, &rotation, "m", members.iter().collect());
        assert_eq!(ordered[2].channel.id, 3, "the lower tier is the last resort");
    }
}
