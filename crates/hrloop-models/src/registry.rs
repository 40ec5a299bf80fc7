//! The model registry in the object store.
//!
//! ```text
//! registry/<name>/versions/v<N>/model.json   the artifact (pipeline + estimator), write-once
//! registry/<name>/versions/v<N>/card.json    the model card, write-once; its presence = the version exists
//! registry/<name>/aliases/<seq>.json         alias events, write-once, numbered 1, 2, 3, ...
//! ```
//!
//! Aliases (`champion`, `challenger`) are the fold of the event log. A change is a
//! compare-and-swap: it is written as event `seq + 1` with create-if-absent, so of two
//! concurrent changes made from the same state exactly one wins and the other gets a
//! conflict. The log is also the history: who, when, why, with what evidence, and what was
//! champion at any time.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hrloop_lake::Store;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::calibrate::Calibration;
use crate::card::ModelCard;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alias {
    Champion,
    Challenger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Point an alias at a version.
    Promote,
    /// Put the champion back to an earlier version.
    Rollback,
    /// Clear the challenger.
    Retire,
}

/// One alias change, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEvent {
    pub seq: u64,
    pub name: String,
    pub alias: Alias,
    pub action: Action,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    /// Metrics, verdicts or links that justified the change.
    pub evidence: serde_json::Value,
}

/// Aliases of one model name after folding its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AliasState {
    /// Number of the last event applied (0: none yet).
    pub seq: u64,
    pub champion: Option<String>,
    pub challenger: Option<String>,
    /// Champions in the order they took over; a rollback steps back through it.
    pub champion_stack: Vec<String>,
}

impl AliasState {
    fn apply(&mut self, e: &AliasEvent) {
        self.seq = e.seq;
        match (e.alias, &e.action) {
            (Alias::Champion, Action::Promote) => {
                if let Some(v) = &e.to_version {
                    self.champion_stack.push(v.clone());
                    if self.challenger.as_ref() == Some(v) {
                        self.challenger = None;
                    }
                }
            }
            (Alias::Champion, Action::Rollback) => {
                if let Some(v) = &e.to_version {
                    match self.champion_stack.iter().rposition(|x| x == v) {
                        Some(i) => self.champion_stack.truncate(i + 1),
                        None => self.champion_stack.push(v.clone()),
                    }
                }
            }
            (Alias::Challenger, Action::Promote) => self.challenger = e.to_version.clone(),
            (Alias::Challenger, _) | (Alias::Champion, Action::Retire) => self.challenger = None,
        }
        self.champion = self.champion_stack.last().cloned();
    }

    /// The champion a plain rollback would return to.
    pub fn previous_champion(&self) -> Option<&String> {
        let n = self.champion_stack.len();
        (n >= 2).then(|| &self.champion_stack[n - 2])
    }
}

/// A change HR should know about, in plain language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangelogEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// promote, rollback, retire
    pub change: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub summary: String,
    /// Who or what decided (a person, or `scheduler:<pipeline>`).
    pub decided_by: String,
}

/// Who makes a change and why.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub actor: String,
    pub reason: String,
    pub evidence: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
}

fn version_number(v: &str) -> Option<u64> {
    v.strip_prefix('v').and_then(|n| n.parse().ok())
}

impl Registry {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn versions_prefix(name: &str) -> Path {
        Path::from(format!("registry/{name}/versions"))
    }

