//! Right to erasure (GDPR art. 17): find every row about a person from their external id,
//! remove it from every table, keep them out for good (tombstone), say which model versions
//! learned from them (lineage), and prove absence by scanning the whole store.

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use chrono::{DateTime, Utc};
use hrloop_ingest::Pseudonymiser;
use hrloop_lake::audit::{Audit, AuditEntry};
use hrloop_lake::removal::{ERASURES_PREFIX, Removal, pseudonym_tokens, text_columns};
use hrloop_lake::{ErasedSet, Kind, Lake, RemovalReport, Table, Tombstone};
use hrloop_models::Registry;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Store folders the proof-of-absence scan skips, and why: tombstones hold the erased
/// pseudonyms by design (that is how they keep the person out); secrets hold keys and token
/// hashes; staging holds nothing committed; `inbox/` holds the source systems' own exports
/// as delivered (with names and raw ids: the person must be erased in the ATS/HRIS too, and
/// the tombstone keeps a re-ingested export from bringing them back).
pub const NOT_SCANNED: [&str; 4] = [ERASURES_PREFIX, "secrets", "_staging", "inbox"];

#[derive(Debug, Clone)]
pub struct ErasureRequest {
    /// The person's identifier as the source systems know it (ATS candidate id, HRIS employee
    /// id, recruiter id). Used to compute pseudonyms; never stored.
    pub external_id: String,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A registered model version trained on files that held the person's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageHit {
    pub model: String,
    pub version: String,
    pub trained_at: DateTime<Utc>,
    /// The training files that held the person's rows.
    pub files: Vec<String>,
    /// The table versions the version was trained on (its card's). Those that listed one of
    /// `files` can no longer be read, so `hrloop train --as-of` this version now fails.
    #[serde(default)]
    pub table_versions: hrloop_lake::TableVersions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErasureReport {
    pub erasure_id: String,
    pub at: DateTime<Utc>,
    /// How many pseudonyms (candidate, employee, recruiter, and linked through hires) were
    /// erased. The pseudonyms themselves are only in the tombstone.
    pub pseudonyms: usize,
    pub tables: Vec<RemovalReport>,
    pub rows_removed: u64,
    /// Model versions that learned from this person: the data team decides about retraining.
    pub trained_on_person: Vec<LineageHit>,
    /// The scan after the removal.
    pub verification: VerifyReport,
}

/// Where a person's pseudonym was still found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub location: String,
    /// Rows (Parquet) or occurrences (other files).
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub absent: bool,
    pub files_scanned: usize,
    pub pseudonyms_checked: usize,
    pub findings: Vec<Finding>,
    pub not_scanned: Vec<String>,
}

/// Every pseudonym that stands for the person: their id in each pseudonym namespace of the
/// catalog, the other side of any hire that links a candidate to an employee, and everything an
/// earlier erasure of them recorded (the links may be gone from the lake by now).
pub async fn person_pseudonyms(lake: &Lake, pseudo: &Pseudonymiser, external_id: &str) -> Result<ErasedSet> {
    let mut namespaces = BTreeSet::new();
    for table in Table::ALL {
        for f in table.def().fields {
            if let Kind::Pseudonym(ns) = f.kind {
                namespaces.insert(ns);
            }
        }
    }
    let mut set: ErasedSet = namespaces.iter().map(|ns| pseudo.pseudonym(ns, external_id)).collect();
    let hires = lake.scan(Table::Hires, Some(&["employee_id", "candidate_id"])).await?;
    for b in &hires.batches {
        let (emp, cand) = (
            b.column_by_name("employee_id").map(|c| c.as_string::<i32>()),
            b.column_by_name("candidate_id").map(|c| c.as_string::<i32>()),
        );
        let (Some(emp), Some(cand)) = (emp, cand) else { continue };
        for i in 0..b.num_rows() {
            let (e, c) = (emp.value(i), cand.value(i));
            if set.contains(e) || set.contains(c) {
                set.extend([e.to_string(), c.to_string()]);
            }
        }
    }
    for t in lake.tombstones().await? {
        if t.pseudonyms.iter().any(|p| set.contains(p)) {
            set.extend(t.pseudonyms);
        }
    }
    Ok(set)
}

