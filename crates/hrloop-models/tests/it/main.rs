//! The registry against a real local store: immutable versions, alias compare-and-swap,
//! history and "what was champion at time T".

use chrono::{DateTime, Duration, TimeZone, Utc};
use hrloop_lake::Store;
use hrloop_models::card::ModelCard;
use hrloop_models::{Alias, ChangeRequest, Error, ModelSpec, Registry};

fn card() -> ModelCard {
    let spec: ModelSpec = toml::from_str(include_str!("../../../../models/success12m_logistic.toml")).unwrap();
    ModelCard::new(spec, "test", t0())
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn req(reason: &str, hours: i64) -> ChangeRequest {
    ChangeRequest {
        actor: "oncall".into(),
        reason: reason.into(),
        evidence: serde_json::json!({}),
        at: t0() + Duration::hours(hours),
    }
}

async fn registry_with_versions(n: usize) -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new(Store::open(dir.path().to_str().unwrap()).unwrap());
    for i in 0..n {
        let v = reg.register("m", format!("artifact {i}").into_bytes().into(), card()).await.unwrap();
        assert_eq!(v, format!("v{}", i + 1));
    }
    (dir, reg)
}

#[tokio::test]
async fn versions_are_immutable_and_numbered() {
    let (dir, reg) = registry_with_versions(3).await;
    assert_eq!(reg.versions("m").await.unwrap(), vec!["v1", "v2", "v3"]);
    assert_eq!(reg.card("m", "v2").await.unwrap().version, "v2");
    assert_eq!(&reg.artifact("m", "v2").await.unwrap()[..], b"artifact 1");
    // Nothing can overwrite a version's files.
    let store = Store::open(dir.path().to_str().unwrap()).unwrap();
    let path = object_store::path::Path::from("registry/m/versions/v2/model.json");
    assert!(!store.put_new(&path, "tampered".into()).await.unwrap());
    assert_eq!(&reg.artifact("m", "v2").await.unwrap()[..], b"artifact 1");
    assert!(matches!(reg.card("m", "v9").await, Err(Error::UnknownVersion(_))));
}

#[tokio::test]
async fn promote_rollback_and_history_at_a_time() {
    let (_dir, reg) = registry_with_versions(3).await;
    reg.promote("m", "v1", Alias::Champion, req("first", 1)).await.unwrap();
    reg.promote("m", "v2", Alias::Champion, req("better AUC", 2)).await.unwrap();
    reg.promote("m", "v3", Alias::Challenger, req("try it on 20 %", 3)).await.unwrap();
    reg.promote("m", "v3", Alias::Champion, req("won the A/B test", 4)).await.unwrap();
    let s = reg.state("m").await.unwrap();
    assert_eq!(
        (s.champion.as_deref(), s.challenger.as_deref()),
        (Some("v3"), None),
        "promoting the challenger clears it"
    );
    let e = reg.rollback("m", None, req("override rate jumped", 5)).await.unwrap();
    assert_eq!((e.from_version.as_deref(), e.to_version.as_deref()), (Some("v3"), Some("v2")));
    let e = reg.rollback("m", None, req("still bad", 6)).await.unwrap();
    assert_eq!(e.to_version.as_deref(), Some("v1"), "a second rollback steps further back, not forward");
    assert!(reg.rollback("m", None, req("again", 7)).await.is_err(), "nothing before v1");
    reg.rollback("m", Some("v3"), req("v3 was fine after all", 8)).await.unwrap();
    // What was champion then?
    let at = |h: i64| t0() + Duration::hours(h) + Duration::minutes(30);
    let champion_at = |h| {
        let reg = reg.clone();
        async move { reg.state_at("m", at(h)).await.unwrap().champion }
    };
    assert_eq!(champion_at(0).await, None);
    assert_eq!(champion_at(1).await.as_deref(), Some("v1"));
    assert_eq!(champion_at(3).await.as_deref(), Some("v2"));
    assert_eq!(champion_at(5).await.as_deref(), Some("v2"));
    assert_eq!(champion_at(6).await.as_deref(), Some("v1"));
    assert_eq!(champion_at(8).await.as_deref(), Some("v3"));
    let events = reg.events("m").await.unwrap();
    // Seven changes; the refused rollback left no event.
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    assert_eq!(events[4].reason, "override rate jumped");
}

#[tokio::test]
async fn a_concurrent_promote_and_rollback_cannot_both_win() {
    for round in 0..10 {
        let (dir, reg) = registry_with_versions(3).await;
        reg.promote("m", "v1", Alias::Champion, req("first", 1)).await.unwrap();
        reg.promote("m", "v2", Alias::Champion, req("second", 2)).await.unwrap();
        // Two operators, two processes, the same view of the aliases.
        let other = Registry::new(Store::open(dir.path().to_str().unwrap()).unwrap());
        let seen = reg.state("m").await.unwrap();
        let (a, b) = tokio::join!(
            reg.promote_from("m", &seen, "v3", Alias::Champion, req("promote v3", 3)),
            other.rollback_from("m", &seen, None, req("roll back to v1", 3)),
        );
        assert!(a.is_ok() != b.is_ok(), "round {round}: exactly one wins: {a:?} / {b:?}");
        let loser = if a.is_err() { a.unwrap_err() } else { b.unwrap_err() };
        assert!(matches!(loser, Error::Conflict(_)), "{loser}");
        let events = reg.events("m").await.unwrap();
        assert_eq!(events.len(), 3);
        let champion = reg.state("m").await.unwrap().champion;
        assert!(champion.as_deref() == Some("v3") || champion.as_deref() == Some("v1"));
    }
}

#[tokio::test]
async fn many_writers_lose_no_event() {
    let (dir, reg) = registry_with_versions(2).await;
    reg.promote("m", "v1", Alias::Champion, req("first", 1)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let r = Registry::new(Store::open(dir.path().to_str().unwrap()).unwrap());
        tasks.push(tokio::spawn(async move {
            // Retry on conflict, as a careful operator would.
            loop {
                let s = r.state("m").await.unwrap();
                let target = if s.champion.as_deref() == Some("v1") { "v2" } else { "v1" };
                match r.promote_from("m", &s, target, Alias::Champion, req(&format!("writer {i}"), 2)).await {
                    Ok(e) => return e.seq,
                    Err(Error::Conflict(_)) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut seqs: Vec<u64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=9).collect::<Vec<u64>>(), "every writer got its own event");
    assert_eq!(reg.events("m").await.unwrap().len(), 9);
}
