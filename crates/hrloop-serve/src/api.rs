//! HTTP: routes, auth, request validation with the path of the offending field, ranking with
//! A/B assignment and human-in-the-loop routing, model management.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hrloop_ingest::Pseudonymiser;
use hrloop_models::{Alias, ChangeRequest, Registry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Role;
use crate::config::{Mode, ServeConfig};
use crate::decision_log::{Decision, DecisionLog, Features as LoggedFeatures, Scored};
use crate::live::{Live, LiveModels};
use crate::metrics::Metrics;

pub struct AppState {
    pub config: ServeConfig,
    pub audit: crate::audit_sink::AuditSink,
    pub lake: hrloop_lake::Lake,
    pub taxonomy: hrloop_ingest::Taxonomy,
    pub outcomes_mapping: hrloop_ingest::ResolvedMapping,
    pub feedback_mapping: hrloop_ingest::ResolvedMapping,
    pub live: Arc<LiveModels>,
    pub registry: Registry,
    /// The token file, re-read when it changes (checked per request).
    pub tokens: crate::auth::LiveTokens,
    pub pseudo: Pseudonymiser,
    pub log: DecisionLog,
    pub shadow: crate::shadow::Shadow,
    pub metrics: Metrics,
    pub clock: Arc<dyn hrloop_core::Clock>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `forbidden`.
    pub code: String,
    /// What went wrong, naming the field when one is to blame.
    pub message: String,
}

/// An error as the caller sees it: a status, a code, a message; never a panic or a stack.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
        (self.status, axum::Json(body)).into_response()
    }
}

fn authorize(state: &AppState, headers: &HeaderMap, allowed: &[Role]) -> Result<(String, Role), ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    let who = state.tokens.identify(header);
    let Some((name, role)) = who else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "a valid bearer token is required"));
    };
    if role != Role::Admin && !allowed.contains(&role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not do this; allowed: {}",
                role.name(),
                allowed.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok((name, role))
}

