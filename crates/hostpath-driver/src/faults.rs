//! Fault injection for tests, all off by default: latency per RPC, failing the next N calls
//! of an RPC with a code, severing the link to the peer, and cutting a sync off mid-transfer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::Code;

#[derive(Default, Debug)]
pub struct Faults {
    /// RPC name (or "*") → added latency.
    latency: Mutex<HashMap<String, Duration>>,
    /// RPC name (or "*") → (code, calls left to fail).
    fail: Mutex<HashMap<String, (Code, u32)>>,
    severed: AtomicBool,
    /// Abort the next outgoing sync after this many bytes of file content.
    interrupt_after: Mutex<Option<u64>>,
}

impl Faults {
    pub fn set_latency(&self, method: &str, latency: Duration) {
        self.latency
            .lock()
            .unwrap()
            .insert(method.to_owned(), latency);
    }

    pub fn fail_next(&self, method: &str, code: Code, count: u32) {
        self.fail
            .lock()
            .unwrap()
            .insert(method.to_owned(), (code, count));
    }

    pub fn sever(&self, severed: bool) {
        self.severed.store(severed, Ordering::SeqCst);
    }

    pub fn link_severed(&self) -> bool {
        self.severed.load(Ordering::SeqCst)
    }

    pub fn interrupt_sync_after(&self, bytes: Option<u64>) {
        *self.interrupt_after.lock().unwrap() = bytes;
    }

    /// Takes the one-shot interruption, if set.
    pub fn take_interrupt(&self) -> Option<u64> {
        self.interrupt_after.lock().unwrap().take()
    }

    pub fn clear(&self) {
        self.latency.lock().unwrap().clear();
        self.fail.lock().unwrap().clear();
        self.sever(false);
        self.interrupt_sync_after(None);
    }

    /// Applies the faults configured for `method`: sleeps, then maybe fails.
    pub async fn before(&self, method: &str) -> Result<(), tonic::Status> {
        let latency = {
            let map = self.latency.lock().unwrap();
            map.get(method).or_else(|| map.get("*")).copied()
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let mut fail = self.fail.lock().unwrap();
        let key = if fail.contains_key(method) {
            method
        } else {
            "*"
        };
        if let Some((code, left)) = fail.get_mut(key) {
            let code = *code;
            *left -= 1;
            if *left == 0 {
                fail.remove(key);
            }
            return Err(tonic::Status::new(
                code,
                format!("injected fault for {method}"),
            ));
        }
        Ok(())
    }
}

/// Parses a gRPC code name as the contract writes it ("UNAVAILABLE").
pub fn parse_code(name: &str) -> Option<Code> {
    (0..=16)
        .map(Code::from_i32)
        .find(|c| lifeline_csi_client::code_name(*c).eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fail_next_fails_exactly_n_calls() {
        let faults = Faults::default();
        faults.fail_next("PromoteVolume", Code::Unavailable, 2);
        assert_eq!(
            faults.before("PromoteVolume").await.unwrap_err().code(),
            Code::Unavailable
        );
        assert!(faults.before("DemoteVolume").await.is_ok());
        assert!(faults.before("PromoteVolume").await.is_err());
        assert!(faults.before("PromoteVolume").await.is_ok());
    }

    #[test]
    fn parses_contract_code_names() {
        assert_eq!(
            parse_code("FAILED_PRECONDITION"),
            Some(Code::FailedPrecondition)
        );
        assert_eq!(parse_code("aborted"), Some(Code::Aborted));
        assert_eq!(parse_code("NOPE"), None);
    }
}
