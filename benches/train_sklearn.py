"""scikit-learn on the same rows as hrloop's training benchmark, one fit per process.

usage: train_sklearn.py DIR ROWS WHICH THREADS TREES MAX_DEPTH MIN_LEAF
DIR holds the benchmark's binary files (train.f64 and hold.f64: row-major float64, 30 columns,
already standardised; train.u8 and hold.u8: labels; weights.f64: sample weights). WHICH is one
of lr, lr_weighted, rf, hgb; only the fit is timed. Prints JSON: fit seconds and holdout AUC.
The parent process sets the BLAS/OpenMP thread count to THREADS and measures peak memory."""
import json
import os
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

FEATURES = 30
d, rows, which, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
trees, depth, leaf = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])


def load(name, rows):
  x = np.fromfile(os.path.join(d, name + ".f64"), dtype="<f8", count=rows * FEATURES).reshape(rows, FEATURES)
  y = np.fromfile(os.path.join(d, name + ".u8"), dtype=np.uint8, count=rows).astype(np.int64)
  return x, y


x, y = load("train", rows)
hold_rows = os.path.getsize(os.path.join(d, "hold.u8"))
xh, yh = load("hold", hold_rows)
w = np.fromfile(os.path.join(d, "weights.f64"), dtype="<f8", count=rows) if which == "lr_weighted" else None

if which in ("lr", "lr_weighted"):
  model = LogisticRegression(C=1.0, max_iter=300)
  t = time.perf_counter()
  model.fit(x, y, sample_weight=w)
elif which == "rf":
  model = RandomForestClassifier(n_estimators=trees, max_depth=depth, min_samples_leaf=leaf, max_features=0.6,
                                 n_jobs=threads, random_state=7)
  t = time.perf_counter()
  model.fit(x, y)
elif which == "hgb":
  model = HistGradientBoostingClassifier(max_iter=100, random_state=7)
  t = time.perf_counter()
  model.fit(x, y)
else:
  sys.exit(f"unknown model {which}")
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "auc": roc_auc_score(yh, model.predict_proba(xh)[:, 1])}))