/// Parse JSON, naming the offending field on failure as the caller wrote it
/// (`candidates[3].features.years_experience`). Valid bodies are parsed once without path
/// tracking; only a failed parse is repeated with it. A body must be exactly one JSON document:
/// anything after it but whitespace is refused (400).
fn parse<'b, T: serde::Deserialize<'b>>(body: &'b [u8]) -> Result<T, ApiError> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let e = match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        Ok(_) => {
            // The document itself parsed (from_slice failed): what fails is what follows it.
            let at = de.end().err().map(|e| format!(" (line {}, column {})", e.line(), e.column())).unwrap_or_default();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body must be exactly one JSON document; more follows it{at}"),
            ));
        }
        Err(e) => e,
    };
    let path = json_path(e.path());
    let inner = e.into_inner();
    let mut status =
        if inner.is_syntax() || inner.is_eof() { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
    let mut message = plain_words(&inner.to_string());
    if message.starts_with("number out of range") {
        // Well-formed JSON whose value no model can take: like any non-finite value, a 422.
        status = StatusCode::UNPROCESSABLE_ENTITY;
        message = format!("must be a finite number ({message})");
    }
    Err(ApiError::new(status, "invalid_json", if path.is_empty() { message } else { format!("{path}: {message}") }))
}
/// A field's path as the caller wrote it: `candidates[3].features.interview_score` (empty for
/// the whole body). Positions serde cannot name are left out rather than shown as `?`.
fn json_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde's messages in the caller's terms: no Rust type names (`struct RankRequest`).
fn plain_words(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("struct ") {
        out.push_str(&rest[..i]);
        rest = rest[i + "struct ".len()..].trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        out.push_str("an object");
    }
    out.push_str(rest);
    out.replace("a sequence", "an array").replace("a map", "an object").replace("f64", "a number")
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RankRequest<'a> {
    #[serde(borrow)]
    pub requisition: RequisitionIn<'a>,
    /// The candidates to rank, each once (a candidate id twice in one request is refused), at
    /// most `--max-candidates` (500 by default).
    #[serde(borrow)]
    #[schema(min_items = 1, max_items = 500)]
    pub candidates: Vec<CandidateIn<'a>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequisitionIn<'a> {
    #[serde(borrow)]
    #[schema(value_type = String, pattern = r"\S")]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub job_family: Cow<'a, str>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateIn<'a> {
    /// The ATS's candidate id: pseudonymised before anything is logged.
    #[serde(borrow)]
    #[schema(value_type = String, pattern = r"\S")]
    pub id: Cow<'a, str>,
    /// Named numbers (`null` = missing), e.g. `{"years_experience": 4, "interview_score": null}`.
    #[serde(default, borrow)]
    #[schema(value_type = std::collections::BTreeMap<String, Option<f64>>)]
    pub features: Features<'a>,
}

/// A candidate's features in the order given, names borrowed from the request body: a JSON
/// object of numbers or nulls.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Features<'a>(pub Vec<(Cow<'a, str>, Option<f64>)>);

impl Serialize for Features<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Features<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name<'a>(Cow<'a, str>);
        impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Name<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a feature name")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Borrowed(v)))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Owned(v.to_string())))
                    }
                }
                d.deserialize_str(V)
            }
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Features<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of feature names to numbers or null")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Features<'de>, M::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some(Name(k)) = map.next_key()? {
                    out.push((k, map.next_value::<Option<f64>>()?));
                }
                Ok(Features(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Route<'a> {
    /// `auto` or `human`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// For `human`: `out_of_range`, `edge_case`, `low_confidence` or `random_audit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub reason: Option<&'static str>,
    /// For `out_of_range`: the features whose values lie far outside what the model was
    /// trained on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub features: Vec<&'a str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RankedCandidate<'a> {
    #[schema(value_type = String)]
    pub id: &'a str,
    pub rank: usize,
    /// Probability of success at the model's milestone (calibrated when a calibration exists).
    pub score: f64,
    /// How sure the model is either way: max(score, 1 − score).
    pub confidence: f64,
    pub route: Route<'a>,
    pub explanation: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RankResponse<'a> {
    pub decision_id: String,
    #[schema(value_type = String)]
    pub requisition_id: &'a str,
    #[schema(value_type = String)]
    pub model_version: &'a str,
    /// `champion` or `challenger`.
    #[schema(value_type = String)]
    pub arm: &'static str,
    pub candidates: Vec<RankedCandidate<'a>>,
}

/// Why a candidate goes to a human (its on-disk form is the decisions table's `route`).
pub use hrloop_core::ReviewReason as Reason;
use hrloop_core::{Arm, Route as LoggedRoute};

/// Uniform number in [0, 1) from text: stable across processes and versions.
pub fn bucket(parts: &[&str]) -> f64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64)
}

/// Which arm serves a requisition: sticky per requisition and experiment.
pub fn assign(live: &Live, config: &ServeConfig, requisition: &str) -> &'static str {
    match (&live.challenger, config.mode) {
        (Some(ch), Mode::Ab) if bucket(&[ch.id(), requisition]) < config.challenger_share => Arm::Challenger.as_str(),
        _ => Arm::Champion.as_str(),
    }
}

#[utoipa::path(post, path = "/v1/rank", tag = "ranking", request_body = RankRequest,
    responses((status = 200, description = "Candidates ranked; every one logged durably", body = RankResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, description = "Body too large"), (status = 422, description = "Invalid field, named by its path", body = ErrorBody),
        (status = 503, description = "No champion loaded", body = ErrorBody)),
    security(("bearer" = [])))]
