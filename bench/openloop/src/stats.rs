//! Percentiles of latency samples (µs), nearest rank, in integer arithmetic so that p99.9 of 1,000
//! samples is the 999th value and not, by a rounding error, the 1,000th.

/// The percentiles the generator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Nearest-rank percentile of `sorted` (ascending): the smallest sample with at least
/// `per_10k`/10,000 of all samples at or below it. `per_10k` is the percentile in hundredths of a
/// percent (9,900 is p99, 9,990 is p99.9). 0 for no samples.
pub fn percentile(sorted: &[u64], per_10k: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (per_10k.min(10_000) * n).div_ceil(10_000).max(1);
    sorted[(rank - 1) as usize]
}

/// Sorts the samples and reads the reported percentiles off them.
pub fn summarize(mut samples: Vec<u64>) -> Summary {
    samples.sort_unstable();
    Summary {
        count: samples.len(),
        p50: percentile(&samples, 5_000),
        p90: percentile(&samples, 9_000),
        p99: percentile(&samples, 9_900),
        p999: percentile(&samples, 9_990),
        max: samples.last().copied().unwrap_or(0),
    }
}

/// µs as ms with three decimals, the unit of the printed line.
pub fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        assert_eq!(percentile(&[], 9_900), 0);
        assert_eq!(summarize(Vec::new()), Summary::default());
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let s = summarize(vec![7]);
        assert_eq!((s.count, s.p50, s.p90, s.p99, s.p999, s.max), (1, 7, 7, 7, 7, 7));
    }

    #[test]
    fn nearest_rank_on_1_to_100() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 5_000), 50);
        assert_eq!(percentile(&v, 9_000), 90);
        assert_eq!(percentile(&v, 9_900), 99);
        assert_eq!(percentile(&v, 9_990), 100); // 99.9 % of 100 is 99.9: rank 100
        assert_eq!(percentile(&v, 10_000), 100);
        assert_eq!(percentile(&v, 0), 1); // rank at least 1
        assert_eq!(percentile(&v, 1), 1);
    }

    #[test]
    fn p999_of_1000_is_the_999th_not_the_last() {
        // A float 99.9 / 100 * 1000 is 999.0000000000001 and would round up to rank 1000.
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 9_990), 999);
        assert_eq!(percentile(&v, 9_900), 990);
    }

    #[test]
    fn rank_rounds_up() {
        // p50 of 3 samples: 1.5 -> rank 2; p90 of 11: 9.9 -> rank 10.
        assert_eq!(percentile(&[10, 20, 30], 5_000), 20);
        let v: Vec<u64> = (1..=11).collect();
        assert_eq!(percentile(&v, 9_000), 10);
    }

    #[test]
    fn summarize_sorts_first() {
        let s = summarize(vec![5, 1, 4, 2, 3]);
        assert_eq!((s.count, s.p50, s.max), (5, 3, 5));
        assert_eq!(s.p99, 5);
    }

    #[test]
    fn an_outlier_shows_from_p99_only_when_it_is_over_1_percent() {
        let mut v = vec![100u64; 990];
        v.extend(std::iter::repeat_n(50_000, 10)); // exactly 1 %
        let s = summarize(v.clone());
        assert_eq!((s.p90, s.p99, s.p999, s.max), (100, 100, 50_000, 50_000));
        v.push(50_000); // now just over 1 %
        assert_eq!(summarize(v).p99, 50_000);
    }

    #[test]
    fn ms_has_three_decimals() {
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(999), "0.999");
        assert_eq!(ms(1_234_567), "1234.567");
    }
}
