"""Reference fits for hrloop's logistic regression (src/logistic.rs), from scikit-learn.

Run: python3 make_sklearn_logistic.py > sklearn_logistic.json
Each case stores its rows, labels, sample weights (null: unweighted), the L2 strength (hrloop's
`l2` is scikit-learn's 1 / C) and the coefficients and intercept of
LogisticRegression(solver="lbfgs", C=1/l2, tol=1e-12, max_iter=10000).fit(x, y, sample_weight=w),
converged far tighter than training uses, so they stand for the exact minimiser.
"""
import json

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(20260417)
cases = []
for n, d, l2, weighted in [(300, 3, 1.0, False), (300, 3, 1.0, True), (800, 6, 0.1, True), (120, 2, 10.0, False)]:
    x = rng.normal(size=(n, d))
    x[:, 0] = 0.6 * x[:, 0] + 0.4 * x[:, -1]  # correlated columns
    true = rng.normal(size=d)
    y = (x @ true + 0.3 + rng.logistic(size=n) > 0).astype(int)
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    if w is not None:
        w = w / w.mean()
    m = LogisticRegression(C=1.0 / l2, tol=1e-12, max_iter=10000).fit(x, y, sample_weight=w)
    cases.append({
        "x": x.tolist(),
        "y": y.tolist(),
        "weights": None if w is None else w.tolist(),
        "l2": l2,
        "coefficients": m.coef_[0].tolist(),
        "intercept": float(m.intercept_[0]),
    })
print(json.dumps({"sklearn": sklearn.__version__, "cases": cases}))