async fn rank(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let mut arm_used = "none";
    let result = rank_inner(&state, &headers, body, &mut arm_used, true).await;
    if let Err(e) = &result {
        // Refused requests (4xx) and failures (5xx) are counted too: the error-rate alert and
        // the operations dashboard read them.
        let status = if e.status.is_server_error() { "error" } else { "invalid" };
        state.metrics.requests.with_label_values(&[arm_used, status]).inc();
    }
    result
}

/// Rank a request. `record` is false only for the benchmark's `/v1/score`, which measures the
/// scoring alone: nothing is logged, audited or counted.
async fn rank_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Bytes,
    arm_used: &mut &'static str,
    record: bool,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (who, _) = authorize(state, headers, &[Role::Recruiter])?;
    let req: RankRequest = parse(&body)?;
    let cfg = &state.config;
    if req.candidates.is_empty() {
        return Err(ApiError::bad("candidates: at least one candidate is needed"));
    }
    if req.candidates.len() > cfg.max_candidates {
        return Err(ApiError::bad(format!(
            "candidates: {} given, at most {} per request",
            req.candidates.len(),
            cfg.max_candidates
        )));
    }
    if req.requisition.id.trim().is_empty() {
        return Err(ApiError::bad("requisition.id: must not be empty"));
    }
    let mut ids = std::collections::HashMap::with_capacity(req.candidates.len());
    for (i, c) in req.candidates.iter().enumerate() {
        if c.id.trim().is_empty() {
            return Err(ApiError::bad(format!("candidates[{i}].id: must not be empty")));
        }
        if let Some(first) = ids.insert(c.id.as_ref(), i) {
            return Err(ApiError::bad(format!(
                "candidates[{i}].id: {:?} is also candidates[{first}]; each candidate once per ranking",
                c.id
            )));
        }
        for (k, v) in &c.features.0 {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(ApiError::bad(format!("candidates[{i}].features.{k}: must be a finite number")));
            }
        }
    }
    // One snapshot for the whole request: never two versions in one response.
    let live = state.live.snapshot();
    let arm = assign(&live, cfg, &req.requisition.id);
    *arm_used = arm;
    let serving = if arm == Arm::Challenger.as_str() { live.challenger.as_ref() } else { live.champion.as_ref() };
    let Some(serving) = serving else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_champion", "no champion model is loaded yet"));
    };
    let n = req.candidates.len();
    let pipeline = &serving.model.pipeline;
    let expected = pipeline.numeric.len();
    // Score, explain and route each candidate; features go to the model by position, no maps.
    let mut scores = Vec::with_capacity(n);
    let mut explanations = Vec::with_capacity(n);
    let mut routes = Vec::with_capacity(n);
    let mut out_of_range = Vec::with_capacity(n);
    for (i, c) in req.candidates.iter().enumerate() {
        let row = serving
            .align(&req.requisition.job_family, &c.features.0)
            .map_err(|name| ApiError::bad(format!("candidates[{i}].features.{name}: given twice")))?;
        if let Some(f) = pipeline.invalid(&row) {
            let step = &pipeline.numeric[f];
            let (lo, hi) = step.valid.unwrap_or_default();
            return Err(ApiError::bad(format!(
                "candidates[{i}].features.{}: {} is outside the valid range {lo} to {hi} (candidate {:?})",
                step.name,
                row.numeric[f].unwrap_or_default(),
                c.id
            )));
        }
        let (p, effects) = serving
            .model
            .score_and_effects(&row, 3)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "scoring_failed", e.to_string()))?;
        let p = serving.calibrated(p);
        let known = row.numeric.iter().filter(|v| v.is_some()).count();
        let confidence = p.max(1.0 - p);
        let outside = pipeline.out_of_range(&row);
        routes.push(if !outside.is_empty() {
            Some(Reason::OutOfRange)
        } else if pipeline.any_unseen(&row) || known * 2 < expected {
            Some(Reason::EdgeCase)
        } else if confidence < cfg.low_confidence {
            Some(Reason::LowConfidence)
        } else if bucket(&["audit", &req.requisition.id, &c.id]) < cfg.audit_rate {
            Some(Reason::RandomAudit)
        } else {
            None
        });
        // Values the model never saw come first in the explanation; then a reason that moved the
        // score by at least half a percentage point (less would read "by 0.00").
        let mut explanation: Vec<String> = outside
            .iter()
            .map(|&f| {
                let step = &pipeline.numeric[f];
                let (lo, hi) = step.seen.unwrap_or_default();
                format!(
                    "{} is {}, far outside what the model was trained on ({lo} to {hi}): a person should judge",
                    step.name.replace('_', " "),
                    row.numeric[f].unwrap_or_default()
                )
            })
            .collect();
        explanation
            .extend(effects.into_iter().filter(|e| e.effect.abs() >= 0.005).map(|e| serving.model.sentence(&row, e)));
        explanations.push(explanation);
        out_of_range.push(outside);
        scores.push(p);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let decision_id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now();
    if record {
        let pseudonyms: Vec<String> =
            req.candidates.iter().map(|c| state.pseudo.pseudonym("candidate", &c.id)).collect();
        // Route counts are added once per request, not once per candidate (each add takes a lock).
        let mut counts = [0u64; Reason::ALL.len() + 1];
        for r in &routes {
            counts[r.map_or(0, |r| 1 + r as usize)] += 1;
        }
        for (i, n) in counts.into_iter().enumerate() {
            if n > 0 {
                let label = if i == 0 { "auto" } else { Reason::ALL[i - 1].as_str() };
                state.metrics.routes.with_label_values(&[label]).inc_by(n);
            }
        }
        // The log borrows everything from the request: nothing is copied for it. Feature names are
        // written once per ranking (the first candidate's), values per candidate.
        let feature_names: Vec<Cow<str>> =
            req.candidates[0].features.0.iter().map(|(k, _)| Cow::Borrowed(k.as_ref())).collect();
        let decision = Decision {
            decision_id: Cow::Borrowed(&decision_id),
            requisition_id: Cow::Borrowed(&req.requisition.id),
            job_family: Cow::Borrowed(&req.requisition.job_family),
            decided_at_us: now.timestamp_micros(),
            model_version: Cow::Borrowed(serving.id()),
            arm: Cow::Borrowed(arm),
            shadow_version: None,
            candidates: order
                .iter()
                .map(|&i| Scored {
                    candidate_id: Cow::Borrowed(&pseudonyms[i]),
                    score: scores[i],
                    route: Cow::Borrowed(LoggedRoute::from(routes[i]).as_str()),
                    shadow_score: None,
                    features: LoggedFeatures::of(&feature_names, &req.candidates[i].features.0),
                })
                .collect(),
            feature_names: feature_names.clone(),
        };
        state
            .log
            .append(&decision)
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", e))?;
        drop(decision);
        // Shadow: the challenger scores the same candidates on the low-priority shadow thread (from
        // the same body, parsed again there); its scores are logged beside the champion's, and a
        // slow challenger never delays this response.
        if let (Some(challenger), Mode::Shadow) = (&live.challenger, cfg.mode) {
            state.shadow.submit(crate::shadow::ShadowJob {
                challenger: challenger.clone(),
                served_by: serving.id().to_string(),
                body: body.clone(),
                decision_id: decision_id.clone(),
                decided_at_us: now.timestamp_micros(),
                pseudonyms,
                scores: scores.clone(),
                routes: routes.iter().map(|r| LoggedRoute::from(*r).as_str()).collect(),
            });
        }
        state
            .audit
            .record(hrloop_lake::audit::AuditEntry {
                at: now,
                actor: who,
                action: "rank".into(),
                target: format!("requisition {}", req.requisition.id),
                details: serde_json::json!({"decision_id": decision_id, "candidates": n, "model": serving.id(), "arm": arm}),
            })
            .await;
        state.metrics.requests.with_label_values(&[arm, "ok"]).inc();
        state.metrics.latency.with_label_values(&[arm]).observe(started.elapsed().as_secs_f64());
    }
    let candidates = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| RankedCandidate {
            id: &req.candidates[i].id,
            rank: rank + 1,
            score: scores[i],
            confidence: scores[i].max(1.0 - scores[i]),
            route: Route {
                kind: if routes[i].is_some() { "human" } else { "auto" },
                reason: routes[i].map(Reason::as_str),
                features: out_of_range[i].iter().map(|&f| pipeline.numeric[f].name.as_str()).collect(),
            },
            explanation: std::mem::take(&mut explanations[i]),
        })
        .collect();
    let resp =
        RankResponse { decision_id, requisition_id: &req.requisition.id, model_version: serving.id(), arm, candidates };
    Ok(json(&resp, 256 * n))
}

