//! `make bench`: how close the operator comes to what the API server allows.
//!
//! In one run, against one API server, with the same concurrency: N key sets are created and
//! rotated once with the operator doing the work, then the same N are created and rotated by a
//! bare client doing only the writes an operator must (Secret, status, Event). The ratio of the
//! two times is the figure that matters; absolute times depend on the machine. Alongside: API
//! requests per key set by verb and resource (kube-apiserver's `apiserver_request_total`),
//! reconciles per key set (the operator's metrics), the operator's peak RSS, and every request
//! it makes at rest. A table on the terminal, JSON under `target/bench/`.

mod apiserver;
mod bare;
mod handover;
mod latency;
mod report;
mod workload;

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use dmk_control_plane::{
    ControlPlane, Options,
    kit::{
        cpu,
        operator::{Launch, Operator},
    },
};

use crate::{
    apiserver::Requests,
    report::{Phase, Results},
};

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark the operator against a bare client on the same API server")]
pub struct Args {
    /// Key sets to create (and rotate once).
    #[arg(long, default_value_t = 5000)]
    sets: usize,
    /// Workers: the operator's --concurrency, and the bare client's and the creator's.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The bare client's workers when they should differ from --concurrency (to find the
    /// concurrency that is fastest for each side).
    #[arg(long)]
    bare_workers: Option<usize>,
    /// Seconds at rest, after settling, over which every request is counted.
    #[arg(long, default_value_t = 60)]
    rest_seconds: u64,
    /// The operator's periodic re-check, short so the rest window contains resyncs.
    #[arg(long, default_value_t = 20)]
    resync_seconds: u64,
    /// The operator binary (default: next to this one).
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Fail (exit 1) when the operator exceeds its request budget: any request at rest besides
    /// the Lease, more than 4 writes or 0.1 reads per new key set, more than 3.1 writes or 1.1
    /// reads per rotation. `make test` passes it.
    #[arg(long)]
    check: bool,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Time to act, after the rest window: regenerates sent one at a time (at most 4/5 of the
    /// key sets)...
    #[arg(long, default_value_t = 200)]
    latency_singles: usize,
    /// ... with this pause after each one is done, in milliseconds ...
    #[arg(long, default_value_t = 250)]
    latency_gap_ms: u64,
    /// ... then this many sent at once (at most the key sets left).
    #[arg(long, default_value_t = 50)]
    latency_burst: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

async fn run(args: Args) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // As installed by Helm: the CRD and the chart's admission policies (the finalizer policy
    // spares the operator one write per new key set).
    let opts = Options {
        crd_dir: Some(root.join("crds")),
        chart_dir: Some(root.join("charts/dataminer-keys-operator")),
        ..Default::default()
    };
    // $KUBECONFIG when it answers, else a local control plane of our own.
    let cp = match std::env::var_os("KUBECONFIG") {
        Some(_) => match ControlPlane::existing(&opts).await {
            Ok(cp) => cp,
            Err(e) => {
                eprintln!(
                    "[bench] KUBECONFIG does not answer ({e}); starting a local control plane"
                );
                ControlPlane::start(&opts)
                    .await
                    .map_err(|e| e.to_string())?
            }
        },
        None => {
            eprintln!("[bench] starting a local control plane");
            ControlPlane::start(&opts)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let kubeconfig = match cp.kubeconfig_path() {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(std::env::var_os("KUBECONFIG").unwrap_or_default()),
    };
    let client = cp.client().await.map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(args.timeout);

    // Warm-up, not timed: the first writes of a kind pay for connections, caches and CEL
    // programs that every later one reuses.
    let ns_warm = cp
        .namespace("bench-warm-up")
        .await
        .map_err(|e| e.to_string())?;
    let control_plane = cp.pids();
    bare::run(
        &client,
        &ns_warm,
        20.min(args.sets),
        args.concurrency,
        &control_plane,
        timeout,
    )
    .await?;
    let finalizer_policy =
        workload::finalizer_at_admission(&client, &ns_warm, Duration::from_secs(30)).await?;
    if !finalizer_policy {
        eprintln!("[bench] no finalizer policy in force: the operator adds each finalizer itself");
    }

    // What the API server and its controllers request by themselves in a quiet window as long
    // as the rest window: subtracted from the operator's figures at rest.
    eprintln!(
        "[bench] {} s of background, before any operator runs",
        args.rest_seconds
    );
    let quiet = Requests::scrape(&client).await?;
    tokio::time::sleep(Duration::from_secs(args.rest_seconds)).await;
    let background = Requests::scrape(&client).await?.since(&quiet);

    let ns_bare = cp
        .namespace("bench-bare")
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("[bench] bare client: {} key sets in {ns_bare}", args.sets);
    let bare_workers = args.bare_workers.unwrap_or(args.concurrency);
    let bare = bare::run(
        &client,
        &ns_bare,
        args.sets,
        bare_workers,
        &control_plane,
        timeout,
    )
    .await?;

    let ns_op = cp
        .namespace("bench-operator")
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("[bench] operator: {} key sets in {ns_op}", args.sets);
    let op = start_operator(op_binary(&args)?, &kubeconfig, &ns_op, &args).await?;
    let names = workload::names(args.sets);

    let before = Requests::scrape(&client).await?;
    let cpu_start = op.cpu_seconds().ok_or(EXITED)?;
    let cp_start = cpu::total(&control_plane);
    let mut own = Requests::default();
    let create = workload::run_and_wait(
        &client,
        &ns_op,
        &names,
        args.concurrency,
        workload::Phase::Create,
        &mut own,
        timeout,
    )
    .await?;
    let after_create = Requests::scrape(&client).await?;
    let reconciles_create = op.reconciles().await.ok_or(EXITED)?;
    let cpu_create = op.cpu_seconds().ok_or(EXITED)?;
    let cp_create = cpu::total(&control_plane);

    let mut own_rotate = Requests::default();
    let rotate = workload::run_and_wait(
        &client,
        &ns_op,
        &names,
        args.concurrency,
        workload::Phase::Rotate,
        &mut own_rotate,
        timeout,
    )
    .await?;
    let after_rotate = Requests::scrape(&client).await?;
    let reconciles_rotate = op.reconciles().await.ok_or(EXITED)? - reconciles_create;
    let cpu_rotate = op.cpu_seconds().ok_or(EXITED)?;
    let cp_rotate = cpu::total(&control_plane);

    // Settle (the operator's own status writes come back as watch events), then count.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rest_start = Requests::scrape(&client).await?;
    let cpu_rest_start = op.cpu_seconds().ok_or(EXITED)?;
    tokio::time::sleep(Duration::from_secs(args.rest_seconds)).await;
    let rest_end = Requests::scrape(&client).await?;
    let cpu_rest = op.cpu_seconds().ok_or(EXITED)? - cpu_rest_start;
    let reconciles_rest = op.reconciles().await.ok_or(EXITED)?;
    // The memory figure covers creation, rotation and rest, as before the latency phase existed.
    let peak_rss = op.peak_rss_kib().ok_or(EXITED)?;

    let singles = args.latency_singles.min(args.sets * 4 / 5);
    let burst = args.latency_burst.min(args.sets - singles);
    eprintln!("[bench] time to act: {singles} single regenerates, then {burst} at once");
    let latency = latency::measure(
        &client,
        &ns_op,
        &names,
        singles,
        burst,
        Duration::from_millis(args.latency_gap_ms),
        timeout,
    )
    .await?;

    let mut op = op;
    eprintln!("[bench] restart: SIGTERM, a regenerate while down, start again");
    let restart =
        handover::restart(&client, &ns_op, &mut op, args.sets, &names[0], timeout).await?;
    eprintln!("[bench] failover: the leader SIGKILLed, then SIGTERMed, a standby waiting");
    let binary = op_binary(&args)?;
    let mut standbys = 0;
    let mut new_standby = || {
        standbys += 1;
        launch_operator(
            &binary,
            &kubeconfig,
            &ns_op,
            &args,
            &format!("standby-{standbys}"),
        )
    };
    let (failover, mut op) =
        handover::failover(&client, &ns_op, op, &mut new_standby, &names[0], timeout).await?;
    op.stop();

    let (create_requests, create_others) = after_create.since(&before).minus(&own).split_operator();
    let (rotate_requests, rotate_others) = after_rotate
        .since(&after_create)
        .minus(&own_rotate)
        .split_operator();
    let (rest_requests, rest_others) = rest_end
        .since(&rest_start)
        .minus(&background)
        .split_operator();
    let results = Results {
        machine: report::machine(),
        sets: args.sets,
        concurrency: args.concurrency,
        bare_workers,
        finalizer_policy,
        create: Phase {
            operator_seconds: create.as_secs_f64(),
            bare_seconds: bare.create.as_secs_f64(),
            requests: create_requests,
            others: create_others,
            reconciles: reconciles_create,
            operator_cpu_seconds: cpu_create - cpu_start,
            control_plane_cpu_seconds: cp_create - cp_start,
            bare_control_plane_cpu_seconds: bare.control_plane_cpu[0],
        },
        rotate: Phase {
            operator_seconds: rotate.as_secs_f64(),
            bare_seconds: bare.rotate.as_secs_f64(),
            requests: rotate_requests,
            others: rotate_others,
            reconciles: reconciles_rotate,
            operator_cpu_seconds: cpu_rotate - cpu_create,
            control_plane_cpu_seconds: cp_rotate - cp_create,
            bare_control_plane_cpu_seconds: bare.control_plane_cpu[1],
        },
        rest_seconds: args.rest_seconds,
        resync_seconds: args.resync_seconds,
        rest_requests,
        rest_others,
        background,
        rest_reconciles: reconciles_rest - reconciles_create - reconciles_rotate,
        rest_operator_cpu_seconds: cpu_rest,
        peak_rss_kib: peak_rss,
        bare_requests_per_set: bare.requests,
        latency,
        restart,
        failover,
    };
    print!("{}", report::table(&results));
    let path = report::write_json(&results, &args.out)?;
    eprintln!("[bench] wrote {}", path.display());
    if args.check {
        report::check(&results)?;
        eprintln!("[bench] within the request budget");
    }
    Ok(())
}

const EXITED: &str = "the operator exited or stopped answering (see operator.log)";

fn op_binary(args: &Args) -> Result<PathBuf> {
    match &args.operator {
        Some(p) => Ok(p.clone()),
        None => Ok(std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("dataminer-keys-operator")),
    }
}

/// The operator under test, through the test kit's process handle: against the same API
/// server, watching only the bench's namespace, its metrics on a loopback port, ready (watches
/// synced, Lease taken) before the clock starts.
async fn start_operator(
    binary: PathBuf,
    kubeconfig: &std::path::Path,
    ns: &str,
    args: &Args,
) -> Result<Operator> {
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let op = launch_operator(&binary, kubeconfig, ns, args, "operator");
    op.wait_ready(60).await?;
    Ok(op)
}

/// One operator process (a new identity: its pid), its metrics on a free loopback port, its log
/// in `<out>/<name>.log`.
fn launch_operator(
    binary: &std::path::Path,
    kubeconfig: &std::path::Path,
    ns: &str,
    args: &Args,
    name: &str,
) -> Operator {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port");
    Operator::launch(Launch {
        binary: binary.to_path_buf(),
        log: Some(args.out.join(format!("{name}.log"))),
        args: vec![
            format!("--metrics-address=127.0.0.1:{port}"),
            format!("--concurrency={}", args.concurrency),
            format!("--resync-seconds={}", args.resync_seconds),
            "--log-level=warn".into(),
        ],
        kubeconfig: Some(kubeconfig.to_path_buf()),
        ..Launch::new(ns)
    })
}
