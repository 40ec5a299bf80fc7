//! `hrloop serve`: the ranking API.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use hrloop_serve::{Mode, ServeConfig};

use crate::context::Global;

#[derive(Debug, clap::Args)]
#[command(after_help = "Endpoints: POST /v1/rank (recruiter), GET /v1/models (any role),\n\
    POST /v1/models/NAME/promote|rollback (on_call), /healthz, /readyz, /metrics (no token).\n\
    Create tokens with `hrloop tokens add NAME --role ROLE`. Every ranked candidate is logged\n\
    durably (write-ahead log, fsync) before the response, then moved to lake/decisions.\n\n\
    Example:\n  \
    curl -s -H \"Authorization: Bearer $TOKEN\" localhost:8080/v1/rank -d '{\"requisition\": \\\n    \
    {\"id\": \"REQ-1\", \"job_family\": \"sales\"}, \"candidates\": [{\"id\": \"C-1\", \"features\": \\\n    \
    {\"interview_score\": 4.5, \"assessment_score\": 80}}]}'")]
#[group(skip)]
pub struct Args {
    /// Address to listen on. Loopback unless you mean it.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Registry model whose champion (and challenger) are served.
    #[arg(long, default_value = "success12m_logistic")]
    pub model: String,
    /// `ab`: a share of requisitions goes to the challenger; `shadow`: the champion serves all
    /// and the challenger scores the same candidates off the request path.
    #[arg(long, default_value = "ab", value_parser = ["ab", "shadow"])]
    pub mode: String,
    /// Share of requisitions on the challenger (A/B mode).
    #[arg(long, default_value_t = 0.20)]
    pub challenger_share: f64,
    /// Candidates below this confidence go to a human.
    #[arg(long, default_value_t = 0.70)]
    pub low_confidence: f64,
    /// Share of decisions sampled for human review regardless of confidence.
    #[arg(long, default_value_t = 0.10)]
    pub audit_rate: f64,
    /// Most candidates in one request.
    #[arg(long, default_value_t = 500)]
    pub max_candidates: usize,
    /// How often the KPIs at /metrics are recomputed from the store.
    #[arg(long, default_value_t = 60)]
    pub kpi_refresh_seconds: u64,
    /// Logged decisions move from the write-ahead log into lake/decisions in the server's quiet
    /// moments, and at the latest this many seconds after their segment closed (segments close
    /// every 5 s). 0 moves them at once, whatever the load: fresher lake, less throughput.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lake_max_delay_seconds: u64,
    /// Pipeline files, for the pipeline metrics at /metrics.
    #[arg(long = "pipelines-dir", default_value = "pipelines", value_name = "DIR")]
    pub pipelines_dir: std::path::PathBuf,
    /// Most HTTP connections held at once. At the limit a new connection takes the place of the
    /// one idle longest (idle for a second or more); if every connection is busy it is answered
    /// 503. Lowered, with a note, to fit the open-file limit (which is raised to its hard limit
    /// at start).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Close a connection that has not sent a whole request head this many seconds after the
    /// server began waiting for one: after connecting, or after its previous response (so
    /// this is also the idle timeout of kept-alive connections).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub header_timeout_seconds: f64,
    /// Answer 408 and close when a request body has not arrived whole this many seconds after
    /// its head.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub body_timeout_seconds: f64,
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    for (name, v) in [
        ("--challenger-share", args.challenger_share),
        ("--low-confidence", args.low_confidence),
        ("--audit-rate", args.audit_rate),
    ] {
        anyhow::ensure!((0.0..=1.0).contains(&v), "{name} must be between 0 and 1");
    }
    for (name, v) in [
        ("--header-timeout-seconds", args.header_timeout_seconds),
        ("--body-timeout-seconds", args.body_timeout_seconds),
    ] {
        anyhow::ensure!(v > 0.0 && v <= 3600.0, "{name} must be above 0 and at most 3600");
    }
    anyhow::ensure!(args.max_connections > 0, "--max-connections must be at least 1");
    let lake = global.lake()?;
    let pseudo = global.pseudonymiser(&lake)?;
    // Idle sockets must not starve the decision log of file descriptors: the soft limit goes up
    // to the hard one, and connections are capped well below it.
    let (limit_before, limit) = hrloop_serve::server::raise_file_limit();
    let max_connections = hrloop_serve::server::connection_cap(args.max_connections, limit);
    let show = |l: Option<u64>| l.map_or("unlimited".to_string(), |n| n.to_string());
    eprintln!(
        "hrloop: open-file limit {} (raised from {}); at most {max_connections} connections{}",
        show(limit),
        show(limit_before),
        if max_connections < args.max_connections { " (--max-connections lowered to fit the limit)" } else { "" }
    );
    let config = ServeConfig {
        model: args.model,
        mode: if args.mode == "shadow" { Mode::Shadow } else { Mode::Ab },
        challenger_share: args.challenger_share,
        low_confidence: args.low_confidence,
        audit_rate: args.audit_rate,
        max_candidates: args.max_candidates,
        kpi_refresh_ms: args.kpi_refresh_seconds.max(1) * 1000,
        lake_max_delay_ms: args.lake_max_delay_seconds * 1000,
        pipelines_dir: Some(args.pipelines_dir),
        max_connections,
        header_timeout_ms: (args.header_timeout_seconds * 1000.0) as u64,
        body_timeout_ms: (args.body_timeout_seconds * 1000.0) as u64,
        state_dir: global.state_dir.clone(),
        ..ServeConfig::default()
    };
    let state = hrloop_serve::start(config, lake, pseudo, global.clock()?).await.map_err(|e| anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let ready = state
        .live
        .snapshot()
        .champion
        .as_ref()
        .map_or("no champion yet (readyz will say 503)".to_string(), |c| c.id().to_string());
    eprintln!("hrloop serving on http://{} — {}", listener.local_addr()?, ready);
    hrloop_serve::server::serve(listener, state.clone(), shutdown_signal()).await?;
    state.log.flush().await.map_err(|e| anyhow!(e))?;
    state.audit.flush().await;
    eprintln!("hrloop: stopped; decisions flushed to the lake");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM (what systemd, Docker and Kubernetes send to stop a service).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
