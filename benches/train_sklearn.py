"""scikit-learn on the same data as hrloop's training benchmark.

usage: train_sklearn.py TRAIN_CSV HOLDOUT_CSV TREES MAX_DEPTH MIN_LEAF WHICH (comma list: lr,rf,hgb)
Prints JSON: fit seconds and holdout AUC for LogisticRegression and RandomForestClassifier
(and HistGradientBoostingClassifier, the library we would propose if trees must be faster)."""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

train = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
hold = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
trees, depth, leaf = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
which = sys.argv[6].split(",")
Xt, yt = train[:, 1:], train[:, 0].astype(int)
Xh, yh = hold[:, 1:], hold[:, 0].astype(int)
out = {}

if "lr" in which:
  t = time.perf_counter()
  scaler = StandardScaler().fit(Xt)
  lr = LogisticRegression(C=1.0, max_iter=300).fit(scaler.transform(Xt), yt)
  out["logistic_regression"] = {"seconds": time.perf_counter() - t,
                                "auc": roc_auc_score(yh, lr.predict_proba(scaler.transform(Xh))[:, 1])}

if "rf" in which:
  t = time.perf_counter()
  rf = RandomForestClassifier(n_estimators=trees, max_depth=depth, min_samples_leaf=leaf, max_features=0.6,
                              n_jobs=1, random_state=7).fit(Xt, yt)
  out["random_forest"] = {"seconds": time.perf_counter() - t, "auc": roc_auc_score(yh, rf.predict_proba(Xh)[:, 1])}

if "hgb" in which:
  t = time.perf_counter()
  hgb = HistGradientBoostingClassifier(max_iter=100, random_state=7).fit(Xt, yt)
  out["hist_gradient_boosting"] = {"seconds": time.perf_counter() - t, "auc": roc_auc_score(yh, hgb.predict_proba(Xh)[:, 1])}
print(json.dumps(out))
