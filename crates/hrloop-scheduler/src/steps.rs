//! The real steps: each calls the library that owns the work (ingestion, training, the
//! registry, experiment analysis, calibration, retention) and reports one line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hrloop_core::Clock;
use hrloop_ingest::{IngestOptions, Pseudonymiser, ResolvedMapping, Taxonomy, ingest_file};
use hrloop_lake::audit::{Audit, AuditEntry};
use hrloop_lake::{Lake, Table};
use hrloop_models::experiment::{self, Decision, GuardrailResult};
use hrloop_models::registry::{Alias, ChangeRequest, ChangelogEntry, Registry};
use hrloop_models::{ModelSpec, TrainOptions};
use object_store::path::Path as ObjPath;
use sha2::{Digest, Sha256};

use crate::pipeline::{PromGuardrail, Step};
use crate::scheduler::{StepContext, StepOutput, StepRunner};

/// Days after a milestone before its outcome counts as due (as `hrloop train`).
const GRACE_DAYS: i64 = 14;

/// Runs steps against a store. Relative paths in pipeline files (mappings, model specs, the
/// retention policy) are resolved against `base` (the repository or install directory).
pub struct LoopSteps {
    pub lake: Lake,
    pub pseudo: Option<Pseudonymiser>,
    pub taxonomy: Taxonomy,
    pub clock: Arc<dyn Clock>,
    pub base: PathBuf,
    /// Prometheus to ask when a guardrail names none.
    pub prometheus_url: Option<String>,
    pub http: HttpClient,
}

/// The HTTP client PromQL guardrails use.
pub type HttpClient = reqwest::Client;

impl std::fmt::Debug for LoopSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopSteps").field("base", &self.base).finish()
    }
}

type StepResult = std::result::Result<StepOutput, String>;