/// Erase a person. The tombstone is written first, so an interrupted erasure still keeps the
/// person out of every later write and training set, and running it again finishes the job.
pub async fn erase(lake: &Lake, pseudo: &Pseudonymiser, req: &ErasureRequest) -> Result<ErasureReport> {
    let set = person_pseudonyms(lake, pseudo, &req.external_id).await?;
    let id = format!("{}-{}", req.at.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut pseudonyms: Vec<String> = set.iter().cloned().collect();
    pseudonyms.sort();
    lake.add_tombstone(&Tombstone {
        id: id.clone(),
        at: req.at,
        actor: req.actor.clone(),
        reason: req.reason.clone(),
        pseudonyms,
    })
    .await?;
    let mut tables = Vec::new();
    for table in Table::ALL {
        let cols = text_columns(table);
        tables.push(
            lake.remove_rows(table, &Removal { columns: Some(&cols), dry_run: false, at: req.at, fence: true }, |b| {
                set.batch_mentions(b)
            })
            .await?,
        );
    }
    let touched: BTreeSet<&String> = tables.iter().flat_map(RemovalReport::touched).collect();
    // Files are rewritten in place, so a version trained after the person's first erasure lists
    // the same paths without having seen them: only versions trained before it count.
    let first_erased = lake
        .tombstones()
        .await?
        .iter()
        .filter(|t| t.pseudonyms.iter().any(|p| set.contains(p)))
        .map(|t| t.at)
        .min()
        .unwrap_or(req.at);
    let trained_on_person = lineage(lake, &touched, first_erased).await?;
    let rows_removed = tables.iter().map(|t| t.rows_removed).sum();
    let verification = scan(lake, &set).await?;
    let audit_tables: serde_json::Map<String, serde_json::Value> =
        tables.iter().filter(|t| t.rows_removed > 0).map(|t| (t.table.clone(), t.rows_removed.into())).collect();
    Audit::new(lake.store().clone())
        .append(vec![AuditEntry {
            at: req.at,
            actor: req.actor.clone(),
            action: "erase".into(),
            target: format!("erasure {id}"),
            details: serde_json::json!({
                "reason": req.reason,
                "rows_removed": audit_tables,
                "trained_on_person": trained_on_person.iter().map(|h| format!("{}/{}", h.model, h.version)).collect::<Vec<_>>(),
                "verified_absent": verification.absent,
            }),
        }])
        .await?;
    tracing::info!(erasure = %id, rows = rows_removed, "person erased");
    Ok(ErasureReport {
        erasure_id: id,
        at: req.at,
        pseudonyms: set.len(),
        tables,
        rows_removed,
        trained_on_person,
        verification,
    })
}

/// Prove that nothing about the person is left anywhere in the store. The scan reads
/// person-level data, so it is audited (who, when, what it found); the entry names no person,
/// since the audit trail is scanned too and must not keep what an erasure removed.
pub async fn verify(
    lake: &Lake,
    pseudo: &Pseudonymiser,
    external_id: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<VerifyReport> {
    let set = person_pseudonyms(lake, pseudo, external_id).await?;
    let report = scan(lake, &set).await?;
    Audit::new(lake.store().clone())
        .append(vec![AuditEntry {
            at,
            actor: actor.to_string(),
            action: "erasure.verify".into(),
            target: "store scan for one person".into(),
            details: serde_json::json!({
                "absent": report.absent,
                "files_scanned": report.files_scanned,
                "findings": report.findings.len(),
            }),
        }])
        .await?;
    Ok(report)
}

/// Registered versions trained before `before` whose training snapshot lists one of `files`.
async fn lineage(lake: &Lake, files: &BTreeSet<&String>, before: DateTime<Utc>) -> Result<Vec<LineageHit>> {
    let registry = Registry::new(lake.store().clone());
    let mut hits = Vec::new();
    if files.is_empty() {
        return Ok(hits);
    }
    for model in registry.names().await? {
        for version in registry.versions(&model).await? {
            let card = registry.card(&model, &version).await?;
            if card.created_at >= before {
                continue;
            }
            let used: Vec<String> =
                card.training_data.files.iter().filter(|f| files.contains(&f.path)).map(|f| f.path.clone()).collect();
            if !used.is_empty() {
                hits.push(LineageHit {
                    model: model.clone(),
                    version,
                    trained_at: card.created_at,
                    files: used,
                    table_versions: card.training_data.table_versions.clone(),
                });
            }
        }
    }
    Ok(hits)
}

/// Scan every object in the store (except [`NOT_SCANNED`]): Parquet files cell by cell
/// (decoded, so compression hides nothing), every other file as text.
pub async fn scan(lake: &Lake, set: &ErasedSet) -> Result<VerifyReport> {
    let store = lake.store();
    let mut report = VerifyReport {
        absent: true,
        files_scanned: 0,
        pseudonyms_checked: set.len(),
        findings: Vec::new(),
        not_scanned: NOT_SCANNED.iter().map(ToString::to_string).collect(),
    };
    for meta in store.list(&Path::default()).await? {
        let loc = meta.location.to_string();
        if NOT_SCANNED.iter().any(|p| loc.starts_with(&format!("{p}/"))) {
            continue;
        }
        report.files_scanned += 1;
        let bytes = store.get(&meta.location).await?;
        let count = if loc.ends_with(".parquet") {
            let unreadable = |e: parquet::errors::ParquetError| crate::Error::Scan(format!("{loc}: {e}"));
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(unreadable)?;
            let mut n = 0u64;
            for batch in reader {
                let batch = batch.map_err(|e| crate::Error::Scan(format!("{loc}: {e}")))?;
                n += set.batch_mentions(&batch).iter().filter(|&&m| m).count() as u64;
            }
            n
        } else {
            let text = String::from_utf8_lossy(&bytes);
            pseudonym_tokens(&text).filter(|t| set.contains(t)).count() as u64
        };
        if count > 0 {
            report.findings.push(Finding { location: loc, count });
        }
    }
    report.absent = report.findings.is_empty();
    Ok(report)
}
