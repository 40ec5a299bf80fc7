//! The audit trail: append-only, hash-chained records of who did what to which data or model,
//! stored as write-once segments in the store (`audit/<first seq>.jsonl`).
//!
//! Each record carries the hash of the one before it, and its own hash over all its fields, so
//! changing, removing or reordering any record breaks the chain at a place `verify` names.
//! Appends are a compare-and-swap on the segment name (create-if-absent): two processes
//! appending at once never fork the chain; the loser re-reads the tail and retries.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result, Store};

/// Hash the chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Token name, user or process.
    pub actor: String,
    /// `rank`, `feedback.write`, `model.promote`, `model.rollback`, `erase`, ...
    pub action: String,
    /// What it was done to: a requisition, a model, a table.
    pub target: String,
    /// Counts, versions, reasons. Never a person's identifier in clear.
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    fn compute_hash(seq: u64, entry: &AuditEntry, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            seq.to_string(),
            entry.at.to_rfc3339(),
            entry.actor.clone(),
            entry.action.clone(),
            entry.target.clone(),
            entry.details.to_string(),
            prev_hash.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub records: u64,
    pub ok: bool,
    /// Where the chain breaks and how, for a person.
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

const PREFIX: &str = "audit";

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn segments(&self) -> Result<Vec<(u64, Path)>> {
        let mut out: Vec<(u64, Path)> = self
            .store
            .list(&Path::from(PREFIX))
            .await?
            .into_iter()
            .filter_map(|m| {
                let first = m.location.filename()?.strip_suffix(".jsonl")?.parse().ok()?;
                Some((first, m.location))
            })
            .collect();
        out.sort_by_key(|(first, _)| *first);
        Ok(out)
    }

    async fn read_segment(&self, path: &Path) -> Result<Vec<std::result::Result<AuditRecord, String>>> {
        let bytes = self.store.get(path).await?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<AuditRecord>(l).map_err(|e| e.to_string()))
            .collect())
    }

    /// The last record, if any.
    async fn tail(&self) -> Result<Option<AuditRecord>> {
        let Some((_, path)) = self.segments().await?.pop() else { return Ok(None) };
        let last = self.read_segment(&path).await?.pop();
        match last {
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(e)) => Err(Error::Schema { table: "audit", path: path.to_string(), reason: e }),
            None => Ok(None),
        }
    }

    /// Append entries as one durable segment; returns the records as chained.
    pub async fn append(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        loop {
            let tail = self.tail().await?;
            let (mut seq, mut prev) = tail.map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash));
            let first = seq + 1;
            let mut records = Vec::with_capacity(entries.len());
            let mut body = Vec::new();
            for entry in &entries {
                seq += 1;
                let hash = AuditRecord::compute_hash(seq, entry, &prev);
                let record = AuditRecord { seq, entry: entry.clone(), prev_hash: prev.clone(), hash: hash.clone() };
                serde_json::to_writer(&mut body, &record).expect("records serialise");
                body.push(b'\n');
                records.push(record);
                prev = hash;
            }
            let path = Path::from(format!("{PREFIX}/{first:012}.jsonl"));
            if self.store.put_new(&path, Bytes::from(body)).await? {
                return Ok(records);
            }
            // Another process appended first: chain onto its records.
        }
    }

    /// Every record, in order (unreadable lines are skipped here; `verify` reports them).
    pub async fn records(&self) -> Result<Vec<AuditRecord>> {
        let mut out = Vec::new();
        for (_, path) in self.segments().await? {
            out.extend(self.read_segment(&path).await?.into_iter().filter_map(|r| r.ok()));
        }
        Ok(out)
    }

    /// Check the chain end to end and say where it breaks.
    pub async fn verify(&self) -> Result<Verification> {
        let mut expected_seq = 1u64;
        let mut prev = GENESIS.to_string();
        let mut count = 0u64;
        let fail = |count, problem: String| Ok(Verification { records: count, ok: false, problem: Some(problem) });
        for (first, path) in self.segments().await? {
            if first != expected_seq {
                return fail(
                    count,
                    format!(
                        "{path}: starts at record {first} but record {expected_seq} was expected: records were removed"
                    ),
                );
            }
            for (i, rec) in self.read_segment(&path).await?.into_iter().enumerate() {
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => return fail(count, format!("{path} line {}: not a readable record ({e})", i + 1)),
                };
                if rec.seq != expected_seq {
                    return fail(
                        count,
                        format!(
                            "{path} line {}: record {} where record {expected_seq} was expected: records were removed or reordered",
                            i + 1,
                            rec.seq
                        ),
                    );
                }
                if rec.prev_hash != prev {
                    return fail(
                        count,
                        format!(
                            "record {} ({path} line {}): does not follow record {}: the chain was reordered or a record replaced",
                            rec.seq,
                            i + 1,
                            rec.seq - 1
                        ),
                    );
                }
                let computed = AuditRecord::compute_hash(rec.seq, &rec.entry, &rec.prev_hash);
                if computed != rec.hash {
                    return fail(
                        count,
                        format!(
                            "record {} ({path} line {}) was changed after it was written: its content no longer matches its hash",
                            rec.seq,
                            i + 1
                        ),
                    );
                }
                prev = rec.hash;
                expected_seq += 1;
                count += 1;
            }
        }
        Ok(Verification { records: count, ok: true, problem: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> AuditEntry {
        AuditEntry {
            at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
                + chrono::Duration::seconds(i as i64),
            actor: format!("actor{i}"),
            action: "rank".into(),
            target: format!("REQ-{i}"),
            details: serde_json::json!({"candidates": i}),
        }
    }

    async fn trail(dir: &std::path::Path) -> Audit {
        let audit = Audit::new(Store::open(dir.to_str().unwrap()).unwrap());
        audit.append((1..=3).map(entry).collect()).await.unwrap();
        audit.append((4..=5).map(entry).collect()).await.unwrap();
        audit
    }

    #[tokio::test]
    async fn an_intact_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let audit = trail(dir.path()).await;
        let v = audit.verify().await.unwrap();
        assert_eq!((v.records, v.ok), (5, true), "{v:?}");
        assert_eq!(audit.records().await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn changed_removed_and_reordered_records_are_found_and_named() {
        let seg = |dir: &std::path::Path| dir.join("audit/000000000001.jsonl");
        // Changed.
        let dir = tempfile::tempdir().unwrap();
        let audit = trail(dir.path()).await;
        let text = std::fs::read_to_string(seg(dir.path())).unwrap().replace("actor2", "someone");
        std::fs::write(seg(dir.path()), text).unwrap();
        let v = audit.verify().await.unwrap();
        assert!(!v.ok && v.problem.as_deref().unwrap().contains("record 2 "), "{v:?}");
        assert!(v.problem.unwrap().contains("changed"));
        // Removed.
        let dir = tempfile::tempdir().unwrap();
        let audit = trail(dir.path()).await;
        let lines: Vec<String> = std::fs::read_to_string(seg(dir.path())).unwrap().lines().map(String::from).collect();
        std::fs::write(seg(dir.path()), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let v = audit.verify().await.unwrap();
        assert!(v.problem.as_deref().unwrap().contains("record 3 where record 2 was expected"), "{v:?}");
        // Reordered.
        let dir = tempfile::tempdir().unwrap();
        let audit = trail(dir.path()).await;
        std::fs::write(seg(dir.path()), format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2])).unwrap();
        assert!(!audit.verify().await.unwrap().ok);
        // A whole segment removed.
        let dir = tempfile::tempdir().unwrap();
        let audit = trail(dir.path()).await;
        std::fs::remove_file(seg(dir.path())).unwrap();
        let v = audit.verify().await.unwrap();
        assert!(v.problem.as_deref().unwrap().contains("records were removed"), "{v:?}");
    }

    #[tokio::test]
    async fn concurrent_appenders_never_fork_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        for w in 0..6 {
            let audit = Audit::new(Store::open(dir.path().to_str().unwrap()).unwrap());
            tasks.push(tokio::spawn(async move {
                for i in 0..5 {
                    audit.append(vec![entry(w * 10 + i)]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = Audit::new(Store::open(dir.path().to_str().unwrap()).unwrap()).verify().await.unwrap();
        assert_eq!((v.records, v.ok), (30, true), "{v:?}");
    }
}
