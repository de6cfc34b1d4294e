//! How Karmada divides a workload's replicas by a static weight list, so that `meshboot render
//! demo` prints the split the hub will really make.
//!
//! Karmada ≥ 1.16 (`pkg/util/helper/webstermethod.go`, used by the static-weight assignment)
//! hands out replicas one at a time with the Webster/Sainte-Laguë divisor method: the next
//! replica goes to the cluster with the largest `weight / (2·replicas + 1)`. When two clusters
//! have the same quotient, the one with fewer replicas wins; when that ties too, the cluster
//! names decide, in ascending or descending order as an FNV hash of the workload's UID says.
//! The UID exists only once the hub has stored the object, so where such a tie decides a
//! replica, the split has two possible outcomes ([`Split::tied`]), and this module gives both.
//!
//! Up to Karmada 1.15 the remainder went by weight, then by the previous result, then at random
//! (karmada-io/karmada#6735: not monotone); those versions may split differently.
//!
//! Clusters in the list with weight 0 never get a replica unless every weight is 0, when Karmada
//! weighs them all equally.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

/// Which way a name tie goes (Karmada picks it from the hash of the workload's UID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameOrder {
    /// `ap` before `eu` before `us`.
    Ascending,
    /// `us` before `eu` before `ap`.
    Descending,
}

/// Divides `replicas` over `weights` (cluster name, weight) the way Karmada's scheduler does,
/// with name ties settled in `order`. The result has every cluster of `weights`, in their order.
///
/// ```
/// use mesh_core::render::webster::{NameOrder, divide};
/// let w = [("eu", 1), ("ap", 1), ("us", 1)];
/// let asc = divide(&w, 10, NameOrder::Ascending);
/// assert_eq!(asc, [("eu".to_string(), 3), ("ap".to_string(), 4), ("us".to_string(), 3)]);
/// let desc = divide(&w, 10, NameOrder::Descending);
/// assert_eq!(desc, [("eu".to_string(), 3), ("ap".to_string(), 3), ("us".to_string(), 4)]);
/// ```
pub fn divide(weights: &[(&str, u64)], replicas: u32, order: NameOrder) -> Vec<(String, u32)> {
    let every_zero = weights.iter().all(|(_, w)| *w == 0);
    let votes: Vec<u64> = weights
        .iter()
        .map(|(_, w)| if every_zero { 1 } else { *w })
        .collect();
    let mut seats = vec![0u32; weights.len()];
    if weights.is_empty() {
        return Vec::new();
    }
    for _ in 0..replicas {
        let mut best = 0;
        for i in 1..weights.len() {
            if beats(i, best, weights, &votes, &seats, order) {
                best = i;
            }
        }
        seats[best] += 1;
    }
    weights
        .iter()
        .zip(seats)
        .map(|((name, _), s)| (name.to_string(), s))
        .collect()
}

/// True when cluster `a` takes the next replica before cluster `b`.
fn beats(
    a: usize,
    b: usize,
    weights: &[(&str, u64)],
    votes: &[u64],
    seats: &[u32],
    order: NameOrder,
) -> bool {
    // va/(2sa+1) against vb/(2sb+1), compared exactly (Karmada divides in float64, which rounds
    // equal quotients of small integers to the same value).
    let left = u128::from(votes[a]) * u128::from(2 * u64::from(seats[b]) + 1);
    let right = u128::from(votes[b]) * u128::from(2 * u64::from(seats[a]) + 1);
    match left.cmp(&right) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => match seats[a].cmp(&seats[b]) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => match order {
                NameOrder::Ascending => weights[a].0 < weights[b].0,
                NameOrder::Descending => weights[a].0 > weights[b].0,
            },
        },
    }
}

/// One cluster's share of a [`Split`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    /// The cluster.
    pub cluster: String,
    /// Its static weight.
    pub weight: u64,
    /// Its replicas when the UID's hash orders tied names ascending.
    pub replicas: u32,
    /// Its replicas when the hash orders them descending, when that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_if_descending: Option<u32>,
}

/// The replicas Karmada gives each cluster, with both outcomes where a tie decides.
///
/// ```
/// use mesh_core::render::webster::Split;
/// let split = Split::of(&[("eu", 2), ("us", 2), ("ap", 1)], 10);
/// assert!(!split.tied());
/// assert_eq!(split.describe(), "eu 4, us 4, ap 2");
/// let split = Split::of(&[("eu", 1), ("ap", 1), ("us", 1)], 10);
/// assert!(split.tied());
/// assert_eq!(split.describe(), "eu 3, ap 4 or 3, us 3 or 4");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    /// The replicas divided.
    pub replicas: u32,
    /// Every cluster of the weight list, in its order.
    pub shares: Vec<Share>,
}

