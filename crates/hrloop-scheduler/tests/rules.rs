//! Scheduling rules on a manual clock with a fake step runner: no sleeps, months in
//! milliseconds.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use hrloop_core::{Clock, ManualClock};
use hrloop_lake::Lake;
use hrloop_scheduler::{AttemptKind, Pipeline, Scheduler, Status, Step, StepContext, StepOutput, StepRunner};

/// Counts calls per step index; fails the step at `fail_index` the first `fails` times.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(String, usize)>>,
    fail_index: Option<usize>,
    fails: AtomicUsize,
}

impl StepRunner for Fake {
    async fn run(&self, ctx: &StepContext<'_>, step: &Step) -> Result<StepOutput, String> {
        let index = ctx.earlier.len();
        self.calls.lock().unwrap().push((format!("{}@{}", ctx.pipeline.name(), ctx.slot), index));
        if self.fail_index == Some(index)
            && self.fails.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return Err(format!("{} broke", step.kind()));
        }
        Ok(StepOutput::done(format!("did {}", step.kind())))
    }
}

fn pipeline(catch_up: &str) -> Pipeline {
    let text = format!(
        "format_version = 1\nname = \"daily\"\ncatch_up = \"{catch_up}\"\n[trigger]\ncron = \"0 3 * * *\"\n\
         [retry]\nmax_attempts = 3\nbackoff_minutes = 10\n\
         [[step]]\nkind = \"validate\"\n[[step]]\nkind = \"calibrate\"\nmodel = \"m\"\n"
    );
    Pipeline::parse(&text, Path::new("daily.toml")).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    lake: Lake,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    Fixture { _dir: dir, lake, clock: Arc::new(ManualClock::new(t("2026-03-01T12:00:00Z"))) }
}

impl Fixture {
    fn scheduler(&self, catch_up: &str, runner: Fake) -> Scheduler<Fake> {
        Scheduler::new(self.lake.clone(), vec![pipeline(catch_up)], runner, self.clock.clone() as Arc<dyn Clock>)
    }
}

#[tokio::test]
async fn one_run_per_slot_and_nothing_before_the_pipeline_was_first_seen() {
    let fx = fixture();
    let s = fx.scheduler("latest", Fake::default());
    assert!(s.tick().await.unwrap().is_empty(), "slots before registration are not missed slots");
    fx.clock.advance(Duration::days(1));
    let ran = s.tick().await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!((ran[0].slot, ran[0].status), (t("2026-03-02T03:00:00Z"), Status::Succeeded));
    assert_eq!(ran[0].steps.len(), 2);
    assert!(s.tick().await.unwrap().is_empty(), "a slot runs once");
    fx.clock.advance(Duration::hours(12));
    assert!(s.tick().await.unwrap().is_empty());
}

#[tokio::test]
async fn after_downtime_latest_runs_the_newest_slot_and_records_the_others_as_skipped() {
    let fx = fixture();
    let s = fx.scheduler("latest", Fake::default());
    s.tick().await.unwrap();
    fx.clock.advance(Duration::days(5));
    let made = s.tick().await.unwrap();
    let statuses: Vec<(String, Status)> = made.iter().map(|a| (a.slot.format("%d").to_string(), a.status)).collect();
    assert_eq!(
        statuses,
        [
            ("02".into(), Status::Skipped),
            ("03".into(), Status::Skipped),
            ("04".into(), Status::Skipped),
            ("05".into(), Status::Skipped),
            ("06".into(), Status::Succeeded)
        ]
    );
    assert_eq!(s.runner().calls.lock().unwrap().len(), 2, "only the newest slot ran its two steps");
}

#[tokio::test]
async fn after_downtime_all_runs_every_missed_slot_oldest_first_and_skip_runs_none() {
    let fx = fixture();
    let all = fx.scheduler("all", Fake::default());
    all.tick().await.unwrap();
    fx.clock.advance(Duration::days(3));
    let made = all.tick().await.unwrap();
    assert_eq!(made.iter().filter(|a| a.status == Status::Succeeded).count(), 3);
    assert!(made.windows(2).all(|w| w[0].slot < w[1].slot));

    let fx = fixture();
    let skip = fx.scheduler("skip", Fake::default());
    skip.tick().await.unwrap();
    fx.clock.advance(Duration::days(3));
    let made = skip.tick().await.unwrap();
    assert!(made.iter().all(|a| a.status == Status::Skipped), "{made:?}");
    // On time (within the lease of the slot): it runs.
    fx.clock.set(t("2026-03-05T03:10:00Z"));
    let made = skip.tick().await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].status, Status::Succeeded);
}

