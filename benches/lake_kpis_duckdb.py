"""DuckDB's side of the lake_scale benchmark: the decision-log part of hrloop's KPI refresh as
one would write it in SQL over the same Parquet files (hive partitions), timed in-process.

  python3 benches/lake_kpis_duckdb.py --out answers.json LAKE_DIR
      run the query, write its time and retention ratios;
  python3 benches/lake_kpis_duckdb.py --check kpis.prom --answers answers.json
      fail unless hrloop's exported retention ratios equal DuckDB's to 1e-9.

The query follows hrloop's rules (crates/hrloop-serve/src/kpis.rs): time to hire starts at the
first decision (any source) on the hiring requisition; who ranked a hire or a recently reviewed
candidate is the last committed served row, else the last committed imported row (files sort by
path, rows by their place in the file); human review is over served rows of the last 30 days;
retention is by milestone and who ranked the hire, over reported outcomes.
"""

import argparse
import json
import math
import re
import sys
import time

NOW = "2026-12-01 00:00:00+00"

QUERY = """
WITH
hires AS (SELECT employee_id, candidate_id, requisition_id, hire_date
          FROM read_parquet('{lake}/lake/hires/**/*.parquet', hive_partitioning = true)),
recent_feedback AS (
    SELECT requisition_id, candidate_id, overrides_model
    FROM read_parquet('{lake}/lake/feedback/**/*.parquet', hive_partitioning = true)
    WHERE recorded_at >= TIMESTAMPTZ '{now}' - INTERVAL 30 DAY),
wanted AS (SELECT requisition_id, candidate_id FROM hires
           UNION SELECT requisition_id, candidate_id FROM recent_feedback),
decisions AS (
    SELECT requisition_id, candidate_id, source, arm, model_version, decided_at, route,
           filename, file_row_number
    FROM read_parquet('{lake}/lake/decisions/**/*.parquet', hive_partitioning = true,
                      filename = true, file_row_number = true)),
first_decision AS (
    SELECT requisition_id, min(decided_at) AS first_at FROM decisions
    WHERE requisition_id IN (SELECT requisition_id FROM hires) GROUP BY requisition_id),
ranked AS (
    SELECT requisition_id, candidate_id,
           arg_max(CASE WHEN served THEN arm ELSE 'history' END,
                   (served::INT, filename, file_row_number)) AS source_arm,
           arg_max(CASE WHEN served THEN model_version ELSE 'none' END,
                   (served::INT, filename, file_row_number)) AS version
    FROM (SELECT d.*, (source = 'serving' AND arm IS NOT NULL) AS served
          FROM decisions d SEMI JOIN wanted USING (requisition_id, candidate_id))
    GROUP BY requisition_id, candidate_id),
outcomes AS (
    SELECT employee_id, milestone, employed
    FROM read_parquet('{lake}/lake/outcomes/**/*.parquet', hive_partitioning = true,
                      filename = true, file_row_number = true)
    QUALIFY row_number() OVER (PARTITION BY employee_id, milestone
                               ORDER BY filename DESC, file_row_number DESC) = 1),
retention AS (
    SELECT o.milestone, coalesce(r.source_arm, 'history') AS source,
           coalesce(r.version, 'none') AS version, avg(o.employed::INT) AS ratio
    FROM hires h JOIN outcomes o USING (employee_id)
    LEFT JOIN ranked r USING (requisition_id, candidate_id)
    GROUP BY ALL),
human AS (
    SELECT arm, avg(coalesce(starts_with(route, 'human:'), false)::INT) AS ratio FROM decisions
    WHERE source = 'serving' AND arm IS NOT NULL
      AND decided_at >= TIMESTAMPTZ '{now}' - INTERVAL 30 DAY
    GROUP BY arm),
time_to_hire AS (
    SELECT count(*) AS n FROM hires h JOIN first_decision f USING (requisition_id))
SELECT 'retention' AS what, milestone || '|' || source || '|' || version AS key, ratio FROM retention
UNION ALL SELECT 'human', arm, ratio FROM human
UNION ALL SELECT 'time_to_hire_rows', '', n FROM time_to_hire
"""


def run(lake, out):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET TimeZone = 'UTC'")
    query = QUERY.format(lake=lake, now=NOW)
    start = time.perf_counter()
    rows = con.execute(query).fetchall()
    seconds = time.perf_counter() - start
    answers = {"query_s": seconds, "retention": {}, "human": {}}
    for what, key, value in rows:
        if what in ("retention", "human"):
            answers[what][key] = value
        else:
            answers[what] = value
    with open(out, "w") as f:
        json.dump(answers, f)
    print(f"duckdb: {seconds:.2f} s, {len(answers['retention'])} retention ratios", file=sys.stderr)


LINE = re.compile(
    r'^hrloop_retention_ratio\{milestone="([^"]+)",source="([^"]+)",model_version="([^"]+)"\} (\S+)$'
)


def check(prom, answers):
    with open(answers) as f:
        duck = json.load(f)["retention"]
    ours = {}
    with open(prom) as f:
        for line in f:
            m = LINE.match(line.strip())
            if m:
                ours["|".join(m.groups()[:3])] = float(m.group(4))
    if set(ours) != set(duck):
        sys.exit(f"retention series differ: hrloop {sorted(ours)} vs duckdb {sorted(duck)}")
    bad = {k: (ours[k], duck[k]) for k in ours if not math.isclose(ours[k], duck[k], abs_tol=1e-9)}
    if bad:
        sys.exit(f"retention ratios differ: {bad}")
    print(f"retention: {len(ours)} ratios equal to DuckDB's", file=sys.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lake", nargs="?")
    p.add_argument("--out")
    p.add_argument("--check")
    p.add_argument("--answers")
    a = p.parse_args()
    if a.check:
        check(a.check, a.answers)
    else:
        run(a.lake, a.out)
