//! `hrloop serve`: ranked shortlists over HTTP with champion/challenger A/B or shadow,
//! human-in-the-loop routing, a durable decision log, model management and bearer-token auth.
//! The only crate that knows HTTP.

pub mod api;
pub mod audit_sink;
pub mod auth;
pub mod config;
pub mod decision_log;
pub mod kpis;
pub mod live;
pub mod metrics;
pub mod server;
pub mod shadow;

use std::sync::Arc;
use std::time::Duration;

pub use api::{AppState, router};
pub use auth::{Role, TokenStore};
pub use config::{Mode, ServeConfig};

/// Build the state: load the models, open the decision log, start the registry poller.
pub async fn start(
    config: ServeConfig,
    lake: hrloop_lake::Lake,
    pseudo: hrloop_ingest::Pseudonymiser,
    clock: Arc<dyn hrloop_core::Clock>,
) -> Result<Arc<AppState>, String> {
    let root = config.state_dir.clone().or_else(|| lake.store().local_root().map(|p| p.to_path_buf())).ok_or(
        "a store in a bucket needs --state-dir: a local directory for the server's write-ahead log and tokens",
    )?;
    let registry = hrloop_models::Registry::new(lake.store().clone());
    let live = Arc::new(live::LiveModels::new(&config.model, registry.clone()));
    live.refresh().await.map_err(|e| e.to_string())?;
    let metrics = metrics::Metrics::default();
    let (log, _writer) = decision_log::DecisionLog::open(
        lake.clone(),
        root.join("_wal"),
        Duration::from_millis(config.flush_ms),
        Duration::from_millis(config.lake_max_delay_ms),
        metrics.log_backlog.clone(),
    )
    .await
    .map_err(|e| format!("decision log: {e}"))?;
    let tokens = TokenStore::in_store(&root);
    let taxonomy = hrloop_ingest::Taxonomy::load(&config.taxonomy).map_err(|e| e.to_string())?;
    let outcomes_mapping =
        hrloop_ingest::ResolvedMapping::load(&config.outcomes_mapping, &taxonomy).map_err(|e| e.to_string())?;
    let feedback_mapping =
        hrloop_ingest::ResolvedMapping::load(&config.feedback_mapping, &taxonomy).map_err(|e| e.to_string())?;
    let state = Arc::new(AppState {
        audit: audit_sink::AuditSink::start(lake.store().clone()),
        lake: lake.clone(),
        taxonomy,
        outcomes_mapping,
        feedback_mapping,
        tokens: auth::LiveTokens::open(tokens).map_err(|e| format!("tokens: {e}"))?,
        config,
        live: live.clone(),
        registry,
        pseudo,
        shadow: shadow::Shadow::start(log.clone(), tokio::runtime::Handle::current(), metrics.shadow_dropped.clone()),
        log,
        metrics,
        clock,
    });
    let pipelines = match &state.config.pipelines_dir {
        Some(dir) if dir.is_dir() => hrloop_scheduler::Pipeline::load_dir(dir).map_err(|e| e.to_string())?,
        _ => Vec::new(),
    };
    // KPIs are refreshed from the store, reading only the decision files committed since the
    // last refresh (kpis::KpiState): background analytics on a thread of its own at the lowest
    // CPU priority (with its own small runtime), so a large lake never takes CPU or an async
    // worker from the requests. It ends when the server's state is gone.
    let weak = Arc::downgrade(&state);
    let every = Duration::from_millis(state.config.kpi_refresh_ms.max(100));
    std::thread::Builder::new()
        .name("hrloop-kpis".into())
        .spawn(move || {
            shadow::lowest_priority();
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                tracing::error!("KPI refresh: cannot start its runtime");
                return;
            };
            rt.block_on(async move {
                let mut tick = tokio::time::interval(every);
                let mut state = kpis::KpiState::default();
                loop {
                    tick.tick().await;
                    let Some(st) = weak.upgrade() else { return };
                    match state.refresh(&st.lake, &pipelines, st.clock.now()).await {
                        Ok(families) => st.metrics.kpis.store(Arc::new(families)),
                        Err(e) => tracing::warn!(error = %e, "KPI refresh failed"),
                    }
                }
            });
        })
        .map_err(|e| format!("KPI refresh thread: {e}"))?;
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(st.config.poll_ms));
        loop {
            tick.tick().await;
            if let Err(e) = st.live.refresh().await {
                tracing::warn!(error = %e, "registry poll failed");
            }
        }
    });
    Ok(state)
}
