//! Identifiers the core makes: allocation, evaluation and plan IDs drawn from the seed, so
//! the same inputs give the same plan, IDs included. They look like Nomad's (random UUIDs,
//! version 4 layout). The generator mixes the evaluation's own ID (itself random) into the
//! seed, so two evaluations never share a stream even if their seeds collide.

use super::placement::rng::SplitMix64;

/// Deterministic UUID-shaped IDs.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: SplitMix64,
}

impl IdGen {
    /// IDs for one scheduling attempt of evaluation `eval_id` with `seed`.
    pub fn new(seed: u64, eval_id: &str) -> Self {
        Self { rng: SplitMix64::new(seed ^ fnv1a(eval_id.as_bytes()).rotate_left(17)) }
    }

    /// The next ID.
    pub fn next_id(&mut self) -> String {
        let hi = self.rng.next_u64();
        let lo = self.rng.next_u64();
        format_uuid(hi, lo)
    }
}

pub use stead_model::clock::format_uuid;

/// 64-bit FNV-1a: a stable hash for deriving seeds (never for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The seed of one scheduling attempt: the cluster's seed, the evaluation, its delivery
/// (the lease token: unique each time the queue hands the evaluation out) and the attempt.
/// A retry gets a different node order (as Nomad mixes its refresh index into the shuffle).
/// The delivery matters because the seed also draws the allocation IDs: an evaluation
/// delivered again after its worker died mid-way may already have committed placements
/// of its first delivery, and must not draw their IDs again (a placement would overwrite
/// the record of a committed one, and its usage would count twice).
pub fn attempt_seed(cluster_seed: u64, eval_id: &str, delivery: &str, attempt: u32) -> u64 {
    let mix = fnv1a(eval_id.as_bytes()) ^ fnv1a(delivery.as_bytes()).rotate_left(23);
    let mut rng = SplitMix64::new(cluster_seed ^ mix ^ u64::from(attempt).rotate_left(32));
    rng.next_u64()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ids_are_uuid_shaped_distinct_and_repeatable() {
        let mut a = IdGen::new(7, "eval-1");
        let ids: Vec<String> = (0..1000).map(|_| a.next_id()).collect();
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
        let mut again = IdGen::new(7, "eval-1");
        assert_eq!(again.next_id(), ids[0]);
        assert_ne!(IdGen::new(7, "eval-2").next_id(), ids[0]);
        assert_ne!(IdGen::new(8, "eval-1").next_id(), ids[0]);
    }

    #[test]
    fn attempts_get_different_seeds() {
        assert_ne!(attempt_seed(1, "e", "lease-1", 0), attempt_seed(1, "e", "lease-1", 1));
        assert_eq!(attempt_seed(1, "e", "lease-1", 0), attempt_seed(1, "e", "lease-1", 0));
        // Another delivery of the same evaluation draws other IDs.
        assert_ne!(attempt_seed(1, "e", "lease-1", 0), attempt_seed(1, "e", "lease-2", 0));
    }
}