impl Split {
    /// Divides `replicas` over `weights` both ways a name tie can go.
    pub fn of(weights: &[(&str, u64)], replicas: u32) -> Split {
        let asc = divide(weights, replicas, NameOrder::Ascending);
        let desc = divide(weights, replicas, NameOrder::Descending);
        let shares = weights
            .iter()
            .zip(asc.iter().zip(desc.iter()))
            .map(|((name, weight), ((_, a), (_, d)))| Share {
                cluster: name.to_string(),
                weight: *weight,
                replicas: *a,
                replicas_if_descending: (a != d).then_some(*d),
            })
            .collect();
        Split { replicas, shares }
    }

    /// True when a tie between cluster names decides where some replica goes, so the split
    /// depends on the workload's UID.
    pub fn tied(&self) -> bool {
        self.shares
            .iter()
            .any(|s| s.replicas_if_descending.is_some())
    }

    /// `eu 4, us 4, ap 2`; a share a tie decides reads `ap 4 or 3` (ascending first).
    pub fn describe(&self) -> String {
        self.shares
            .iter()
            .map(|s| match s.replicas_if_descending {
                Some(d) => format!("{} {} or {d}", s.cluster, s.replicas),
                None => format!("{} {}", s.cluster, s.replicas),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The split as a map, ascending outcome.
    pub fn ascending(&self) -> BTreeMap<&str, u32> {
        self.shares
            .iter()
            .map(|s| (s.cluster.as_str(), s.replicas))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(weights: &[(&str, u64)], replicas: u32) -> (Vec<u32>, Vec<u32>) {
        let strip = |v: Vec<(String, u32)>| v.into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        (
            strip(divide(weights, replicas, NameOrder::Ascending)),
            strip(divide(weights, replicas, NameOrder::Descending)),
        )
    }

    const EQUAL: [(&str, u64); 3] = [("eu", 1), ("ap", 1), ("us", 1)];
    const FORTY_FORTY_TWENTY: [(&str, u64); 3] = [("eu", 2), ("us", 2), ("ap", 1)];

    #[test]
    fn three_replicas_at_one_one_one_go_one_each_whatever_the_uid() {
        assert_eq!(both(&EQUAL, 3), (vec![1, 1, 1], vec![1, 1, 1]));
        assert!(!Split::of(&EQUAL, 3).tied());
    }

    #[test]
    fn ten_replicas_at_one_one_one_leave_the_tenth_to_the_first_or_last_name() {
        // Nine go three each; the tenth is a three-way tie of equal quotients and equal
        // replicas, which only the name order settles: ap (ascending) or us (descending),
        // never eu in the middle.
        assert_eq!(both(&EQUAL, 10), (vec![3, 4, 3], vec![3, 3, 4]));
        let split = Split::of(&EQUAL, 10);
        assert!(split.tied());
        assert_eq!(split.describe(), "eu 3, ap 4 or 3, us 3 or 4");
    }

    #[test]
    fn three_replicas_at_two_two_one_go_one_each() {
        // eu and us tie on 2/1 for the first two (the name order only swaps which is first),
        // then ap's 1/1 beats their 2/3.
        assert_eq!(both(&FORTY_FORTY_TWENTY, 3), (vec![1, 1, 1], vec![1, 1, 1]));
        assert!(!Split::of(&FORTY_FORTY_TWENTY, 3).tied());
    }

    #[test]
    fn ten_replicas_at_two_two_one_are_forty_forty_twenty() {
        assert_eq!(
            both(&FORTY_FORTY_TWENTY, 10),
            (vec![4, 4, 2], vec![4, 4, 2])
        );
        assert_eq!(
            Split::of(&FORTY_FORTY_TWENTY, 10).describe(),
            "eu 4, us 4, ap 2"
        );
    }

    #[test]
    fn karmadas_own_examples_divide_the_same() {
        // webstermethod_test.go: 4 seats over 1200/900/400, and the Sainte-Laguë article's
        // 8 seats over 100000/80000/30000/20000.
        let (a, _) = both(&[("Alpha", 1200), ("Beta", 900), ("Gamma", 400)], 4);
        assert_eq!(a, [2, 1, 1]);
        let parties = [
            ("PartyA", 100_000),
            ("PartyB", 80_000),
            ("PartyC", 30_000),
            ("PartyD", 20_000),
        ];
        let (a, d) = both(&parties, 8);
        assert_eq!((a.clone(), d), (vec![3, 3, 1, 1], vec![3, 3, 1, 1]));
    }

    #[test]
    fn more_replicas_never_take_one_away_from_a_cluster() {
        // The property 1.16's method was adopted for (karmada-io/karmada#6735).
        let weights = [("southcentralus", 170), ("westus", 110), ("eastus2", 60)];
        let mut previous = vec![0; 3];
        for n in 1..60 {
            let (now, _) = both(&weights, n);
            assert!(
                now.iter().zip(&previous).all(|(a, b)| a >= b),
                "{n}: {now:?}"
            );
            previous = now;
        }
    }

    #[test]
    fn zero_weights_only_count_when_all_are_zero() {
        assert_eq!(both(&[("a", 0), ("b", 1)], 3).0, [0, 3]);
        assert_eq!(both(&[("a", 0), ("b", 0)], 2).0, [1, 1]);
        assert!(divide(&[], 3, NameOrder::Ascending).is_empty());
    }
}