    /// Model names with at least one version.
    pub async fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .store
            .list(&Path::from("registry"))
            .await?
            .iter()
            .filter_map(|m| m.location.parts().nth(1).map(|p| p.as_ref().to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Versions of a model, oldest first.
    pub async fn versions(&self, name: &str) -> Result<Vec<String>> {
        let mut nums: Vec<u64> = self
            .store
            .list(&Self::versions_prefix(name))
            .await?
            .iter()
            .filter(|m| m.location.filename() == Some("card.json"))
            .filter_map(|m| m.location.parts().nth(3).and_then(|p| version_number(p.as_ref())))
            .collect();
        nums.sort_unstable();
        Ok(nums.into_iter().map(|n| format!("v{n}")).collect())
    }

    /// Store a new immutable version: artifact first, then the card. Returns its version.
    pub async fn register(&self, name: &str, artifact: Bytes, mut card: ModelCard) -> Result<String> {
        let existing = self.store.list(&Self::versions_prefix(name)).await?;
        let mut n = existing
            .iter()
            .filter_map(|m| m.location.parts().nth(3).and_then(|p| version_number(p.as_ref())))
            .max()
            .unwrap_or(0);
        loop {
            n += 1;
            let version = format!("v{n}");
            let dir = format!("registry/{name}/versions/{version}");
            // Another trainer took this number: try the next.
            if !self.store.put_new(&Path::from(format!("{dir}/model.json")), artifact.clone()).await? {
                continue;
            }
            card.name = name.to_string();
            card.version = version.clone();
            let json = serde_json::to_vec_pretty(&card).map_err(|e| Error::Registry(e.to_string()))?;
            if !self.store.put_new(&Path::from(format!("{dir}/card.json")), json.into()).await? {
                return Err(Error::Conflict(format!("{name}/{version} already has a card")));
            }
            return Ok(version);
        }
    }

    pub async fn card(&self, name: &str, version: &str) -> Result<ModelCard> {
        // Only names a spec may have and versions the registry hands out (`v<n>`) can exist;
        // anything else (a space, a slash, 300 characters) is unknown, not a storage error.
        let is_version = version
            .strip_prefix('v')
            .is_some_and(|n| (1..=18).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
        if !(crate::spec::is_model_name(name) && is_version) {
            return Err(Error::UnknownVersion(format!("{name}/{version}")));
        }
        let path = Path::from(format!("registry/{name}/versions/{version}/card.json"));
        let bytes = match self.store.get(&path).await {
            Ok(b) => b,
            Err(hrloop_lake::Error::ObjectStore(object_store::Error::NotFound { .. })) => {
                return Err(Error::UnknownVersion(format!("{name}/{version}")));
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { path: path.to_string(), reason: e.to_string() })
    }

    pub async fn artifact(&self, name: &str, version: &str) -> Result<Bytes> {
        let path = Path::from(format!("registry/{name}/versions/{version}/model.json"));
        Ok(self.store.get(&path).await?)
    }

    /// A version's trained model (feature pipeline and estimator), ready to score.
    pub async fn model(&self, name: &str, version: &str) -> Result<crate::model::TrainedModel> {
        let bytes = self.artifact(name, version).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: format!("{name}/{version}/model.json"), reason: e.to_string() })
    }

    /// Store a calibration record beside a version; returns it with its number.
    pub async fn add_calibration(&self, name: &str, version: &str, mut cal: Calibration) -> Result<Calibration> {
        self.card(name, version).await?;
        let mut seq = self.calibrations(name, version).await?.last().map_or(0, |c| c.seq);
        loop {
            seq += 1;
            cal.seq = seq;
            let path = Path::from(format!("registry/{name}/versions/{version}/calibrations/{seq:06}.json"));
            let json = serde_json::to_vec_pretty(&cal).map_err(|e| Error::Registry(e.to_string()))?;
            if self.store.put_new(&path, json.into()).await? {
                return Ok(cal);
            }
        }
    }

    /// Calibrations of a version, oldest first; serving applies the last.
    pub async fn calibrations(&self, name: &str, version: &str) -> Result<Vec<Calibration>> {
        let mut out = Vec::new();
        for meta in self.store.list(&Path::from(format!("registry/{name}/versions/{version}/calibrations"))).await? {
            let bytes = self.store.get(&meta.location).await?;
            out.push(
                serde_json::from_slice::<Calibration>(&bytes)
                    .map_err(|e| Error::Corrupt { path: meta.location.to_string(), reason: e.to_string() })?,
            );
        }
        out.sort_by_key(|c| c.seq);
        Ok(out)
    }

    /// Every alias event of a model, in order.
    pub async fn events(&self, name: &str) -> Result<Vec<AliasEvent>> {
        let mut out = Vec::new();
        for meta in self.store.list(&Path::from(format!("registry/{name}/aliases"))).await? {
            let bytes = self.store.get(&meta.location).await?;
            let e: AliasEvent = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt { path: meta.location.to_string(), reason: e.to_string() })?;
            out.push(e);
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    pub async fn state(&self, name: &str) -> Result<AliasState> {
        Ok(fold(&self.events(name).await?, None))
    }

    /// What the aliases were at time `t`.
    pub async fn state_at(&self, name: &str, t: DateTime<Utc>) -> Result<AliasState> {
        Ok(fold(&self.events(name).await?, Some(t)))
    }

    /// Point `alias` at `version`.
    pub async fn promote(&self, name: &str, version: &str, alias: Alias, req: ChangeRequest) -> Result<AliasEvent> {
        let state = self.state(name).await?;
        self.promote_from(name, &state, version, alias, req).await
    }

    /// [`Registry::promote`] against a state the caller read: fails with a conflict if the
    /// aliases changed since.
    pub async fn promote_from(
        &self,
        name: &str,
        state: &AliasState,
        version: &str,
        alias: Alias,
        req: ChangeRequest,
    ) -> Result<AliasEvent> {
        self.card(name, version).await?;
        let current = match alias {
            Alias::Champion => state.champion.clone(),
            Alias::Challenger => state.challenger.clone(),
        };
        if current.as_deref() == Some(version) {
            return Err(Error::Registry(format!("{name}/{version} is already the {alias:?}").to_lowercase()));
        }
        self.append(name, state, alias, Action::Promote, current, Some(version.to_string()), req).await
    }

    /// Clear the challenger (the experiment ends without a promotion).
    pub async fn retire(&self, name: &str, req: ChangeRequest) -> Result<AliasEvent> {
        let state = self.state(name).await?;
        let Some(current) = state.challenger.clone() else {
            return Err(Error::Registry(format!("{name} has no challenger to retire")));
        };
        self.append(name, &state, Alias::Challenger, Action::Retire, Some(current), None, req).await
    }

    /// Add an entry to the model's changelog for HR (`registry/<name>/changelog/<seq>.json`).
    pub async fn add_changelog(&self, name: &str, mut entry: ChangelogEntry) -> Result<ChangelogEntry> {
        loop {
            entry.seq = self.changelog(name).await?.last().map_or(1, |e| e.seq + 1);
            let path = Path::from(format!("registry/{name}/changelog/{:06}.json", entry.seq));
            let json = serde_json::to_vec_pretty(&entry).expect("changelog serialises");
            if self.store.put_new(&path, Bytes::from(json)).await? {
                return Ok(entry);
            }
        }
    }

    /// The changelog, oldest first.
    pub async fn changelog(&self, name: &str) -> Result<Vec<ChangelogEntry>> {
        let mut out = Vec::new();
        for meta in self.store.list(&Path::from(format!("registry/{name}/changelog"))).await? {
            let bytes = self.store.get(&meta.location).await?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Corrupt { path: meta.location.to_string(), reason: e.to_string() })?,
            );
        }
        Ok(out)
    }

    /// Put the champion back: to `to`, or to the champion before the current one.
    pub async fn rollback(&self, name: &str, to: Option<&str>, req: ChangeRequest) -> Result<AliasEvent> {
        let state = self.state(name).await?;
        self.rollback_from(name, &state, to, req).await
    }

    pub async fn rollback_from(
        &self,
        name: &str,
        state: &AliasState,
        to: Option<&str>,
        req: ChangeRequest,
    ) -> Result<AliasEvent> {
        let target = match to {
            Some(v) => {
                self.card(name, v).await?;
                v.to_string()
            }
            None => state.previous_champion().cloned().ok_or_else(|| {
                Error::Registry(format!("{name} has no earlier champion to roll back to; name a version with --to"))
            })?,
        };
        if state.champion.as_deref() == Some(target.as_str()) {
            return Err(Error::Registry(format!("{name}/{target} is already the champion")));
        }
        self.append(name, state, Alias::Champion, Action::Rollback, state.champion.clone(), Some(target), req).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        name: &str,
        state: &AliasState,
        alias: Alias,
        action: Action,
        from_version: Option<String>,
        to_version: Option<String>,
        req: ChangeRequest,
    ) -> Result<AliasEvent> {
        let event = AliasEvent {
            seq: state.seq + 1,
            name: name.to_string(),
            alias,
            action,
            from_version,
            to_version,
            actor: req.actor,
            at: req.at,
            reason: req.reason,
            evidence: req.evidence,
        };
        let path = Path::from(format!("registry/{name}/aliases/{:010}.json", event.seq));
        let json = serde_json::to_vec_pretty(&event).map_err(|e| Error::Registry(e.to_string()))?;
        if self.store.put_new(&path, json.into()).await? {
            Ok(event)
        } else {
            Err(Error::Conflict(format!(
                "{name}'s aliases changed while this change was being made (event {} exists); look at `hrloop models history {name}` and retry",
                event.seq
            )))
        }
    }
}

fn fold(events: &[AliasEvent], until: Option<DateTime<Utc>>) -> AliasState {
    let mut state = AliasState::default();
    for e in events.iter().filter(|e| until.is_none_or(|t| e.at <= t)) {
        state.apply(e);
    }
    state
}
