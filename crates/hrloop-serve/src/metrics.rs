//! Serving metrics (`hrloop_<name>_<unit>[_total]`, fixed small label sets, never a person).

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub routes: IntCounterVec,
    pub alias_changes: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("hrloop_rank_requests_total", "Rank requests by serving arm and outcome"),
            &["arm", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("hrloop_rank_latency_seconds", "Rank request latency by arm")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
            &["arm"],
        )
        .expect("valid metric");
        let routes = IntCounterVec::new(
            Opts::new("hrloop_review_routes_total", "Ranked candidates by route: auto or the reason for human review"),
            &["reason"],
        )
        .expect("valid metric");
        let alias_changes = IntCounterVec::new(
            Opts::new("hrloop_model_alias_changes_total", "Promotions and rollbacks made through the API"),
            &["action"],
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(routes.clone()),
            Box::new(alias_changes.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Self { registry, requests, latency, routes, alias_changes }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("UTF-8")
    }
}