/// A JSON response written into a buffer sized up front (`axum::Json` starts small and grows
/// by copying, which shows on large bodies).
fn json<T: Serialize>(value: &T, capacity: usize) -> Response {
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], buf).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encoding", e.to_string()).into_response(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ModelsView {
    name: String,
    champion: Option<String>,
    challenger: Option<String>,
    versions: Vec<String>,
    serving_seq: u64,
}

#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelsView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn list_models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers, &Role::ALL)?;
    let name = state.live.name().to_string();
    let reg = |e: hrloop_models::Error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "registry", e.to_string());
    let st = state.registry.state(&name).await.map_err(reg)?;
    let versions = state.registry.versions(&name).await.map_err(reg)?;
    let view = ModelsView {
        name,
        champion: st.champion,
        challenger: st.challenger,
        versions,
        serving_seq: state.live.snapshot().seq,
    };
    Ok(axum::Json(view).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PromoteIn {
    /// Version to promote, e.g. `v3`.
    version: String,
    /// Why: recorded in the history.
    #[schema(pattern = r"\S")]
    reason: String,
    /// Which alias it takes: `champion` (default) or `challenger`.
    #[serde(default)]
    #[schema(value_type = Option<AliasName>)]
    alias: Option<Alias>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackIn {
    /// Version to roll back to (default: the previous champion).
    #[serde(default)]
    version: Option<String>,
    /// Why: recorded in the history.
    #[schema(pattern = r"\S")]
    reason: String,
}

/// A registry alias, as the API spells it.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum AliasName {
    Champion,
    Challenger,
}

async fn change(
    state: Arc<AppState>,
    headers: HeaderMap,
    name: String,
    body: Bytes,
    rollback: bool,
) -> Result<Response, ApiError> {
    let (who, _) = authorize(&state, &headers, &[Role::OnCall])?;
    if !hrloop_models::spec::is_model_name(&name) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_model", format!("no model {name:?}")));
    }
    let (version, reason, alias) = if rollback {
        let input: RollbackIn = parse(&body)?;
        (input.version, input.reason, None)
    } else {
        let input: PromoteIn = parse(&body)?;
        (Some(input.version), input.reason, input.alias)
    };
    if reason.trim().is_empty() {
        return Err(ApiError::bad("reason: say why"));
    }
    let req = ChangeRequest {
        actor: who.clone(),
        reason,
        evidence: serde_json::json!({"via": "http"}),
        at: state.clock.now(),
    };
    let result = match version {
        Some(v) if !rollback => state.registry.promote(&name, &v, alias.unwrap_or(Alias::Champion), req).await,
        v => state.registry.rollback(&name, v.as_deref(), req).await,
    };
    let event = result.map_err(|e| match e {
        // A race lost, or a change the aliases' present state does not allow (promoting the
        // champion again, rolling back with no earlier champion): both conflict with the state.
        hrloop_models::Error::Conflict(m) | hrloop_models::Error::Registry(m) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", m)
        }
        hrloop_models::Error::UnknownVersion(m) => ApiError::new(StatusCode::NOT_FOUND, "unknown_version", m),
        e @ (hrloop_models::Error::Lake(_)
        | hrloop_models::Error::ObjectStore(_)
        | hrloop_models::Error::Corrupt { .. }) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
        }
        other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", other.to_string()),
    })?;
    if name == state.live.name() {
        let _ = state.live.refresh().await;
    }
    state
        .audit
        .record(hrloop_lake::audit::AuditEntry {
            at: event.at,
            actor: who,
            action: if rollback { "model.rollback" } else { "model.promote" }.into(),
            target: format!("model {name}"),
            details: serde_json::json!({"seq": event.seq, "from": event.from_version, "to": event.to_version, "reason": event.reason}),
        })
        .await;
    Ok(axum::Json(event).into_response())
}

