#!/usr/bin/env python3
"""Generate the Grafana dashboards in dashboards/grafana/dashboards/ (dashboards as code).

Run `python3 dashboards/generate.py` after editing; the end-to-end test runs every panel's
expression against a real Prometheus and fails if one errors or returns no series.
Every panel reads the data source from the `datasource` variable (no hard-coded uid).
"""
import json
import pathlib

OUT = pathlib.Path(__file__).parent / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(title, exprs, kind="timeseries", unit=None, thresholds=None, description="", w=12, h=8, legend=None, instant=False):
    targets = []
    for i, e in enumerate(exprs if isinstance(exprs, list) else [exprs]):
        t = {"datasource": DS, "expr": e, "refId": chr(ord("A") + i)}
        if legend:
            t["legendFormat"] = legend if isinstance(legend, str) else legend[i]
        if instant:
            t["instant"] = True
        targets.append(t)
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if thresholds:
        # Targets drawn on the panel: (value, colour) steps, base first.
        steps = [{"color": thresholds[0][1], "value": None}] + [{"color": c, "value": v} for v, c in thresholds[1:]]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}} if kind == "timeseries" else {}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"w": w, "h": h},
        "options": {},
    }


def dashboard(uid, title, description, panels):
    x = y = 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        if x + p["gridPos"]["w"] > 24:
            x, y = 0, y + 8
        p["gridPos"].update({"x": x, "y": y})
        x += p["gridPos"]["w"]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["hrloop"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-30d", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0}
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


RATE = "$__rate_interval"

DASHBOARDS = {
    "hr-kpis": dashboard(
        "hrloop-hr-kpis",
        "hrloop · HR KPIs",
        "What hiring with the loop achieves: time to hire, quality of hire, retention, recruiter overrides. docs/hr-kpis.md explains each number.",
        [
            panel("Time to hire, median (days)", "histogram_quantile(0.5, sum by (le) (hrloop_time_to_hire_seconds_bucket)) / 86400", "stat", "d",
                  [(0, "green"), (56, "yellow"), (70, "red")], "Median days from a requisition's first application to the hire's first day (hires of the last 365 days). Target: 15-25 % below the 70-day baseline."),
            panel("Time to hire by job family, median (days)", "histogram_quantile(0.5, sum by (le, job_family) (hrloop_time_to_hire_seconds_bucket)) / 86400", "bargauge", "d",
                  [(0, "green"), (56, "yellow"), (70, "red")], legend="{{job_family}}"),
            panel("Quality of hire (rating 1-5)", "hrloop_quality_of_hire_rating", "timeseries", None,
                  [(0, "red"), (3.8, "green")], "Mean performance rating of hires at each milestone (outcomes of the last 365 days). Target line: 3.8.", legend="{{milestone}}"),
            panel("Retention at each milestone", "hrloop_retention_ratio", "timeseries", "percentunit",
                  [(0, "red"), (0.85, "green")], "Share of hires still employed, by milestone and by who ranked them (history, champion, challenger).", legend="{{milestone}} {{source}} {{model_version}}"),
            panel("Recruiter override rate (30 days)", "hrloop_recruiter_override_ratio", "timeseries", "percentunit",
                  [(0, "green"), (0.2, "yellow"), (0.35, "red")], "Share of recruiter feedback that went against the model, by arm.", legend="{{arm}} {{model_version}}"),
            panel("Routed to a human (30 days)", "hrloop_human_review_ratio", "timeseries", "percentunit", None,
                  "Share of ranked candidates a person reviewed: low confidence, the 10 % audit sample, edge cases.", legend="{{arm}}"),
            panel("Overrides by job family (insights window)", "hrloop_recruiter_overrides", "bargauge", None, None,
                  "Candidates recruiters chose over one the model ranked higher, per job family, in the newest override-insights report (pipeline daily-override-insights; `hrloop insights overrides` tells the story in words).",
                  legend="{{job_family}}", instant=True),
            panel("What recruiters chose more of than the model's pick", "hrloop_override_feature_difference_units", "table", None, None,
                  "Per job family and feature: mean of the chosen candidate minus the model's pick, in the feature's units. Compare with hrloop_override_feature_margin_units (95 %): a difference within its margin may be chance. A large one is what recruiters weigh that the model does not: a signal to look into, not a truth (preferences can carry bias).",
                  legend="{{job_family}} {{feature}}", instant=True, w=24),
        ],
    ),
    "models-experiments": dashboard(
        "hrloop-models",
        "hrloop · Models & experiments",
        "Which versions serve, how they score on their holdout, what each arm gets, verdicts, promotions and rollbacks.",
        [
            panel("Champion and challenger", "hrloop_model_info", "table", None, None, "The version each alias points at.", instant=True),
            panel("Holdout ROC AUC", "hrloop_model_roc_auc_ratio", "timeseries", None, [(0, "red"), (0.6, "green")], legend="{{alias}} {{version}}"),
            panel("Holdout NDCG@10", "hrloop_model_ndcg_ratio", "timeseries", None, None, legend="{{alias}} {{version}}"),
            panel("Calibration error (ECE)", "hrloop_model_calibration_error_ratio", "timeseries", None, [(0, "green"), (0.15, "red")], legend="{{alias}} {{version}}"),
            panel("Rank requests per second by arm", f"sum by (arm) (rate(hrloop_rank_requests_total{{status=\"ok\"}}[{RATE}]))", "timeseries", "reqps", legend="{{arm}}"),
            panel("Override rate by arm", "hrloop_recruiter_override_ratio", "timeseries", "percentunit", legend="{{arm}} {{model_version}}"),
            panel("Experiment verdicts", "sum by (decision) (hrloop_experiment_verdicts_total)", "bargauge", None, None, "Stored verdicts of the daily analysis and people's decisions.", legend="{{decision}}"),
            panel("Promotions and rollbacks", "sum by (action, reason_class) (hrloop_model_alias_changes_total)", "bargauge", None, None,
                  "Alias changes: reason_class verdict = decided by an experiment, manual = by a person.", legend="{{action}} ({{reason_class}})"),
            panel("Loop: days from outcome to production", "hrloop_loop_time_to_impact_seconds / 86400", "stat", "d", None,
                  "From the newest outcome the champion learned from arriving, to that champion going live."),
            panel("Loop: champion AUC gain over the previous one", "hrloop_loop_champion_improvement_ratio", "stat", None, [(-1, "red"), (0, "green")]),
        ],
    ),
    "data-quality": dashboard(
        "hrloop-data-quality",
        "hrloop · Data quality & feedback completeness",
        "Are outcomes arriving? Feedback completeness per milestone against HR's targets; critical field completeness; quarantine.",
        [
            panel("Feedback completeness per milestone", ["hrloop_feedback_completeness_ratio", "hrloop_feedback_completeness_target_ratio"], "timeseries", "percentunit",
                  [(0, "red"), (0.9, "yellow"), (0.95, "green")], "Due outcomes that arrived; dashed: the target (90 % at 6 months, 95 % at 12).",
                  legend=["{{milestone}}", "target {{milestone}}"]),
            panel("Critical field completeness (newest batch)", "hrloop_data_completeness_ratio", "bargauge", "percentunit",
                  [(0, "red"), (0.95, "green")], legend="{{table}}.{{field}}"),
            panel("Rows ingested", "sum by (table, outcome) (hrloop_ingest_rows_total)", "bargauge", None, None, legend="{{table}} {{outcome}}"),
            panel("Quarantined share", "sum by (table) (hrloop_ingest_rows_total{outcome=\"quarantined\"}) / sum by (table) (hrloop_ingest_rows_total) > 0", "bargauge", "percentunit",
                  [(0, "green"), (0.05, "red")], legend="{{table}}"),
        ],
    ),
    "fairness": dashboard(
        "hrloop-fairness",
        "hrloop · Fairness",
        "Adverse impact ratio per protected attribute (lowest over highest selection rate in the model's top k). Below the 0.8 line is adverse impact under the four-fifths rule.",
        [
            panel("Adverse impact ratio per attribute", "hrloop_adverse_impact_ratio", "timeseries", None, [(0, "red"), (0.8, "green")], legend="{{alias}} {{version}} {{attribute}}", w=24),
            panel("Lowest adverse impact ratio, champion", "min(hrloop_adverse_impact_ratio{alias=\"champion\"})", "stat", None, [(0, "red"), (0.8, "green")]),
        ],
    ),
    "operations": dashboard(
        "hrloop-operations",
        "hrloop · Operations",
        "Latency, errors, human-review routing, pipeline runs, KPI freshness. docs/on-call.md says what to do.",
        [
            panel("Rank latency p99 by arm", f"histogram_quantile(0.99, sum by (le, arm) (rate(hrloop_rank_latency_seconds_bucket[{RATE}])))", "timeseries", "s",
                  [(0, "green"), (0.5, "red")], legend="{{arm}}"),
            panel("Rank requests by status", f"sum by (arm, status) (rate(hrloop_rank_requests_total[{RATE}]))", "timeseries", "reqps", legend="{{arm}} {{status}}"),
            panel("Human review routes", f"sum by (reason) (rate(hrloop_review_routes_total[{RATE}]))", "timeseries", "cps", legend="{{reason}}"),
            panel("Pipeline runs by status", "sum by (pipeline, status) (hrloop_pipeline_runs_total) > 0", "bargauge", None, legend="{{pipeline}} {{status}}"),
            panel("Since last success", "time() - hrloop_pipeline_last_success_timestamp_seconds", "bargauge", "s", legend="{{pipeline}}"),
            panel("Failing pipelines", "hrloop_pipeline_failing", "stat", None, [(0, "green"), (1, "red")], legend="{{pipeline}}"),
            panel("KPI age", "time() - hrloop_kpi_refresh_timestamp_seconds", "stat", "s", [(0, "green"), (600, "red")]),
            panel("Decisions waiting for the lake", "max(hrloop_decision_log_backlog_seconds)", "stat", "s", [(0, "green"), (120, "orange"), (600, "red")],
                  description="Age of the oldest write-ahead log segment not yet in lake/decisions (moves wait for a quiet moment, at most --lake-max-delay-seconds)."),
            panel("Rankings fully logged (30 days, EU AI Act Art. 12)", "hrloop_logging_completeness_ratio", "stat", "percentunit",
                  [(0, "red"), (0.99, "green")], "Share of the rankings served in the last 30 days that name a registered model version, arm, route and score, with a reason code on every override (pipeline daily-logging-completeness; alert HrloopLoggingIncomplete below 99 %)."),
            panel("hrloop scraped", "up{job=\"hrloop\"}", "stat", None, [(0, "red"), (1, "green")]),
        ],
    ),
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, d in DASHBOARDS.items():
        (OUT / f"{name}.json").write_text(json.dumps(d, indent=2) + "\n")
        print(f"wrote {OUT / (name + '.json')} ({len(d['panels'])} panels)")
