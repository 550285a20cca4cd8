//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4) with weights.
//!
//! Each backend walks its own permutation of the ring (`offset`, `skip` from two hashes of its
//! identity) and claims the next free slot on its turn. Weights: every round each backend
//! earns its weight in credit and takes one turn per `max_weight` of credit, so slots are
//! shared in proportion to weight. When one of N equal backends leaves, about 1/N of the
//! slots change (its own) plus a little churn: measured in the tests.

/// A backend as Maglev sees it: a stable identity and a weight (0: takes no slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevBackend {
    pub id: u64,
    pub weight: u32,
}

/// Ring slots that no backend took (no backend with a weight).
pub const EMPTY: u32 = u32::MAX;

/// Maglev rings must have a prime size for every permutation to cover the ring.
pub fn is_prime(n: u32) -> bool {
    n >= 2 && (2..).take_while(|d: &u32| (*d as u64) * (*d as u64) <= n as u64).all(|d| n % d != 0)
}

/// splitmix64: a fixed, well-mixed function, so rings are the same across runs and versions
/// (`std`'s hasher may change between Rust releases).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable identity for (service, real server): FNV-1a over the given bytes.
pub fn identity(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The ring: for each of `size` slots, an index into `backends` (or `EMPTY`).
/// `size` must be prime for every (offset, skip) pair to walk the whole ring.
pub fn populate(backends: &[MaglevBackend], size: u32) -> Vec<u32> {
    let size = size as u64;
    let mut ring = vec![EMPTY; size as usize];
    let max_weight = backends.iter().map(|b| b.weight).max().unwrap_or(0) as u64;
    if max_weight == 0 || size < 2 {
        return ring;
    }
    // Each backend's walk: slot j of its permutation is (offset + j * skip) mod size,
    // advanced by one addition (no division in the loop).
    let skips: Vec<u64> = backends.iter().map(|b| mix(b.id ^ 0x5bd1_e995) % (size - 1) + 1).collect();
    let mut position: Vec<u64> = backends.iter().map(|b| mix(b.id) % size).collect();
    let mut credit = vec![0u64; backends.len()];
    let mut filled = 0u64;
    while filled < size {
        for (i, backend) in backends.iter().enumerate() {
            credit[i] += backend.weight as u64;
            while credit[i] >= max_weight && filled < size {
                credit[i] -= max_weight;
                loop {
                    let slot = position[i] as usize;
                    position[i] += skips[i];
                    if position[i] >= size {
                        position[i] -= size;
                    }
                    if ring[slot] == EMPTY {
                        ring[slot] = i as u32;
                        filled += 1;
                        break;
                    }
                }
            }
        }
    }
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal(n: u64) -> Vec<MaglevBackend> {
        (0..n).map(|i| MaglevBackend { id: identity(format!("10.0.0.{i}:80").as_bytes()), weight: 1 }).collect()
    }

    fn shares(ring: &[u32], n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for slot in ring {
            counts[*slot as usize] += 1;
        }
        counts
    }

    #[test]
    fn equal_backends_get_nearly_equal_shares_of_a_65537_ring() {
        let ring = populate(&equal(3), 65537);
        for share in shares(&ring, 3) {
            assert!((21845 - 10..=21846 + 10).contains(&share), "{share}");
        }
    }

    #[test]
    fn weights_set_the_shares() {
        let mut backends = equal(3);
        backends[0].weight = 1;
        backends[1].weight = 2;
        backends[2].weight = 3;
        let counts = shares(&populate(&backends, 65537), 3);
        for (i, count) in counts.iter().enumerate() {
            let expected = 65537.0 * (i + 1) as f64 / 6.0;
            assert!((*count as f64 - expected).abs() / expected < 0.01, "backend {i}: {count} vs {expected}");
        }
    }

    #[test]
    fn no_weighted_backend_leaves_the_ring_empty() {
        assert!(populate(&[], 7).iter().all(|s| *s == EMPTY));
        let zero = [MaglevBackend { id: 1, weight: 0 }];
        assert!(populate(&zero, 7).iter().all(|s| *s == EMPTY));
    }

    #[test]
    fn when_one_of_n_backends_leaves_about_one_nth_of_the_slots_move() {
        for n in [3u64, 10, 50] {
            let before = equal(n);
            let ring_before = populate(&before, 65537);
            let after: Vec<MaglevBackend> = before[1..].to_vec();
            let ring_after = populate(&after, 65537);
            let moved = ring_before
                .iter()
                .zip(&ring_after)
                .filter(|(old, new)| before[**old as usize].id != after[**new as usize].id)
                .count() as f64
                / 65537.0;
            // The leaving backend's own share must move; Maglev adds a little churn on top.
            assert!(moved >= 1.0 / n as f64 * 0.99, "n={n}: {moved}");
            assert!(moved <= 1.0 / n as f64 * 1.6, "n={n}: {moved} moved");
        }
    }

    #[test]
    fn ring_sizes_are_checked_for_primality() {
        assert!(is_prime(65537) && is_prime(251) && is_prime(2));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(0));
    }

    #[test]
    fn the_ring_is_the_same_every_time() {
        assert_eq!(populate(&equal(5), 251), populate(&equal(5), 251));
    }
}