#[utoipa::path(post, path = "/v1/models/{name}/promote", tag = "models", request_body = PromoteIn,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The alias event", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Changed concurrently", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn promote(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(state, headers, name, body, false).await
}

#[utoipa::path(post, path = "/v1/models/{name}/rollback", tag = "models", request_body = RollbackIn,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The alias event", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Changed concurrently", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(state, headers, name, body, true).await
}

/// Rows posted as JSON (an array of objects, or `{"rows": [...]}`) or CSV, through the same
/// ingestion path as export files: same validation, quarantine and report.
async fn ingest_body(
    state: &AppState,
    who: String,
    headers: &HeaderMap,
    body: &Bytes,
    mapping: &hrloop_ingest::ResolvedMapping,
    stamp: Option<&str>,
) -> Result<Response, ApiError> {
    // Media types are case-insensitive (RFC 9110): `Text/CSV; charset=utf-8` is CSV.
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("text/csv"));
    let staging = state
        .lake
        .store()
        .staging_dir()
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    let id = uuid::Uuid::new_v4();
    let path = staging.join(format!("api-{id}.{}", if is_csv { "csv" } else { "jsonl" }));
    let content = if is_csv {
        body.to_vec()
    } else {
        let v: serde_json::Value = parse(body)?;
        let rows = match v {
            serde_json::Value::Array(rows) => rows,
            serde_json::Value::Object(mut o) => match o.remove("rows") {
                Some(serde_json::Value::Array(rows)) => rows,
                _ => return Err(ApiError::bad("rows: expected an array of objects (or send a JSON array)")),
            },
            _ => return Err(ApiError::bad("expected an array of objects")),
        };
        if rows.is_empty() {
            return Err(ApiError::bad("rows: at least one row is needed"));
        }
        let mut out = Vec::new();
        let now = state.clock.now().to_rfc3339();
        for (i, mut row) in rows.into_iter().enumerate() {
            let Some(obj) = row.as_object_mut() else {
                return Err(ApiError::bad(format!("[{i}]: expected an object")));
            };
            if let Some(field) = stamp {
                obj.insert(field.to_string(), serde_json::Value::String(now.clone()));
            }
            serde_json::to_writer(&mut out, &row).expect("JSON values serialise");
            out.push(b'\n');
        }
        out
    };
    std::fs::write(&path, content)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    let opts = hrloop_ingest::IngestOptions { clock: state.clock.clone(), progress: false };
    let result = hrloop_ingest::ingest_file(&state.lake, &path, mapping, &state.pseudo, &state.taxonomy, &opts).await;
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(report) => {
            state
                .audit
                .record(hrloop_lake::audit::AuditEntry {
                    at: state.clock.now(),
                    actor: who,
                    action: format!("{}.write", report.table),
                    target: format!("table {}", report.table),
                    details: serde_json::json!({"batch_id": report.batch_id, "rows_read": report.rows_read,
                        "accepted": report.rows_accepted, "quarantined": report.rows_quarantined}),
                })
                .await;
            Ok(axum::Json(report).into_response())
        }
        Err(e @ hrloop_ingest::Error::Unreadable { .. }) => {
            Err(ApiError::bad(e.to_string().replace(&path.display().to_string(), "body")))
        }
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ingest_failed", e.to_string())),
    }
}

