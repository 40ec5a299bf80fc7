"""What a team would deploy instead of `hrloop serve`: FastAPI + scikit-learn scoring the same
logistic model (same pipeline: median imputation, standardisation, one-hot job family), with
the top-3 linear contributions per candidate. No decision log, no routing, no A/B.

Run (the benchmark does): HRLOOP_BENCH_MODEL=model.json HRLOOP_BENCH_TOKEN=... \
    python3 -m uvicorn serve_fastapi:app --workers 2 --port PORT
"""
import json
import os

import numpy as np
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression

M = json.load(open(os.environ["HRLOOP_BENCH_MODEL"]))
TOKEN = "Bearer " + os.environ["HRLOOP_BENCH_TOKEN"]
NUM = M["numeric"]
LEVELS = M["levels"]
W = np.array(M["weights"])
lr = LogisticRegression()
lr.classes_ = np.array([0, 1])
lr.coef_ = W.reshape(1, -1)
lr.intercept_ = np.array([M["intercept"]])


class Requisition(BaseModel):
    id: str
    job_family: str


class Candidate(BaseModel):
    id: str
    features: dict[str, float | None] = {}


class RankRequest(BaseModel):
    requisition: Requisition
    candidates: list[Candidate]


app = FastAPI()


@app.post("/v1/rank")
def rank(req: RankRequest, authorization: str | None = Header(None)):
    if authorization != TOKEN:
        raise HTTPException(status_code=401)
    cols = []
    for s in NUM:
        cols.append(s["name"])
        if s["indicator"]:
            cols.append(s["name"] + "_missing")
    x = np.zeros((len(req.candidates), len(W)))
    for i, c in enumerate(req.candidates):
        j = 0
        for s in NUM:
            v = c.features.get(s["name"])
            x[i, j] = ((s["median"] if v is None else v) - s["mean"]) / s["std"]
            j += 1
            if s["indicator"]:
                x[i, j] = 1.0 if v is None else 0.0
                j += 1
        for lvl in LEVELS:
            x[i, j] = 1.0 if req.requisition.job_family == lvl else 0.0
            j += 1
    p = lr.predict_proba(x)[:, 1]
    contrib = x * W
    order = np.argsort(-p, kind="stable")
    out = []
    for r, i in enumerate(order):
        top = np.argsort(-np.abs(contrib[i]))[:3]
        out.append({"id": req.candidates[i].id, "rank": r + 1, "score": float(p[i]),
                    "explanation": [f"{cols[k] if k < len(cols) else 'job_family'} {contrib[i, k]:+.2f}" for k in top]})
    return {"requisition_id": req.requisition.id, "candidates": out}
