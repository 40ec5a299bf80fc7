//! The models being served, swapped atomically: a request takes one snapshot and is served
//! wholly by it, so a promote or rollback never mixes versions within a response. A poller
//! follows the registry, so a change made by any process takes effect within a poll interval.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hrloop_models::calibrate::Calibration;
use hrloop_models::features::{Aligned, FeatureIndex};
use hrloop_models::model::TrainedModel;
use hrloop_models::{Registry, Result};

#[derive(Debug)]
pub struct Loaded {
    pub name: String,
    pub version: String,
    pub model: TrainedModel,
    pub calibration: Option<Calibration>,
    /// `name/version`.
    id: String,
    /// Where each named feature goes in the model's inputs.
    index: FeatureIndex,
}

impl Loaded {
    pub fn new(name: &str, version: &str, model: TrainedModel, calibration: Option<Calibration>) -> Loaded {
        Loaded {
            id: format!("{name}/{version}"),
            index: model.pipeline.index(),
            name: name.to_string(),
            version: version.to_string(),
            model,
            calibration,
        }
    }

    /// `name/version`, as logged and returned.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A request's candidate lined up with this model's inputs: its named numbers, and the
    /// requisition's job family for the `job_family` category. Features the model does not use
    /// are ignored here (they are still logged). Errors with the name of a feature given twice.
    pub fn align<'r>(
        &self,
        job_family: &'r str,
        features: &[(std::borrow::Cow<'r, str>, Option<f64>)],
    ) -> std::result::Result<Aligned<'r>, String> {
        let pipeline = &self.model.pipeline;
        let mut numeric = vec![None; pipeline.numeric.len()];
        let mut given = vec![false; numeric.len()];
        for (name, value) in features {
            if let Some(i) = self.index.get(name) {
                if std::mem::replace(&mut given[i], true) {
                    return Err(name.to_string());
                }
                numeric[i] = *value;
            }
        }
        let categorical = pipeline.categorical.iter().map(|c| (c.name == "job_family").then_some(job_family)).collect();
        Ok(Aligned { numeric, categorical })
    }

    /// A probability from the model, calibrated when a calibration exists.
    pub fn calibrated(&self, p: f64) -> f64 {
        self.calibration.as_ref().map_or(p, |c| c.apply(p))
    }
}

#[derive(Debug, Default)]
pub struct Live {
    /// Registry event the snapshot reflects.
    pub seq: u64,
    pub champion: Option<Arc<Loaded>>,
    pub challenger: Option<Arc<Loaded>>,
}

#[derive(Debug)]
pub struct LiveModels {
    name: String,
    registry: Registry,
    current: ArcSwap<Live>,
}

impl LiveModels {
    pub fn new(name: &str, registry: Registry) -> Self {
        Self { name: name.to_string(), registry, current: ArcSwap::from_pointee(Live::default()) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn snapshot(&self) -> Arc<Live> {
        self.current.load_full()
    }

    async fn load(&self, version: &str, reuse: &[&Option<Arc<Loaded>>]) -> Result<Arc<Loaded>> {
        if let Some(l) = reuse.iter().filter_map(|o| o.as_ref()).find(|l| l.version == version) {
            // Calibrations can change under a fixed version: refresh just that.
            let calibration = self.registry.calibrations(&self.name, version).await?.pop();
            if calibration == l.calibration {
                return Ok(l.clone());
            }
        }
        let model = self.registry.model(&self.name, version).await?;
        let calibration = self.registry.calibrations(&self.name, version).await?.pop();
        Ok(Arc::new(Loaded::new(&self.name, version, model, calibration)))
    }

    /// Follow the registry; returns whether the served models changed.
    pub async fn refresh(&self) -> Result<bool> {
        let state = self.registry.state(&self.name).await?;
        let old = self.snapshot();
        let champion = match &state.champion {
            Some(v) => Some(self.load(v, &[&old.champion, &old.challenger]).await?),
            None => None,
        };
        let challenger = match &state.challenger {
            Some(v) => Some(self.load(v, &[&old.champion, &old.challenger]).await?),
            None => None,
        };
        let same = |a: &Option<Arc<Loaded>>, b: &Option<Arc<Loaded>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        let changed = !same(&champion, &old.champion) || !same(&challenger, &old.challenger);
        if changed || state.seq != old.seq {
            if changed {
                tracing::info!(
                    champion = ?champion.as_ref().map(|l| l.id()),
                    challenger = ?challenger.as_ref().map(|l| l.id()),
                    "serving models changed"
                );
            }
            let fresh = Arc::new(Live { seq: state.seq, champion, challenger });
            // Two refreshes can overlap (the poller and an API call): the one that read an
            // older registry state must not overwrite a newer snapshot stored meanwhile.
            self.current.rcu(|cur| if cur.seq > fresh.seq { Arc::clone(cur) } else { Arc::clone(&fresh) });
        }
        Ok(changed)
    }
}