/// Rows for ingestion: `{"rows": [...]}` (a bare JSON array of the rows is taken too). Each row
/// is an object in the mapping's columns; a row that fails validation is quarantined and
/// reported, not refused with the batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct RowsIn {
    #[schema(min_items = 1, value_type = Vec<Object>)]
    rows: Vec<serde_json::Value>,
}

#[utoipa::path(post, path = "/v1/feedback", tag = "feedback",
    request_body(content = RowsIn, description = "Rows with requisition_id, candidate_id, decision, overrides_model, reason_code, reason_text (or the same rows as a bare JSON array)"),
    responses((status = 200, description = "The batch quality report", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn feedback(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (who, _) = authorize(&state, &headers, &[Role::Recruiter])?;
    ingest_body(&state, who, &headers, &body, &state.feedback_mapping, Some("recorded_at")).await
}

#[utoipa::path(post, path = "/v1/outcomes", tag = "feedback",
    request_body(content = RowsIn, description = "Outcome rows in the HRIS export's columns (or a bare JSON array of them, or the export itself as `Content-Type: text/csv`)"),
    responses((status = 200, description = "The batch quality report", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn outcomes(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (who, _) = authorize(&state, &headers, &[Role::DataTeam])?;
    ingest_body(&state, who, &headers, &body, &state.outcomes_mapping, None).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ErasureIn {
    /// The person's id as the ATS or HRIS knows it. Sent in the body, never in a URL, so it
    /// stays out of access logs.
    #[schema(pattern = r"\S")]
    person: String,
    /// Why (e.g. the request's reference); stored in the audit trail.
    #[schema(pattern = r"\S")]
    reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyIn {
    /// The person's id as the ATS or HRIS knows it.
    #[schema(pattern = r"\S")]
    person: String,
    /// Optional note; not stored.
    #[serde(default)]
    #[allow(dead_code)]
    reason: Option<String>,
}

/// Erase a person from every table (admin only). This server's own decision log is moved into
/// the lake first so the erasure covers it; other servers drop the person's rows when they
/// move theirs. The response lists the model versions trained on the person.
#[utoipa::path(post, path = "/v1/erasures", tag = "privacy", request_body = ErasureIn,
    responses((status = 200, description = "The erasure report", body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
async fn erase(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (who, _) = authorize(&state, &headers, &[Role::Admin])?;
    let input: ErasureIn = parse(&body)?;
    let reason = input.reason;
    if input.person.trim().is_empty() || reason.trim().is_empty() {
        return Err(ApiError::bad("person and reason must not be empty"));
    }
    let storage = |e: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e);
    state.log.flush().await.map_err(storage)?;
    let req = hrloop_privacy::ErasureRequest { external_id: input.person, reason, actor: who, at: state.clock.now() };
    let report = hrloop_privacy::erase(&state.lake, &state.pseudo, &req).await.map_err(|e| storage(e.to_string()))?;
    Ok(axum::Json(report).into_response())
}

/// Scan the whole store for a person (admin only): `absent` is true when nothing is found.
#[utoipa::path(post, path = "/v1/erasures/verify", tag = "privacy", request_body = VerifyIn,
    responses((status = 200, description = "The scan", body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)), security(("bearer" = [])))]
async fn verify_erasure(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (who, _) = authorize(&state, &headers, &[Role::Admin])?;
    let input: VerifyIn = parse(&body)?;
    if input.person.trim().is_empty() {
        return Err(ApiError::bad("person: must not be empty"));
    }
    let report = hrloop_privacy::verify(&state.lake, &state.pseudo, &input.person, &who, state.clock.now())
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    Ok(axum::Json(report).into_response())
}

/// Benchmark only (`echo` in the config): rank without logging, auditing or counting, to
/// measure what scoring alone adds over parse-and-echo.
async fn score_only(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    rank_inner(&state, &headers, body, &mut "none", false).await
}

async fn echo(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    authorize(&state, &headers, &[Role::Recruiter])?;
    let req: RankRequest = parse(&body)?;
    Ok(json(&req, body.len() + 64))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up")))]
async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "A champion is loaded"), (status = 503, description = "No champion yet")))]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match &state.live.snapshot().champion {
        Some(c) => (StatusCode::OK, format!("ready: serving {}", c.id())).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no champion loaded").into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers any operation can give besides its own: 503 when the server holds its maximum
/// of connections; for a secured one 401 and 403; for one with a body 400 (not one JSON
/// document), 408 (body too slow), 413 (over the limit) and 422 (an invalid field).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder, schema::Ref};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                    )
                    .build(),
            )
        };
        // Identical candidates are refused (as is any candidate id twice, which JSON Schema
        // cannot say); utoipa has no attribute for `uniqueItems`.
        if let Some(RefOr::T(utoipa::openapi::Schema::Object(rank))) =
            openapi.components.as_mut().and_then(|c| c.schemas.get_mut("RankRequest"))
            && let Some(RefOr::T(utoipa::openapi::Schema::Array(candidates))) = rank.properties.get_mut("candidates")
        {
            candidates.unique_items = true;
        }
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let mut add = |code: &str, description: &str| {
                    op.responses.responses.entry(code.to_string()).or_insert_with(|| error(description));
                };
                add("503", "Unavailable: the server holds its maximum of connections, or cannot log durably");
                if op.security.is_some() {
                    add("401", "No valid bearer token");
                    add("403", "The token's role may not do this");
                }
                if op.request_body.is_some() {
                    add("400", "The body is not exactly one JSON document");
                    add("408", "The body did not arrive within the body timeout");
                    add("413", "The body is over the limit (2 MiB)");
                    add("422", "Invalid field, named by its JSON path");
                }
            }
        }
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "hrloop", description = "Ranked shortlists with human review routing, recruiter feedback, outcomes, model management"),
    paths(rank, feedback, outcomes, list_models, promote, rollback, erase, verify_erasure, healthz, readyz, metrics),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    use utoipa::OpenApi;
    axum::Json(ApiDoc::openapi()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on this endpoint"),
    )
}

