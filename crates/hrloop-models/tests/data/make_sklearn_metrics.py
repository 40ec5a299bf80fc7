"""Reference values for hrloop's metric functions, from scikit-learn.

Run: python3 make_sklearn_metrics.py > sklearn_metrics.json
Each case stores its inputs, the expected value, and the exact expression that produced it.
precision@k and ECE have no scikit-learn function; they are computed with numpy on the same
binning scikit-learn's calibration_curve uses, and say so.
"""
import json

import numpy as np
import sklearn
from sklearn.metrics import brier_score_loss, ndcg_score, roc_auc_score

rng = np.random.default_rng(20261121)
cases = []

for i, n in enumerate([10, 57, 400]):
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    s = np.round(rng.random(n) * 0.6 + y * 0.25, 2 if i == 1 else 6)  # case 1 has ties
    p = np.clip(s, 0, 1)
    cases.append({"metric": "roc_auc", "y": y.tolist(), "score": s.tolist(),
                  "expected": float(roc_auc_score(y, s)), "python": "sklearn.metrics.roc_auc_score(y, score)"})
    cases.append({"metric": "brier", "y": y.tolist(), "score": p.tolist(),
                  "expected": float(brier_score_loss(y, p)), "python": "sklearn.metrics.brier_score_loss(y, score)"})
    bins = np.linspace(0.0, 1.0, 11)
    ids = np.searchsorted(bins[1:-1], p)
    cnt = np.bincount(ids, minlength=10)
    acc = np.bincount(ids, weights=y, minlength=10)
    conf = np.bincount(ids, weights=p, minlength=10)
    nz = cnt > 0
    ece = float(np.sum(np.abs(acc[nz] - conf[nz])) / n)
    cases.append({"metric": "ece10", "y": y.tolist(), "score": p.tolist(), "expected": ece,
                  "python": "numpy, binning of sklearn.calibration.calibration_curve(n_bins=10, strategy='uniform'): sum_b |sum(y_b) - sum(p_b)| / n"})

for k in [3, 5, 10]:
    for ties in [False, True]:
        rel = rng.integers(0, 4, 12).astype(float)
        sc = rng.random(12)
        if ties:
            sc = np.round(sc, 1)
        cases.append({"metric": f"ndcg@{k}", "y": rel.tolist(), "score": sc.tolist(),
                      "expected": float(ndcg_score([rel], [sc], k=k)),
                      "python": f"sklearn.metrics.ndcg_score([y], [score], k={k})"})
        yb = (rel >= 2).astype(int)
        order = np.argsort(-sc, kind="stable")
        cases.append({"metric": f"precision@{k}", "y": yb.tolist(), "score": sc.tolist(),
                      "expected": float(yb[order[:k]].sum() / k),
                      "python": "numpy: y[np.argsort(-score, kind='stable')[:k]].sum() / k (ties keep input order)"})

print(json.dumps({"sklearn_version": sklearn.__version__, "numpy_version": np.__version__, "cases": cases}, indent=1))
