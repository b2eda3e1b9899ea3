//! Waiting for conditions instead of sleeping: poll a check until it yields a value or the
//! timeout passes, then fail with what was being waited for.

use std::time::Duration;

use anyhow::bail;

/// How often checks are repeated.
pub const POLL: Duration = Duration::from_millis(100);

/// Whether long waits say what they wait for (the demo turns it on; tests stay quiet).
static PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How often a long wait prints a progress line when [`report_progress`] is on.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Makes every wait longer than [`PROGRESS_EVERY`] print what it is waiting for and for how long.
pub fn report_progress(on: bool) {
    PROGRESS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Polls `check` until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut next_report = started + PROGRESS_EVERY;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        if now >= next_report && PROGRESS.load(std::sync::atomic::Ordering::Relaxed) {
            println!(
                "    ... waiting for {what} ({}s of at most {}s)",
                (now - started).as_secs(),
                timeout.as_secs()
            );
            next_report = now + PROGRESS_EVERY;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls an object until `accept` says yes; returns it.
pub async fn for_object<K, F>(
    api: &kube::Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    accept: F,
) -> anyhow::Result<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    until(timeout, &format!("{name} {what}"), || async {
        api.get_opt(name).await.ok().flatten().filter(|o| accept(o))
    })
    .await
}

/// Polls until the object is gone.
pub async fn for_deletion<K>(
    api: &kube::Api<K>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    until(timeout, &format!("{name} to be deleted"), || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await
}
