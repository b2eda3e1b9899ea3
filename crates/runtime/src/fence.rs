//! How long this process may still act as the leader: the fence on side effects outside the
//! API server (driver RPCs), which a Lease cannot stop by itself.
//!
//! A standby may take the Lease `leaseDuration` after it last saw it renewed. The leader's
//! renewal that succeeded was sent at `sent`, so the standby saw it no earlier, and the leader
//! may act until `sent + leaseDuration`. A driver call is given at most what is left of that
//! (less a margin), as its gRPC deadline, which the driver enforces; with nothing left it is
//! not made at all. Without leader election the fence is open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Kept back from the end of the lease: clock-rate differences and the time a call takes to
/// reach the driver.
pub const MARGIN: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Fence(Arc<Mutex<State>>);

#[derive(Clone, Copy, Debug)]
enum State {
    Open,
    Until(Option<Instant>),
}

impl Fence {
    /// No leader election: nothing to fence.
    pub fn open() -> Self {
        Self(Arc::new(Mutex::new(State::Open)))
    }

    /// Leader election: closed until the Lease is won.
    pub fn closed() -> Self {
        Self(Arc::new(Mutex::new(State::Until(None))))
    }

    /// How long an action started now may run; `None` when this process must not act.
    pub fn remaining(&self) -> Option<Duration> {
        match *self.0.lock().unwrap() {
            State::Open => Some(Duration::MAX),
            State::Until(None) => None,
            State::Until(Some(until)) => until
                .checked_duration_since(Instant::now())?
                .checked_sub(MARGIN)
                .filter(|d| !d.is_zero()),
        }
    }

    /// A renewal sent at `sent` succeeded: acting is safe until `sent + lease`.
    pub(crate) fn renewed(&self, sent: Instant, lease: Duration) {
        let mut state = self.0.lock().unwrap();
        if let State::Until(until) = &mut *state {
            *until = Some(sent + lease);
        }
    }

    /// Leadership is lost or handed back: no more actions.
    pub(crate) fn close(&self) {
        let mut state = self.0.lock().unwrap();
        if let State::Until(until) = &mut *state {
            *until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_fence_opens_for_the_lease_less_the_margin_and_closes_again() {
        let fence = Fence::closed();
        assert_eq!(fence.remaining(), None);
        let lease = Duration::from_secs(15);
        fence.renewed(Instant::now(), lease);
        let left = fence.remaining().unwrap();
        assert!(left <= lease - MARGIN && left > lease - MARGIN - Duration::from_secs(1));
        // A renewal sent long ago leaves nothing.
        fence.renewed(Instant::now() - lease, lease);
        assert_eq!(fence.remaining(), None);
        fence.renewed(Instant::now(), lease);
        fence.close();
        assert_eq!(fence.remaining(), None);
        assert_eq!(Fence::open().remaining(), Some(Duration::MAX));
    }
}
