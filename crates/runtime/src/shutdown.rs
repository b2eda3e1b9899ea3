//! The signal that ends a controller: SIGTERM from the kubelet or Ctrl-C.

/// Registers for SIGTERM and SIGINT now (so a signal arriving at once is not fatal) and
/// returns a future that resolves when one arrives.
pub fn signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown requested");
    })
}
