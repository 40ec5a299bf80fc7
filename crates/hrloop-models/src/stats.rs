//! The few statistics the gates and the experiment analysis need: the normal CDF, the pooled
//! two-proportion z-test, Wilson intervals, a mean with its normal interval, and the
//! chi-square test of a sample ratio.

/// Standard normal CDF (through the complementary error function, like [`upper_tail`]: one
/// implementation of the normal tails, accurate far into them).
pub fn normal_cdf(z: f64) -> f64 {
    upper_tail(-z)
}

/// Two-sided p-value of a pooled two-proportion z-test.
pub fn two_proportion_p(x1: usize, n1: usize, x2: usize, n2: usize) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    let z = ((p1 - p2) / se).abs();
    Some(2.0 * (1.0 - normal_cdf(z)))
}

/// Bonferroni adjustment: a p-value from the most extreme of `tests` comparisons (e.g. the
/// lowest against the highest of g groups, g(g-1)/2 pairs) multiplied by their number.
pub fn bonferroni(p: f64, tests: usize) -> f64 {
    (p * tests.max(1) as f64).min(1.0)
}

/// Pairs among `groups` groups.
pub fn pairs(groups: usize) -> usize {
    groups * groups.saturating_sub(1) / 2
}

/// Wilson score interval (95 %) of `x` successes in `n`.
pub fn wilson(x: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959963985;
    let (n, p) = (n as f64, x as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Mean and its 95 % normal interval.
pub fn mean_ci(values: &[f64]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some((mean, mean, mean));
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = 1.959963985 * (var / n as f64).sqrt();
    Some((mean, mean - half, mean + half))
}

/// Chi-square goodness of fit of observed counts against expected shares (one degree of
/// freedom per share beyond the first): returns (statistic, p-value). Used for the
/// sample-ratio-mismatch check with two arms, where the p-value is exact via the normal.
pub fn chi_square_two_arms(observed: [usize; 2], expected_share: [f64; 2]) -> Option<(f64, f64)> {
    let total: usize = observed.iter().sum();
    if total == 0 {
        return None;
    }
    let stat: f64 = observed
        .iter()
        .zip(expected_share)
        .map(|(&o, s)| {
            let e = s * total as f64;
            if e > 0.0 { (o as f64 - e).powi(2) / e } else { 0.0 }
        })
        .sum();
    // With one degree of freedom, chi2 = z^2.
    Some((stat, 2.0 * (1.0 - normal_cdf(stat.sqrt()))))
}

/// Always-valid sample-ratio check (Lindon & Malek 2020, "Anytime-valid inference for
/// multinomial count data", the sequential SRM test experimentation platforms use): the Bayes
/// factor of "the arms get other shares" (a Dirichlet mixture centred on the intended shares,
/// concentration 100) against "they get the intended shares". Under the intended split it is a
/// nonnegative martingale of mean 1, so its inverse (capped at 1) is a p-value that may be
/// looked at after every requisition without inflating false alarms, unlike a chi-square
/// repeated daily. None with no requisitions.
pub fn sample_ratio_p(observed: [usize; 2], expected_share: [f64; 2]) -> Option<f64> {
    const CONCENTRATION: f64 = 100.0;
    if observed.iter().sum::<usize>() == 0 || expected_share.iter().any(|s| !(*s > 0.0 && *s < 1.0)) {
        return None;
    }
    let ln_beta = |x: f64, y: f64| libm::lgamma(x) + libm::lgamma(y) - libm::lgamma(x + y);
    let (x, s) = ([observed[0] as f64, observed[1] as f64], expected_share);
    let a = [CONCENTRATION * s[0], CONCENTRATION * s[1]];
    let ln_bf = ln_beta(a[0] + x[0], a[1] + x[1]) - ln_beta(a[0], a[1]) - (x[0] * s[0].ln() + x[1] * s[1].ln());
    Some((-ln_bf).exp().min(1.0))
}

/// 95 % interval of a ROC AUC measured on `positives` and `negatives` independent rows
/// (Hanley & McNeil 1982, the exponential approximation of the score distributions), clamped to
/// [0, 1]. None without both classes.
pub fn auc_interval(auc: f64, positives: usize, negatives: usize) -> Option<(f64, f64)> {
    if positives == 0 || negatives == 0 {
        return None;
    }
    let (np, nn) = (positives as f64, negatives as f64);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let v = (auc * (1.0 - auc) + (np - 1.0) * (q1 - auc * auc) + (nn - 1.0) * (q2 - auc * auc)) / (np * nn);
    let half = 1.959_963_984_540_054 * v.max(0.0).sqrt();
    Some(((auc - half).max(0.0), (auc + half).min(1.0)))
}

/// Variance of a ratio of sums over clusters, Σy / Σn (e.g. overrides per feedback row, summed
/// over requisitions), by the delta method: the cluster-robust variance that treats the
/// requisition, the unit of randomisation, as the independent unit rather than the row.
/// `clusters` are (y, n) per cluster; None with fewer than two clusters. Floored at the
/// binomial variance of independent rows (clustering never makes a rate more precise), which
/// also keeps an arm with no overrides yet from claiming certainty.
pub fn cluster_ratio_variance(clusters: &[(f64, f64)]) -> Option<f64> {
    let (y, n): (f64, f64) = clusters.iter().fold((0.0, 0.0), |(y, n), c| (y + c.0, n + c.1));
    cluster_mean_variance(clusters).map(|v| v.max(binomial_floor(y, n)))
}

/// The same delta-method variance of Σy / Σn over clusters for any y (e.g. a mean difference
/// of a feature over pairs, summed per requisition), without the floor of a rate. None with
/// fewer than two clusters.
pub fn cluster_mean_variance(clusters: &[(f64, f64)]) -> Option<f64> {
    let k = clusters.len();
    let (y, n): (f64, f64) = clusters.iter().fold((0.0, 0.0), |(y, n), c| (y + c.0, n + c.1));
    if k < 2 || n <= 0.0 {
        return None;
    }
    let r = y / n;
    let mean_n = n / k as f64;
    let s2 = clusters.iter().map(|(yi, ni)| (yi - r * ni).powi(2)).sum::<f64>() / (k - 1) as f64;
    Some(s2 / (k as f64 * mean_n * mean_n))
}

/// Variance of ln(Σy_a / Σn_a) − ln(Σy_b / Σn_b) when both ratios are measured on the same
/// clusters (e.g. two groups' selection rates over the same requisitions): `a[i]` and `b[i]` are
/// cluster i's (y, n), (0, 0) where a side has no rows in it. The delta method over clusters,
/// with each side's rate shrunk half a row towards the middle so a side with no events yet has
/// a finite log. Counting both sides per cluster keeps their covariance: what a cluster does to
/// both rates alike (a requisition whose ranking selects more of everyone) cancels, and a
/// trade-off between them (a fixed top 5) adds. Floored at the variance of independent rows.
/// None with fewer than two clusters, slices of different lengths, or a side with no rows.
pub fn cluster_log_ratio_contrast_variance(a: &[(f64, f64)], b: &[(f64, f64)]) -> Option<f64> {
    let k = a.len();
    let sums = |c: &[(f64, f64)]| c.iter().fold((0.0, 0.0), |(y, n), r| (y + r.0, n + r.1));
    let ((ya, na), (yb, nb)) = (sums(a), sums(b));
    if k < 2 || b.len() != k || na <= 0.0 || nb <= 0.0 {
        return None;
    }
    let shrunk = |y: f64, n: f64| (y + 0.5) / (n + 1.0);
    // Each cluster's pull on the log of each side's rate, and on their difference.
    let (scale_a, scale_b) = (shrunk(ya, na) * na, shrunk(yb, nb) * nb);
    let (ra, rb) = (ya / na, yb / nb);
    let sum: f64 =
        a.iter().zip(b).map(|(ca, cb)| ((ca.0 - ra * ca.1) / scale_a - (cb.0 - rb * cb.1) / scale_b).powi(2)).sum();
    let clustered = sum * k as f64 / (k - 1) as f64;
    let independent = binomial_floor(ya, na) / shrunk(ya, na).powi(2) + binomial_floor(yb, nb) / shrunk(yb, nb).powi(2);
    Some(clustered.max(independent))
}

/// The normal-mixture sequential probability ratio of "the difference is `delta`, with
/// variance `variance`" against "no difference", mixing over true differences N(0, tau²)
/// (Johari, Pekelis & Walsh, "Always valid inference", the basis of Optimizely's Stats
/// Engine). Under no difference it is a nonnegative martingale of mean 1, so by Ville's
/// inequality the chance it *ever* reaches 1/α, however often it is looked at, is at most α:
/// rejecting when it does keeps daily looks at the stated error rate. `1 / ratio` (capped at 1)
/// is an always-valid p-value.
pub fn mixture_likelihood_ratio(delta: f64, variance: f64, tau: f64) -> f64 {
    if variance <= 0.0 {
        return 1.0;
    }
    let t2 = tau * tau;
    (variance / (variance + t2)).sqrt() * (delta * delta * t2 / (2.0 * variance * (variance + t2))).exp()
}

/// The smallest |difference| at which [`mixture_likelihood_ratio`] reaches `1 / alpha` for an
/// estimate with variance `variance`: the test's rejection boundary, and the half-width of its
/// always-valid (1 − alpha) confidence interval (the differences it cannot yet reject).
pub fn mixture_boundary(variance: f64, tau: f64, alpha: f64) -> f64 {
    let t2 = tau * tau;
    (2.0 * variance * (variance + t2) / t2 * ((1.0 / alpha).ln() + 0.5 * ((variance + t2) / variance).ln())).sqrt()
}

/// Upper tail of the standard normal, accurate far into the tail (the first looks of a
/// group-sequential design spend a few in ten thousand).
pub fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The Hwang–Shih–DeCani error-spending function: the share of `alpha` spent by information
/// fraction `t`. `gamma` −4 spends like O'Brien–Fleming (almost nothing early, nearly the
/// full fixed-sample test at the end), 1 like Pocock (evenly), 0 in proportion to `t`.
pub fn hsd_spent(t: f64, alpha: f64, gamma: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    if gamma.abs() < 1e-9 { alpha * t } else { alpha * (1.0 - (-gamma * t).exp()) / (1.0 - (-gamma).exp()) }
}

/// Two-sided boundaries of a group-sequential test with `looks` equally spaced looks: at look
/// k (1-based) the test rejects "no difference" when |z| ≥ `boundaries[k - 1]`, and the chance
/// that an estimate with no true difference crosses at any look is `spent(1)` (exactly, up to
/// the numerical integration), of which look k spends `spent(k / looks) − spent((k − 1) /
/// looks)`. Computed by the recursive numerical integration of Armitage, McPherson & Rowe
/// (1969; Jennison & Turnbull, "Group Sequential Methods", 2000, ch. 19) over the score
/// statistic, whose increments are independent N(0, 1). Skipping a look only lowers the error.
pub fn group_sequential_boundaries(looks: usize, spent: impl Fn(f64) -> f64) -> Vec<f64> {
    // Simpson's rule over the continuation region of the score S_k, in steps of at most H.
    const H: f64 = 0.04;
    let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let grid = |b: f64| {
        let n = (((2.0 * b) / H).ceil() as usize).max(2).next_multiple_of(2);
        let h = 2.0 * b / n as f64;
        (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                (-b + i as f64 * h, w * h / 3.0)
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::with_capacity(looks);
    // (point, weight × density of continuing to it) at the previous look.
    let mut previous: Vec<(f64, f64)> = Vec::new();
    for k in 1..=looks {
        let target = (spent(k as f64 / looks as f64) - spent((k - 1) as f64 / looks as f64)).max(0.0);
        // P(|S_k| ≥ b and no crossing before), decreasing in b.
        let crossing = |b: f64| {
            if k == 1 {
                2.0 * upper_tail(b)
            } else {
                previous.iter().map(|(u, wf)| wf * (upper_tail(b - u) + upper_tail(b + u))).sum()
            }
        };
        let b = if target < 1e-15 {
            f64::INFINITY
        } else {
            let (mut lo, mut hi) = (0.0, 60.0);
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if crossing(mid) > target { lo = mid } else { hi = mid }
            }
            0.5 * (lo + hi)
        };
        let root = (k as f64).sqrt();
        out.push(b / root);
        if k < looks {
            // Nothing spent yet at this look: S_k is unbounded; ±8 sd covers it.
            let b = if b.is_finite() { b } else { 8.0 * root };
            previous = grid(b)
                .into_iter()
                .map(|(s, w)| {
                    let f = if k == 1 { density(s) } else { previous.iter().map(|(u, wf)| wf * density(s - u)).sum() };
                    (s, w * f)
                })
                .collect();
        }
    }
    out
}

/// [`group_sequential_boundaries`] for `looks` daily looks spending `alpha` by
/// [`hsd_spent`], computed once per design (the calibration harness judges millions of days).
pub fn hsd_boundaries(looks: usize, alpha: f64, gamma: f64) -> std::sync::Arc<Vec<f64>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static DESIGNS: OnceLock<Mutex<HashMap<(usize, u64, u64), Arc<Vec<f64>>>>> = OnceLock::new();
    let key = (looks.max(1), alpha.to_bits(), gamma.to_bits());
    let mut designs = DESIGNS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    designs
        .entry(key)
        .or_insert_with(|| Arc::new(group_sequential_boundaries(key.0, |t| hsd_spent(t, alpha, gamma))))
        .clone()
}

/// A rate of `y` in `n` shrunk towards `mean` by `prior` pseudo-rows: near the mean when `n`
/// is small, near y / n when it is large (the covariate of a recruiter with little history).
pub fn shrunk_rate(y: f64, n: f64, mean: f64, prior: f64) -> f64 {
    (y + prior * mean) / (n + prior)
}

/// One requisition of a ratio metric with a pre-experiment covariate: the numerator (e.g.
/// overrides), the denominator (feedback rows) and the covariate (e.g. its recruiter's override
/// rate before the experiment started).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Covaried {
    pub y: f64,
    pub n: f64,
    pub x: f64,
}

/// CUPED for a ratio metric (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of
/// online controlled experiments by utilizing pre-experiment data"; linearised for ratios as in
/// Deng, Knoblich & Lu 2018): each arm's rate is adjusted by how far its requisitions' covariate
/// is from the pooled one, with one coefficient fitted on both arms together, and its
/// requisition-level variance is that of the residual. The covariate is fixed before the
/// experiment, so the adjustment cannot bias the comparison; it only removes the part of the
/// noise the covariate explains. Returns per arm (adjusted rate, variance), each variance
/// floored at the binomial variance of independent rows like [`cluster_ratio_variance`]; None
/// when an arm has fewer than two requisitions or the covariate does not vary.
pub fn cuped_ratios(arms: [&[Covaried]; 2]) -> Option<[(f64, f64); 2]> {
    /// One arm, linearised: per requisition u = y - R n and the covariate term v = n (x - pooled),
    /// centred on the arm's mean.
    struct Arm {
        y: f64,
        n: f64,
        /// The arm's mean covariate minus the pooled one (n-weighted).
        shift: f64,
        uv: Vec<(f64, f64)>,
    }
    let totals = |c: &[Covaried]| c.iter().fold((0.0, 0.0, 0.0), |(y, n, nx), r| (y + r.y, n + r.n, nx + r.n * r.x));
    let [t0, t1] = [totals(arms[0]), totals(arms[1])];
    if arms.iter().any(|c| c.len() < 2) || t0.1 <= 0.0 || t1.1 <= 0.0 {
        return None;
    }
    let pooled_x = (t0.2 + t1.2) / (t0.1 + t1.1);
    let linearise = |c: &[Covaried], (y, n, _): (f64, f64, f64)| {
        let rate = y / n;
        let nv: f64 = c.iter().map(|r| r.n * (r.x - pooled_x)).sum();
        let v_mean = nv / c.len() as f64;
        let uv = c.iter().map(|r| (r.y - rate * r.n, r.n * (r.x - pooled_x) - v_mean)).collect();
        Arm { y, n, shift: nv / n, uv }
    };
    let parts = [linearise(arms[0], t0), linearise(arms[1], t1)];
    let (sxy, sxx) = parts.iter().flat_map(|p| &p.uv).fold((0.0, 0.0), |(sxy, sxx), (u, v)| (sxy + u * v, sxx + v * v));
    if sxx <= 0.0 {
        return None;
    }
    let theta = sxy / sxx;
    Some(parts.map(|a| {
        let k = a.uv.len() as f64;
        let residual = a.uv.iter().map(|(u, v)| (u - theta * v).powi(2)).sum::<f64>() * k / (k - 1.0) / (a.n * a.n);
        (a.y / a.n - theta * a.shift, residual.max(binomial_floor(a.y, a.n)))
    }))
}

/// The binomial variance of `y` in `n` independent rows, with the rate shrunk half a row towards
/// the middle: the least variance a clustered rate may claim (clustering never makes a rate more
/// precise), which also keeps an arm with no events yet from claiming certainty.
fn binomial_floor(y: f64, n: f64) -> f64 {
    let shrunk = (y + 0.5) / (n + 1.0);
    shrunk * (1.0 - shrunk) / n
}

/// The z-value below which a standard normal falls with probability 0.8 (80 % power).
pub const Z_POWER_80: f64 = 0.841_621_233_572_914_3;

#[cfg(test)]
mod tests {
    #[test]
    fn a_contrast_over_shared_clusters_cancels_what_they_share_and_keeps_what_they_trade() {
        use super::*;
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // 400 requisitions of 10 candidates per side, each selecting at its own rate r (shared by
        // both sides: icc), b at 0.6 r.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            let r: f64 = rng.random_range(0.05..0.6);
            let count = |p: f64, rng: &mut rand::rngs::StdRng| (0..10).filter(|_| rng.random_bool(p)).count() as f64;
            a.push((count(r, &mut rng), 10.0));
            b.push((count(0.6 * r, &mut rng), 10.0));
        }
        let log_var = |c: &[(f64, f64)]| {
            let (y, n) = c.iter().fold((0.0, 0.0), |(y, n), r| (y + r.0, n + r.1));
            cluster_ratio_variance(c).unwrap() / (y / n).powi(2)
        };
        let separate = log_var(&a) + log_var(&b);
        let paired = cluster_log_ratio_contrast_variance(&a, &b).unwrap();
        assert!(paired < 0.75 * separate, "{paired} vs {separate}");
        // Unpaired (b's clusters shuffled away from a's), it is the two separate variances.
        b.rotate_left(1);
        let unpaired = cluster_log_ratio_contrast_variance(&a, &b).unwrap();
        assert!((unpaired / separate - 1.0).abs() < 0.2, "{unpaired} vs {separate}");
        // A trade-off (exactly 5 selected of the two sides' 10) is less precise than independent.
        let traded: Vec<((f64, f64), (f64, f64))> =
            (0..400).map(|i| ((f64::from(i % 4), 5.0), (5.0 - f64::from(i % 4), 5.0))).collect();
        let (ta, tb): (Vec<_>, Vec<_>) = traded.into_iter().unzip();
        let t = cluster_log_ratio_contrast_variance(&ta, &tb).unwrap();
        assert!(t > 1.5 * (log_var(&ta) + log_var(&tb)), "{t}");
        assert!(cluster_log_ratio_contrast_variance(&a[..1], &b[..1]).is_none());
        assert!(cluster_log_ratio_contrast_variance(&a, &b[..3]).is_none());
    }

    #[test]
    fn the_mixture_ratio_matches_its_closed_form_and_the_cluster_variance_grows_with_correlation() {
        use super::*;

        // V = 0.001, tau = 0.1: sqrt(0.001/0.011) * exp(0.01 * 0.01 / (2 * 0.001 * 0.011)).
        let lr = mixture_likelihood_ratio(0.1, 0.001, 0.1);
        assert!((lr - (0.001f64 / 0.011).sqrt() * (0.0001f64 / 0.000022).exp()).abs() < 1e-9, "{lr}");
        assert!(mixture_likelihood_ratio(0.0, 0.001, 0.1) < 1.0, "no difference: below 1");
        // Ten requisitions of 5 rows; the same 20 overrides either spread out or bunched.
        let spread: Vec<(f64, f64)> = (0..10).map(|_| (2.0, 5.0)).collect();
        let bunched: Vec<(f64, f64)> = (0..10).map(|i| (if i < 4 { 5.0 } else { 0.0 }, 5.0)).collect();
        let (vs, vb) = (cluster_ratio_variance(&spread).unwrap(), cluster_ratio_variance(&bunched).unwrap());
        assert!((vs - (20.5f64 / 51.0) * (30.5 / 51.0) / 50.0).abs() < 1e-12, "floored at binomial: {vs}");
        // Bunched: s2 = (4 * 9 + 6 * 4) / 9, variance s2 / (10 * 25).
        assert!((vb - (60.0 / 9.0) / 250.0).abs() < 1e-12, "{vb}");
        assert!(cluster_ratio_variance(&spread[..1]).is_none());
        // CUPED: a covariate that explains the requisitions' differences narrows the variance;
        // a constant one cannot be used.
        let reqs: Vec<Covaried> = (0..40)
            .map(|i| {
                let x = (i % 4) as f64 / 4.0;
                Covaried { y: (5.0 * x).round() + (i % 2) as f64, n: 5.0, x }
            })
            .collect();
        let (a, b) = reqs.split_at(20);
        let [(ra, va), _] = cuped_ratios([a, b]).unwrap();
        let plain = cluster_ratio_variance(&a.iter().map(|r| (r.y, r.n)).collect::<Vec<_>>()).unwrap();
        assert!(va < plain / 2.0, "{va} vs {plain}");
        let ya: f64 = a.iter().map(|r| r.y).sum();
        assert!((ra - ya / 100.0).abs() < 1e-9, "balanced covariates leave the rate: {ra}");
        let flat: Vec<Covaried> = a.iter().map(|r| Covaried { x: 0.3, ..*r }).collect();
        assert!(cuped_ratios([&flat, &flat]).is_none());
        // The always-valid sample-ratio check: a 50/50 split read as 80/20 is flagged, the
        // intended split is not (values from the closed form, computed with Python's lgamma).
        assert!(sample_ratio_p([100, 100], [0.5, 0.5]).unwrap() > 0.5);
        assert!((sample_ratio_p([160, 40], [0.5, 0.5]).unwrap() - 3.0257436953872e-11).abs() < 1e-15);
        assert!((sample_ratio_p([850, 150], [0.8, 0.2]).unwrap() - 0.001561969805143302).abs() < 1e-9);
        assert!((sample_ratio_p([18, 12], [0.8, 0.2]).unwrap() - 0.5411205987737518).abs() < 1e-9);
        // The boundary is where the ratio reaches 1 / alpha.
        let b = mixture_boundary(0.001, 0.1, 0.05);
        assert!((mixture_likelihood_ratio(b, 0.001, 0.1) - 20.0).abs() < 1e-9, "{b}");
    }

    use super::*;

    #[test]
    fn group_sequential_boundaries_match_published_tables_and_keep_alpha_by_simulation() {
        // Lan–DeMets O'Brien–Fleming-type spending in its two-sided form 4 − 4Φ(z_{α/4} / √t),
        // 5 equal looks, α = 0.05 (R's ldbounds: 4.877, 3.357, 2.680, 2.290, 2.031).
        let z = 1.959963984540054;
        let z4 = 2.241402727604947;
        let obf = group_sequential_boundaries(5, |t: f64| if t <= 0.0 { 0.0 } else { 4.0 * upper_tail(z4 / t.sqrt()) });
        for (got, want) in obf.iter().zip([4.877, 3.357, 2.680, 2.290, 2.031]) {
            assert!((got - want).abs() < 0.002, "{obf:?}");
        }
        // One look spends everything: the fixed-sample test.
        assert!((group_sequential_boundaries(1, |t| hsd_spent(t, 0.05, -4.0))[0] - z).abs() < 1e-6);
        // 28 daily looks: a random walk with no drift crosses them 5 % of the time.
        let c = group_sequential_boundaries(28, |t| hsd_spent(t, 0.05, -2.0));
        assert!(c.windows(2).all(|w| w[0] > w[1]), "{c:?}");
        let mut state = 7u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let runs = 40_000;
        let crossed = (0..runs)
            .filter(|_| {
                let mut s = 0.0;
                (1..=28).any(|k| {
                    let (u1, u2) = (uniform().max(1e-300), uniform());
                    s += (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    (s / (k as f64).sqrt()).abs() >= c[k - 1]
                })
            })
            .count();
        let rate = crossed as f64 / runs as f64;
        assert!((rate - 0.05).abs() < 0.005, "{rate}");
    }

    #[test]
    fn against_reference_values() {
        assert!((normal_cdf(1.959963985) - 0.975).abs() < 1e-6);
        // scipy.stats.chisquare([850, 150], f_exp=[800, 200]) -> statistic 15.625, p 7.72e-05
        let (stat, p) = chi_square_two_arms([850, 150], [0.8, 0.2]).unwrap();
        assert!((stat - 15.625).abs() < 1e-9);
        assert!((p - 7.72e-5).abs() < 1e-6, "{p}");
        // statsmodels proportion_confint(8, 20, method="wilson") -> (0.2188, 0.6134)
        let (lo, hi) = wilson(8, 20).unwrap();
        assert!((lo - 0.2188).abs() < 1e-4 && (hi - 0.6134).abs() < 1e-4, "{lo} {hi}");
        let (m, lo, hi) = mean_ci(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((m - 2.5).abs() < 1e-12 && (hi - m - 1.959963985 * (1.6666666666666667f64 / 4.0).sqrt()).abs() < 1e-9);
        assert!(lo < m);
    }

    #[test]
    fn auc_interval_matches_hanley_and_mcneil() {
        // Their table: AUC 0.8 on 50 + 50 rows has a standard error of about 0.044.
        let (lo, hi) = auc_interval(0.8, 50, 50).unwrap();
        assert!(((hi - lo) / (2.0 * 1.96) - 0.0442).abs() < 0.001, "{lo}..{hi}");
        assert_eq!(auc_interval(0.8, 0, 50), None);
    }
}