/// Read the whole request body before any handler sees it: within `timeout` of the request
/// head (else 408, so a client cannot hold a connection by sending slowly) and at most `limit`
/// bytes (else 413), both answered with the usual JSON error body.
async fn read_body_in_time(
    State((limit, timeout)): State<(usize, std::time::Duration)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over the limit of {}", human_bytes(limit)),
        )
        .into_response()
    };
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let read = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit));
    let bytes = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
        Ok(Err(e)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!("the request body could not be read: {e}"),
            )
            .into_response();
        }
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} s of its head", timeout.as_secs_f64()),
            )
            .into_response();
            r.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return r;
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// `2 MiB`, `512 KiB` or `100 bytes`.
fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let echo_enabled = state.config.echo;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/rank", post(rank))
        .route("/v1/feedback", post(feedback))
        .route("/v1/outcomes", post(outcomes))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}/promote", post(promote))
        .route("/v1/models/{name}/rollback", post(rollback))
        .route("/v1/erasures", post(erase))
        .route("/v1/erasures/verify", post(verify_erasure))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let router =
        if echo_enabled { router.route("/v1/echo", post(echo)).route("/v1/score", post(score_only)) } else { router };
    let body_timeout = std::time::Duration::from_millis(state.config.body_timeout_ms);
    // The body is read (within the limit and the time) by `read_body_in_time`; the extractor's
    // own limit is lifted so there is one limit, with one answer.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state((limit, body_timeout), read_body_in_time))
        .with_state(state)
}
