//! Test hooks: one hidden set of flags, each also read from the environment variable the
//! suites set. Unset in production, where none changes anything.

use std::sync::OnceLock;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct TestHooks {
    /// Aborts the process right after a successful write at this point (`secret-write`: the
    /// Secret, before any Event or status write), to reproduce a crash between two writes.
    #[arg(long = "test-crash-after", hide = true, env = "DMK_CRASH_AFTER")]
    pub crash_after: Option<String>,
    /// Skews this replica's wall clock for leader election (leader.rs), to prove skew changes
    /// nothing.
    #[arg(
        long = "test-clock-skew-seconds",
        hide = true,
        env = "DMK_TEST_CLOCK_SKEW_SECONDS",
        allow_hyphen_values = true
    )]
    pub clock_skew_seconds: Option<i64>,
    /// The webhook certificate's lifetime in seconds instead of `--webhook-certificate-days`,
    /// so that a test sees it rotate.
    #[arg(
        long = "test-webhook-certificate-seconds",
        hide = true,
        env = "DMK_TEST_WEBHOOK_CERTIFICATE_SECONDS"
    )]
    pub webhook_certificate_seconds: Option<u64>,
}

static HOOKS: OnceLock<TestHooks> = OnceLock::new();

/// Called once, at start-up.
pub fn install(hooks: TestHooks) {
    let _ = HOOKS.set(hooks);
}

fn installed() -> Option<&'static TestHooks> {
    HOOKS.get()
}

/// Aborts here when the `--test-crash-after` hook names `point`.
pub fn crash_point(point: &str) {
    if installed().and_then(|h| h.crash_after.as_deref()) == Some(point) {
        eprintln!("test hook: crash after {point}: aborting");
        std::process::abort();
    }
}

/// The `--test-clock-skew-seconds` hook: zero unless set.
pub fn clock_skew() -> k8s_openapi::jiff::SignedDuration {
    let secs = installed().and_then(|h| h.clock_skew_seconds).unwrap_or(0);
    k8s_openapi::jiff::SignedDuration::from_secs(secs)
}
