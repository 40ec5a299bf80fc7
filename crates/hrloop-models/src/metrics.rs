//! Evaluation metrics, matched to scikit-learn to 1e-9 on shipped vectors
//! (`tests/data/sklearn_metrics.json`, made by `tests/data/make_sklearn_metrics.py`).

/// Area under the ROC curve (ties count half, as `sklearn.metrics.roc_auc_score`). `None`
/// when only one class is present.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    let n = y.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    // Average ranks (1-based) over ties.
    let mut rank = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            rank[k] = avg;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&b| b).count();
    let neg = n - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let rank_sum: f64 = (0..n).filter(|&k| y[k]).map(|k| rank[k]).sum();
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64))
}

/// Mean squared error of probabilities (`sklearn.metrics.brier_score_loss`).
pub fn brier(y: &[bool], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(&t, &q)| (q - f64::from(u8::from(t))).powi(2)).sum::<f64>() / y.len().max(1) as f64
}

/// Expected calibration error over `bins` equal-width bins, binned as scikit-learn's
/// `calibration_curve(strategy="uniform")`: sum over bins of |observed − predicted| / n.
pub fn expected_calibration_error(y: &[bool], p: &[f64], bins: usize) -> f64 {
    let mut count = vec![0usize; bins];
    let mut pos = vec![0.0; bins];
    let mut conf = vec![0.0; bins];
    for (&t, &q) in y.iter().zip(p) {
        // Index of the first inner edge >= q (numpy searchsorted, side="left").
        let b = (1..bins).filter(|&e| (e as f64 / bins as f64) < q).count();
        count[b] += 1;
        pos[b] += f64::from(u8::from(t));
        conf[b] += q;
    }
    (0..bins).filter(|&b| count[b] > 0).map(|b| (pos[b] - conf[b]).abs()).sum::<f64>() / y.len().max(1) as f64
}

/// NDCG@k of one ranked list with graded relevance, ties in `score` averaged as
/// `sklearn.metrics.ndcg_score(ignore_ties=False)`. 0 when no item is relevant.
pub fn ndcg_at_k(relevance: &[f64], score: &[f64], k: usize) -> f64 {
    let n = relevance.len();
    let discount: Vec<f64> = (0..n).map(|i| if i < k { 1.0 / ((i + 2) as f64).log2() } else { 0.0 }).collect();
    let mut cumsum = Vec::with_capacity(n);
    let mut acc = 0.0;
    for d in &discount {
        acc += d;
        cumsum.push(acc);
    }
    // DCG with tie groups sharing the average gain over the positions they occupy.
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut dcg = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start;
        while end + 1 < n && score[idx[end + 1]] == score[idx[start]] {
            end += 1;
        }
        let mean_gain = idx[start..=end].iter().map(|&i| relevance[i]).sum::<f64>() / (end - start + 1) as f64;
        let discounts = cumsum[end] - if start == 0 { 0.0 } else { cumsum[start - 1] };
        dcg += mean_gain * discounts;
        start = end + 1;
    }
    let mut ideal: Vec<f64> = relevance.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().zip(&discount).map(|(r, d)| r * d).sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Share of relevant items among the top `k` by score (ties keep input order).
pub fn precision_at_k(relevant: &[bool], score: &[f64], k: usize) -> f64 {
    let mut idx: Vec<usize> = (0..relevant.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    idx.iter().take(k).filter(|&&i| relevant[i]).count() as f64 / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn_on_shipped_vectors() {
        let data: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/sklearn_metrics.json")).expect("valid JSON");
        let cases = data["cases"].as_array().expect("cases");
        assert!(cases.len() >= 20);
        for case in cases {
            let metric = case["metric"].as_str().unwrap();
            let y: Vec<f64> = case["y"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let s: Vec<f64> = case["score"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let yb: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
            let got = match metric {
                "roc_auc" => roc_auc(&yb, &s).unwrap(),
                "brier" => brier(&yb, &s),
                "ece10" => expected_calibration_error(&yb, &s, 10),
                m if m.starts_with("ndcg@") => ndcg_at_k(&y, &s, m[5..].parse().unwrap()),
                m if m.starts_with("precision@") => precision_at_k(&yb, &s, m[10..].parse().unwrap()),
                other => panic!("unknown metric {other}"),
            };
            let want = case["expected"].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{metric}: got {got}, scikit-learn {want} ({})", case["python"]);
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(ndcg_at_k(&[0.0, 0.0], &[0.3, 0.1], 10), 0.0);
        assert_eq!(brier(&[], &[]), 0.0);
    }
}
