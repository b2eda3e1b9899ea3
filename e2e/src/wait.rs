//! Waiting for conditions instead of sleeping: poll a check until it yields a value or the
//! timeout passes, then fail with what was being waited for.

use std::time::Duration;

use anyhow::bail;

/// How often checks are repeated.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
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