#[tokio::test]
async fn a_failed_run_is_retried_after_a_doubling_backoff_keeping_finished_steps() {
    let fx = fixture();
    let s = fx.scheduler("latest", Fake { fail_index: Some(1), fails: AtomicUsize::new(2), ..Default::default() });
    s.tick().await.unwrap();
    fx.clock.set(t("2026-03-02T03:00:00Z"));
    let first = s.tick().await.unwrap();
    assert_eq!(first[0].status, Status::Failed);
    assert!(first[0].error.as_deref().unwrap().contains("step 2 (calibrate): calibrate broke"));
    fx.clock.advance(Duration::minutes(9));
    assert!(s.tick().await.unwrap().is_empty(), "backoff: 10 minutes before the second attempt");
    fx.clock.advance(Duration::minutes(1));
    let second = s.tick().await.unwrap();
    assert_eq!((second[0].attempt, second[0].kind, second[0].status), (2, AttemptKind::Retried, Status::Failed));
    fx.clock.advance(Duration::minutes(19));
    assert!(s.tick().await.unwrap().is_empty(), "then 20 minutes");
    fx.clock.advance(Duration::minutes(1));
    let third = s.tick().await.unwrap();
    assert_eq!((third[0].attempt, third[0].status), (3, Status::Succeeded));
    // Step 1 ran once: retries keep finished steps.
    let calls = s.runner().calls.lock().unwrap().clone();
    assert_eq!(calls.iter().filter(|(_, i)| *i == 0).count(), 1, "{calls:?}");
    assert_eq!(calls.iter().filter(|(_, i)| *i == 1).count(), 3);
}

#[tokio::test]
async fn a_slot_that_keeps_failing_stops_after_max_attempts_and_status_says_why() {
    let fx = fixture();
    let s = fx.scheduler("latest", Fake { fail_index: Some(0), fails: AtomicUsize::new(100), ..Default::default() });
    s.tick().await.unwrap();
    fx.clock.set(t("2026-03-02T03:00:00Z"));
    for _ in 0..10 {
        s.tick().await.unwrap();
        fx.clock.advance(Duration::hours(1));
    }
    let attempts = s.runs().attempts(Some("daily")).await.unwrap();
    let slot2: Vec<_> = attempts.iter().filter(|a| a.slot == t("2026-03-02T03:00:00Z")).collect();
    assert_eq!(slot2.len(), 3, "max_attempts = 3");
    let status = s.status().await.unwrap();
    assert_eq!(status[0].last_status, Some(Status::Failed));
    assert!(status[0].last_error.as_deref().unwrap().contains("validate broke"));
    assert_eq!(status[0].next_slot, Some(t("2026-03-03T03:00:00Z")));
}

#[tokio::test]
async fn a_run_whose_process_died_is_resumed_after_its_lease_from_the_next_step() {
    let fx = fixture();
    let s = fx.scheduler("latest", Fake::default());
    s.tick().await.unwrap();
    // A process claimed the slot, finished step 1, then died (its record says running).
    let slot = t("2026-03-02T03:00:00Z");
    let dead = hrloop_scheduler::Attempt {
        pipeline: "daily".into(),
        slot,
        attempt: 1,
        kind: AttemptKind::Scheduled,
        owner: "dead-host:1".into(),
        claimed_at: slot,
        lease_until: slot + Duration::minutes(30),
        status: Status::Running,
        steps: vec![hrloop_scheduler::runs::StepRecord {
            index: 0,
            kind: "validate".into(),
            started_at: slot,
            finished_at: slot,
            ok: true,
            summary: "did validate".into(),
            outputs: serde_json::Value::Null,
            stop: false,
        }],
        error: None,
        finished_at: None,
    };
    assert!(s.runs().claim(&dead).await.unwrap());
    fx.clock.set(slot + Duration::minutes(10));
    assert!(s.tick().await.unwrap().is_empty(), "its lease still holds");
    fx.clock.set(slot + Duration::minutes(31));
    let resumed = s.tick().await.unwrap();
    assert_eq!((resumed[0].attempt, resumed[0].kind, resumed[0].status), (2, AttemptKind::Resumed, Status::Succeeded));
    assert_eq!(s.runner().calls.lock().unwrap().iter().map(|(_, i)| *i).collect::<Vec<_>>(), vec![1]);
    // The dead owner cannot write any more: fencing.
    let err = s.runs().update(&dead).await.unwrap_err().to_string();
    assert!(err.contains("lease lost"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_ticking_at_once_run_each_slot_once() {
    let fx = fixture();
    let a = fx.scheduler("all", Fake::default());
    let b = fx.scheduler("all", Fake::default());
    a.tick().await.unwrap();
    for _ in 0..5 {
        fx.clock.advance(Duration::days(2));
        let (x, y) = tokio::join!(a.tick(), b.tick());
        x.unwrap();
        y.unwrap();
    }
    let attempts = a.runs().attempts(Some("daily")).await.unwrap();
    let mut slots: Vec<_> = attempts.iter().map(|x| x.slot).collect();
    let n = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), n, "one attempt per slot");
    assert_eq!(n, 10);
    let ran = a.runner().calls.lock().unwrap().len() + b.runner().calls.lock().unwrap().len();
    assert_eq!(ran, 20, "two steps per slot, each run by exactly one scheduler");
}