impl StepRunner for LoopSteps {
    async fn run(&self, ctx: &StepContext<'_>, step: &Step) -> StepResult {
        let actor = format!("scheduler:{}", ctx.pipeline.name());
        match step {
            Step::IngestInbox { source, mapping } => self.ingest_inbox(source, mapping).await,
            Step::Validate { fail_below_target } => self.validate(ctx, *fail_below_target).await,
            Step::Train { model, weighting } => self.train(ctx, model, weighting.as_ref(), &actor).await,
            Step::Gate => gate(ctx),
            Step::StartExperiment { replace_running } => self.start_experiment(ctx, *replace_running, &actor).await,
            Step::AnalyseExperiment { model, act, policy, prometheus_url, guardrails } => {
                let url = prometheus_url.as_ref().or(self.prometheus_url.as_ref());
                let external = self.promql_guardrails(url, guardrails).await;
                self.analyse(ctx, model, *act, policy, external, &actor).await
            }
            Step::Rejudge { model, act, min_hires } => self.rejudge(ctx, model, *act, *min_hires, &actor).await,
            Step::Calibrate { model } => self.calibrate(ctx, model, &actor).await,
            Step::OverrideInsights { model, days } => {
                use hrloop_models::preference::{overrides_report, store_report};
                let registry = Registry::new(self.lake.store().clone());
                let r = overrides_report(&self.lake, &registry, model, ctx.now, *days).await.map_err(err)?;
                let path = store_report(&self.lake, &r).await.map_err(err)?;
                let e = &r.insights.evidence;
                Ok(StepOutput {
                    summary: format!(
                        "{} overrides in {} pairs from {} recruiters on {} requisitions; report {path}",
                        e.overrides, e.pairs, e.recruiters, e.requisitions
                    ),
                    outputs: serde_json::json!({"report": path, "overrides": e.overrides, "pairs": e.pairs}),
                    stop: false,
                })
            }
            Step::LoggingCompleteness { days } => {
                use hrloop_models::record_keeping::{logging_completeness, store_report};
                let registry = Registry::new(self.lake.store().clone());
                let r = logging_completeness(&self.lake, &registry, ctx.now, *days).await.map_err(err)?;
                let path = store_report(&self.lake, &r).await.map_err(err)?;
                let share = r.share.map_or_else(|| "no rankings".to_string(), |s| format!("{:.2} %", s * 100.0));
                Ok(StepOutput {
                    summary: format!(
                        "{} of {} rankings fully logged ({share}); {} of {} feedback rows join no ranking; report {path}",
                        r.complete, r.rankings, r.orphan_feedback, r.feedback
                    ),
                    outputs: serde_json::json!({"report": path, "rankings": r.rankings, "complete": r.complete, "share": r.share}),
                    stop: false,
                })
            }
            Step::Purge { policy } => {
                let policy =
                    hrloop_privacy::Policy::load(&self.base.join(policy), ctx.now).map_err(|e| e.to_string())?;
                let r = hrloop_privacy::purge(&self.lake, &policy, ctx.now, false, &actor)
                    .await
                    .map_err(|e| e.to_string())?;
                let per: Vec<String> = r.rules.iter().map(|x| format!("{} {}", x.rule, x.rows_removed)).collect();
                Ok(StepOutput {
                    summary: format!("purged {} rows ({})", r.rows_removed, per.join(", ")),
                    outputs: serde_json::json!({"rows_removed": r.rows_removed}),
                    stop: false,
                })
            }
            Step::Compact { tables, small_file_mb, min_files } => {
                self.compact(ctx, tables, *small_file_mb, *min_files).await
            }
            Step::FamilySearch { models, serve_as } => {
                self.family_search(ctx, models, serve_as.as_deref(), &actor).await
            }
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The gate: did the version trained earlier in this run pass?
fn gate(ctx: &StepContext<'_>) -> StepResult {
    let Some(version) = ctx.output("version").and_then(|v| v.as_str()) else {
        return Ok(StepOutput { summary: "nothing was trained in this run".into(), stop: true, ..Default::default() });
    };
    let passed = ctx.output("gates_passed").and_then(serde_json::Value::as_bool).unwrap_or(false);
    if passed {
        Ok(StepOutput::done(format!("{version} passed its gates")))
    } else {
        let failures = ctx.output("gate_failures").cloned().unwrap_or_default();
        Ok(StepOutput {
            summary: format!("{version} failed its gates ({failures}); not put into an experiment"),
            stop: true,
            ..Default::default()
        })
    }
}

impl LoopSteps {
    async fn audit(&self, entry: AuditEntry) -> std::result::Result<(), String> {
        Audit::new(self.lake.store().clone()).append(vec![entry]).await.map(|_| ()).map_err(err)
    }

    async fn ingest_inbox(&self, source: &str, mapping: &Path) -> StepResult {
        let Some(root) = self.lake.store().local_root() else {
            return Err("ingest_inbox reads <store>/inbox/ and needs a local store".into());
        };
        let pseudo = self.pseudo.as_ref().ok_or("ingest_inbox needs the pseudonymisation key")?;
        let dir = root.join("inbox").join(source);
        let mapping = ResolvedMapping::load(&self.base.join(mapping), &self.taxonomy).map_err(err)?;
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && hrloop_ingest::Format::from_path(p).is_some())
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        let known = self.ingested_hashes().await?;
        let (mut n, mut accepted, mut quarantined, mut skipped, mut refused) = (0, 0, 0, 0, Vec::new());
        let opts = IngestOptions { clock: self.clock.clone(), progress: false };
        for f in files {
            if known.contains(&sha256(&f)?) {
                skipped += 1;
                continue;
            }
            match ingest_file(&self.lake, &f, &mapping, pseudo, &self.taxonomy, &opts).await {
                Ok(r) => {
                    n += 1;
                    accepted += r.rows_accepted;
                    quarantined += r.rows_quarantined;
                }
                // One unreadable file must not hold back the others; the run still fails so
                // someone looks.
                Err(e) => refused.push(e.to_string()),
            }
        }
        if !refused.is_empty() {
            return Err(format!("{} file(s) refused: {}", refused.len(), refused.join("; ")));
        }
        Ok(StepOutput {
            summary: format!(
                "inbox/{source}: {n} new file(s), {accepted} rows accepted, {quarantined} quarantined; {skipped} already ingested"
            ),
            outputs: serde_json::json!({"files": n, "rows_accepted": accepted, "rows_quarantined": quarantined}),
            stop: false,
        })
    }

    /// Content hashes of every export ingested so far (from the batch reports).
    async fn ingested_hashes(&self) -> std::result::Result<HashSet<String>, String> {
        let mut out = HashSet::new();
        for meta in self.lake.store().list(&ObjPath::from("reports/ingest")).await.map_err(err)? {
            let bytes = self.lake.store().get(&meta.location).await.map_err(err)?;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && let Some(s) = v["source_sha256"].as_str()
            {
                out.insert(s.to_string());
            }
        }
        Ok(out)
    }

    async fn validate(&self, ctx: &StepContext<'_>, fail_below_target: bool) -> StepResult {
        let s =
            hrloop_models::data::milestone_status(&self.lake, ctx.now.date_naive(), GRACE_DAYS).await.map_err(err)?;
        let v = serde_json::to_value(&s).map_err(err)?;
        let mut parts = Vec::new();
        let mut below = Vec::new();
        for c in v["completeness"].as_array().into_iter().flatten() {
            let (m, due) = (c["milestone"].as_str().unwrap_or("?"), c["due"].as_u64().unwrap_or(0));
            let Some(rate) = c["completeness"].as_f64() else { continue };
            parts.push(format!("{m} {:.1} % of {due}", rate * 100.0));
            if let Some(t) = c["target"].as_f64()
                && due > 0
                && rate < t
            {
                below.push(format!("{m} {:.1} % < {:.0} %", rate * 100.0, t * 100.0));
            }
        }
        let summary = format!(
            "outcome completeness: {}{}",
            parts.join(", "),
            if below.is_empty() { String::new() } else { format!("; BELOW TARGET: {}", below.join(", ")) }
        );
        if fail_below_target && !below.is_empty() {
            return Err(summary);
        }
        Ok(StepOutput { summary, outputs: serde_json::json!({"below_target": below}), stop: false })
    }

    async fn train(
        &self,
        ctx: &StepContext<'_>,
        model: &Path,
        weighting: Option<&hrloop_models::weighting::WeightingSpec>,
        actor: &str,
    ) -> StepResult {
        let mut spec = ModelSpec::load(&self.base.join(model)).map_err(err)?;
        if let Some(w) = weighting {
            spec.weighting = Some(w.clone());
        }
        let registry = Registry::new(self.lake.store().clone());
        let opts = TrainOptions { now: ctx.now, actor: actor.into(), grace_days: GRACE_DAYS };
        match hrloop_models::train(&self.lake, &registry, &spec, &opts).await {
            Ok(t) => {
                let c = &t.card;
                Ok(StepOutput {
                    summary: format!(
                        "trained {}/{}: holdout AUC {}, {} training rows{}; gates {}",
                        c.name,
                        t.version,
                        c.metrics.roc_auc.map_or("n/a".into(), |a| format!("{a:.3}")),
                        c.rows.train,
                        c.weighting.as_ref().map_or(String::new(), |w| format!(
                            " (re-weighted: worth {:.0} equally weighted rows)",
                            w.effective_rows
                        )),
                        if c.gates.passed {
                            "passed".to_string()
                        } else {
                            format!("failed: {}", c.gates.failures.join("; "))
                        }
                    ),
                    outputs: serde_json::json!({
                        "model": c.name, "version": t.version, "gates_passed": c.gates.passed,
                        "gate_failures": c.gates.failures, "auc": c.metrics.roc_auc,
                    }),
                    stop: false,
                })
            }
            Err(hrloop_models::Error::NotEnoughData(why)) => Ok(StepOutput {
                summary: format!("not enough matured outcomes to train {} yet: {why}", spec.name),
                stop: true,
                ..Default::default()
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn start_experiment(&self, ctx: &StepContext<'_>, replace_running: bool, actor: &str) -> StepResult {
        let (Some(model), Some(version)) =
            (ctx.output("model").and_then(|v| v.as_str()), ctx.output("version").and_then(|v| v.as_str()))
        else {
            return Err("no version was trained in this run".into());
        };
        let registry = Registry::new(self.lake.store().clone());
        let state = registry.state(model).await.map_err(err)?;
        if state.champion.is_none() {
            let req = ChangeRequest {
                actor: actor.into(),
                reason: "first version: no champion to compare with".into(),
                evidence: serde_json::json!({"auc": ctx.output("auc")}),
                at: ctx.now,
            };
            registry.promote(model, version, Alias::Champion, req).await.map_err(err)?;
            return Ok(StepOutput::done(format!("{model}/{version} is the first champion")));
        }
        if let Some(running) = state.challenger.as_ref().filter(|_| !replace_running) {
            return Ok(StepOutput::done(format!(
                "{model}/{running} is still being compared with the champion; {version} waits for its verdict"
            )));
        }
        let req = ChangeRequest {
            actor: actor.into(),
            reason: format!("new version from pipeline {} (slot {})", ctx.pipeline.name(), ctx.slot),
            evidence: serde_json::json!({"auc": ctx.output("auc")}),
            at: ctx.now,
        };
        let e = registry.promote(model, version, Alias::Challenger, req).await.map_err(err)?;
        self.audit(AuditEntry {
            at: ctx.now,
            actor: actor.into(),
            action: "model.challenger".into(),
            target: format!("model {model}"),
            details: serde_json::json!({"seq": e.seq, "from": e.from_version, "to": e.to_version}),
        })
        .await?;
        Ok(StepOutput::done(format!(
            "{model}/{version} is the challenger (replacing {})",
            e.from_version.as_deref().unwrap_or("none")
        )))
    }

    /// Evaluate PromQL guardrails against Prometheus' instant-query API.
    async fn promql_guardrails(&self, url: Option<&String>, guardrails: &[PromGuardrail]) -> Vec<GuardrailResult> {
        let mut out = Vec::new();
        for g in guardrails {
            let unknown =
                |detail: String| GuardrailResult { name: g.name.clone(), ok: false, detail, inconclusive: true };
            let Some(url) = url else {
                out.push(unknown("no prometheus_url configured".into()));
                continue;
            };
            let value = match promql(&self.http, url, &g.query).await {
                Ok(Some(v)) if v.is_nan() => {
                    out.push(unknown(format!("`{}` is NaN (no traffic in the window?)", g.query)));
                    continue;
                }
                Ok(Some(v)) => v,
                Ok(None) => {
                    out.push(unknown(format!("`{}` returned no series", g.query)));
                    continue;
                }
                Err(e) => {
                    out.push(unknown(format!("`{}`: {e}", g.query)));
                    continue;
                }
            };
            let ok = g.max.is_none_or(|m| value <= m) && g.min.is_none_or(|m| value >= m);
            let bounds = match (g.min, g.max) {
                (Some(lo), Some(hi)) => format!("within [{lo}, {hi}]"),
                (Some(lo), None) => format!(">= {lo}"),
                (None, Some(hi)) => format!("<= {hi}"),
                (None, None) => "any value".into(),
            };
            out.push(GuardrailResult {
                name: g.name.clone(),
                ok,
                detail: format!("`{}` = {value:.4}, must be {bounds}", g.query),
                inconclusive: false,
            });
        }
        out
    }

    async fn analyse(
        &self,
        ctx: &StepContext<'_>,
        model: &str,
        act: bool,
        policy: &experiment::Policy,
        external: Vec<GuardrailResult>,
        actor: &str,
    ) -> StepResult {
        let Some(v) = experiment::analyse(&self.lake, model, policy, external, ctx.now).await.map_err(err)? else {
            return Ok(StepOutput::done(format!("{model} has no challenger: no experiment running")));
        };
        let v = experiment::record(&self.lake, v).await.map_err(err)?;
        self.audit(AuditEntry {
            at: ctx.now,
            actor: actor.into(),
            action: "experiment.verdict".into(),
            target: format!("model {model}"),
            details: serde_json::json!({"challenger": v.challenger, "verdict": v.decision.as_str(), "seq": v.seq, "reason": v.reason}),
        })
        .await?;
        let mut summary = format!(
            "{model}/{} vs {}: {} — {}",
            v.challenger,
            v.champion.as_deref().unwrap_or("none"),
            v.decision.as_str(),
            v.reason
        );
        if act {
            match v.decision {
                Decision::Promote | Decision::Rollback | Decision::Expired => {
                    let change = act_on(&self.lake, &v, actor, ctx.now).await?;
                    summary.push_str(&format!("; {change}"));
                }
                Decision::KeepRunning | Decision::Inconclusive => {}
            }
        }
        Ok(StepOutput {
            summary,
            outputs: serde_json::json!({"verdict": v.decision.as_str(), "verdict_seq": v.seq}),
            stop: false,
        })
    }

    async fn rejudge(
        &self,
        ctx: &StepContext<'_>,
        model: &str,
        act: bool,
        min_hires: usize,
        actor: &str,
    ) -> StepResult {
        let Some(r) = hrloop_models::rejudge::rejudge(&self.lake, model, ctx.now, GRACE_DAYS, 0.05, min_hires)
            .await
            .map_err(err)?
        else {
            return Ok(StepOutput::done(format!("{model} has no champion to re-judge")));
        };
        let r = hrloop_models::rejudge::record(&self.lake, r).await.map_err(err)?;
        let mut summary = r.finding.clone();
        if r.champion_worse {
            self.audit(AuditEntry {
                at: ctx.now,
                actor: actor.into(),
                action: "model.flagged".into(),
                target: format!("model {model}"),
                details: serde_json::json!({"champion": r.champion, "previous": r.previous_champion, "p_value": r.p_value, "seq": r.seq}),
            })
            .await?;
            if act && let Some(prev) = &r.previous_champion {
                let registry = Registry::new(self.lake.store().clone());
                let req = ChangeRequest {
                    actor: actor.into(),
                    reason: format!("matured outcomes: {}", r.finding),
                    evidence: serde_json::json!({"rejudged_seq": r.seq}),
                    at: ctx.now,
                };
                let e = registry.rollback(model, Some(prev), req).await.map_err(err)?;
                registry
                    .add_changelog(
                        model,
                        ChangelogEntry {
                            seq: 0,
                            at: ctx.now,
                            change: "rollback".into(),
                            from_version: e.from_version.clone(),
                            to_version: e.to_version.clone(),
                            summary: format!(
                                "The ranking model {} was replaced by the earlier {prev}: {}.",
                                e.from_version.as_deref().unwrap_or("?"),
                                r.finding
                            ),
                            decided_by: actor.into(),
                        },
                    )
                    .await
                    .map_err(err)?;
                summary.push_str(&format!("; rolled back to {prev}"));
            }
        }
        Ok(StepOutput { summary, outputs: serde_json::json!({"champion_worse": r.champion_worse}), stop: false })
    }

    async fn calibrate(&self, ctx: &StepContext<'_>, model: &str, actor: &str) -> StepResult {
        let registry = Registry::new(self.lake.store().clone());
        let Some(version) = registry.state(model).await.map_err(err)?.champion else {
            return Ok(StepOutput::done(format!("{model} has no champion to calibrate")));
        };
        let opts =
            hrloop_models::calibrate::CalibrateOptions { now: ctx.now, actor: actor.into(), grace_days: GRACE_DAYS };
        match hrloop_models::calibrate::calibrate(&self.lake, &registry, model, &version, &opts).await {
            Ok(c) => Ok(StepOutput::done(format!(
                "calibrated {model}/{version} on {} outcomes (ECE {:.3} → {:.3})",
                c.rows, c.ece_before, c.ece_after
            ))),
            Err(hrloop_models::Error::NotEnoughData(why)) => {
                Ok(StepOutput::done(format!("not enough matured outcomes to calibrate yet: {why}")))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn compact(&self, ctx: &StepContext<'_>, tables: &[String], small_mb: u64, min_files: usize) -> StepResult {
        let how = hrloop_lake::Compaction {
            small_bytes: small_mb << 20,
            min_files,
            at: ctx.now,
            ..hrloop_lake::Compaction::default()
        };
        let mut done = Vec::new();
        let mut reports = Vec::new();
        for name in tables {
            let table = Table::from_name(name).ok_or_else(|| format!("compact: no table named {name:?}"))?;
            let r = self.lake.compact(table, &how).await.map_err(err)?;
            done.push(format!("{name} {} → {} files", r.files_before, r.files_after));
            reports.push(r);
        }
        Ok(StepOutput {
            summary: format!("compacted {}", done.join(", ")),
            outputs: serde_json::to_value(&reports).map_err(err)?,
            stop: false,
        })
    }

    async fn family_search(
        &self,
        ctx: &StepContext<'_>,
        models: &[PathBuf],
        serve_as: Option<&str>,
        actor: &str,
    ) -> StepResult {
        let registry = Registry::new(self.lake.store().clone());
        let opts = TrainOptions { now: ctx.now, actor: actor.into(), grace_days: GRACE_DAYS };
        let mut specs = Vec::new();
        for path in models {
            let mut spec = ModelSpec::load(&self.base.join(path)).map_err(err)?;
            if let Some(name) = serve_as {
                spec.name = name.to_string();
            }
            specs.push((path, spec));
        }
        // AUCs of different labels are not comparable: refuse rather than pick nonsense.
        if let Some((first_path, first)) = specs.first()
            && let Some((path, other)) = specs.iter().find(|(_, s)| s.label != first.label)
        {
            return Err(format!(
                "family search compares models of one label: {} predicts {} at {}, {} predicts {} at {}",
                first_path.display(),
                first.label.condition,
                first.label.milestone,
                path.display(),
                other.label.condition,
                other.label.milestone
            ));
        }
        let mut results = Vec::new();
        for (_, spec) in &specs {
            match hrloop_models::train(&self.lake, &registry, spec, &opts).await {
                Ok(t) => results.push(t),
                Err(hrloop_models::Error::NotEnoughData(_)) => {}
                Err(e) => return Err(format!("{}: {e}", spec.name)),
            }
        }
        let best = results
            .iter()
            .filter(|t| t.card.gates.passed)
            .max_by(|a, b| a.card.metrics.roc_auc.unwrap_or(0.0).total_cmp(&b.card.metrics.roc_auc.unwrap_or(0.0)));
        let tried: Vec<String> = results
            .iter()
            .map(|t| {
                format!(
                    "{}/{} ({}) AUC {}",
                    t.card.name,
                    t.version,
                    t.card.spec.algorithm.family(),
                    t.card.metrics.roc_auc.map_or("n/a".into(), |a| format!("{a:.3}"))
                )
            })
            .collect();
        let Some(best) = best else {
            return Ok(StepOutput::done(format!("no candidate passed its gates ({})", tried.join(", "))));
        };
        let name = &best.card.name;
        let state = registry.state(name).await.map_err(err)?;
        let alias = if state.champion.is_none() { Alias::Champion } else { Alias::Challenger };
        let req = ChangeRequest {
            actor: actor.into(),
            reason: format!("best of the quarterly model-family search ({})", tried.join(", ")),
            evidence: serde_json::json!({"auc": best.card.metrics.roc_auc}),
            at: ctx.now,
        };
        registry.promote(name, &best.version, alias, req).await.map_err(err)?;
        Ok(StepOutput::done(format!("{name}/{} is now {alias:?} ({})", best.version, tried.join(", ")).to_lowercase()))
    }
}

/// Carry out a promote or rollback verdict: move the aliases, write the changelog and the audit
/// record. Returns what was done, in words.
pub async fn act_on(
    lake: &Lake,
    v: &experiment::Verdict,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> std::result::Result<String, String> {
    let registry = Registry::new(lake.store().clone());
    // "experiment expired" (not "experiment verdict"): /metrics counts it as its own reason
    // class, and on-call gets its own alert.
    let reason = if v.decision == Decision::Expired {
        format!("experiment expired: {}", v.reason)
    } else {
        format!("experiment verdict {}: {}", v.decision.as_str(), v.reason)
    };
    let req = ChangeRequest {
        actor: actor.into(),
        reason,
        evidence: serde_json::json!({"verdict_seq": v.seq, "challenger": v.challenger}),
        at: now,
    };
    let (event, change, summary) = match v.decision {
        Decision::Promote => {
            let e = registry.promote(&v.model, &v.challenger, Alias::Champion, req).await.map_err(err)?;
            (e, "promote", experiment::plain_summary(v))
        }
        Decision::Rollback | Decision::Expired => {
            let e = registry.retire(&v.model, req).await.map_err(err)?;
            let champion = v.champion.as_deref().unwrap_or("the current model");
            let s = if v.decision == Decision::Expired {
                format!(
                    "The candidate ranking model ({}) was compared with {champion} for {} days without a clear difference, and no one decided; it was withdrawn so the next retrained model can be tried, and {champion} stays in use.",
                    v.challenger, v.days_running
                )
            } else {
                format!(
                    "The candidate ranking model ({}) was withdrawn and {champion} stays in use: {}.",
                    v.challenger, v.reason
                )
            };
            (e, "retire", s)
        }
        _ => return Ok("nothing to do".into()),
    };
    registry
        .add_changelog(
            &v.model,
            ChangelogEntry {
                seq: 0,
                at: now,
                change: change.into(),
                from_version: event.from_version.clone(),
                to_version: event.to_version.clone(),
                summary: summary.clone(),
                decided_by: v.decided_by.clone().unwrap_or_else(|| actor.to_string()),
            },
        )
        .await
        .map_err(err)?;
    Audit::new(lake.store().clone())
        .append(vec![AuditEntry {
            at: now,
            actor: actor.into(),
            action: if change == "promote" { "model.promote" } else { "model.retire" }.into(),
            target: format!("model {}", v.model),
            details: serde_json::json!({"seq": event.seq, "from": event.from_version, "to": event.to_version, "verdict_seq": v.seq}),
        }])
        .await
        .map_err(err)?;
    Ok(match (change, v.decision) {
        ("promote", _) => format!("{} promoted to champion", v.challenger),
        (_, Decision::Expired) => format!("challenger {} retired: the experiment expired undecided", v.challenger),
        _ => format!("challenger {} retired", v.challenger),
    })
}

/// The value of an instant PromQL query (the first series), or None when it returns nothing.
pub async fn promql(http: &reqwest::Client, base: &str, query: &str) -> std::result::Result<Option<f64>, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let resp = http
        .get(&url)
        .query(&[("query", query)])
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("cannot reach Prometheus at {base}: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value =
        resp.json().await.map_err(|e| format!("Prometheus answered {status} with no JSON: {e}"))?;
    if body["status"] != "success" {
        return Err(format!("Prometheus: {}", body["error"].as_str().unwrap_or("query failed")));
    }
    let data = &body["data"];
    let value = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().and_then(|r| r.first()).map(|s| s["value"][1].clone()),
        Some("scalar") => Some(data["result"][1].clone()),
        _ => None,
    };
    Ok(value.and_then(|v| v.as_str().and_then(|s| s.parse::<f64>().ok())))
}

fn sha256(path: &Path) -> std::result::Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}
