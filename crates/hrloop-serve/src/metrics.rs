//! `/metrics`: serving metrics counted live, plus the KPI families computed from the store
//! (`hrloop_<name>_<unit>[_total]`, fixed small label sets, never a person).

use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::kpis::CATALOG;

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub routes: IntCounterVec,
    pub shadow_dropped: prometheus::IntCounter,
    pub log_backlog: prometheus::Gauge,
    pub connections_open: prometheus::IntGauge,
    pub connections_refused: prometheus::IntCounter,
    pub connections_evicted: prometheus::IntCounter,
    /// KPIs computed from the store (see [`crate::kpis`]), replaced whole on each refresh.
    pub kpis: Arc<ArcSwap<Vec<MetricFamily>>>,
}

fn help(name: &str) -> &'static str {
    CATALOG.iter().find(|d| d.name == name).map(|d| d.help).unwrap_or_else(|| panic!("{name} is not in the catalog"))
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("hrloop_rank_requests_total", help("hrloop_rank_requests_total")),
            &["arm", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("hrloop_rank_latency_seconds", help("hrloop_rank_latency_seconds"))
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
            &["arm"],
        )
        .expect("valid metric");
        let routes = IntCounterVec::new(
            Opts::new("hrloop_review_routes_total", help("hrloop_review_routes_total")),
            &["reason"],
        )
        .expect("valid metric");
        let shadow_dropped =
            prometheus::IntCounter::new("hrloop_shadow_dropped_total", help("hrloop_shadow_dropped_total"))
                .expect("valid metric");
        let log_backlog =
            prometheus::Gauge::new("hrloop_decision_log_backlog_seconds", help("hrloop_decision_log_backlog_seconds"))
                .expect("valid metric");
        let connections_open =
            prometheus::IntGauge::new("hrloop_http_open_connections", help("hrloop_http_open_connections"))
                .expect("valid metric");
        let connections_refused = prometheus::IntCounter::new(
            "hrloop_http_connections_refused_total",
            help("hrloop_http_connections_refused_total"),
        )
        .expect("valid metric");
        let connections_evicted = prometheus::IntCounter::new(
            "hrloop_http_connections_evicted_total",
            help("hrloop_http_connections_evicted_total"),
        )
        .expect("valid metric");
        for m in [
            Box::new(connections_evicted.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(shadow_dropped.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_refused.clone()),
            Box::new(log_backlog.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(routes.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Self {
            registry,
            requests,
            latency,
            routes,
            shadow_dropped,
            log_backlog,
            connections_open,
            connections_refused,
            connections_evicted,
            kpis: Arc::new(ArcSwap::from_pointee(Vec::new())),
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.kpis.load().iter().cloned());
        TextEncoder::new().encode(&families, &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("UTF-8")
    }
}
