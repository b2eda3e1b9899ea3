//! Why a site gave no answer. It is **gone** only when its API server cannot be reached at the
//! network level: the connection refused, timed out or reset, no route to it, its name not
//! resolved. Anything else — an unreadable kubeconfig, a TLS failure, a 401 or 403, an RBAC
//! denial, any other answer — means this side cannot ask it: a local error to fix, never a
//! reason for `failover` to promote elsewhere.

use std::io::ErrorKind;

/// What a failed request says about the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Not reachable at the network level.
    Gone,
    /// Reached or not even tried: the problem is on this side.
    Local,
}

/// io error kinds that mean the network did not get the request to the API server.
const NETWORK: &[ErrorKind] = &[
    ErrorKind::ConnectionRefused,
    ErrorKind::ConnectionReset,
    ErrorKind::ConnectionAborted,
    ErrorKind::NotConnected,
    ErrorKind::TimedOut,
    ErrorKind::HostUnreachable,
    ErrorKind::NetworkUnreachable,
    ErrorKind::AddrNotAvailable,
];

/// Words of errors that carry no io error but mean the same: a name not resolved, a connect
/// or request that timed out.
const NETWORK_WORDS: &[&str] = &[
    "failed to lookup address",
    "dns error",
    "name or service not known",
    "deadline has elapsed",
    "timed out",
];

/// Gone or local, from the error and its chain of causes. An answer from the API server (any
/// status) is never "gone".
pub fn classify(error: &kube::Error) -> Reach {
    if matches!(error, kube::Error::Api(_)) {
        return Reach::Local;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if NETWORK.contains(&io.kind()) {
                return Reach::Gone;
            }
            // An io error that is none of those (a TLS failure wraps its cause in one): local.
            if io.get_ref().is_some() && !is_network_text(&io.to_string()) {
                return Reach::Local;
            }
        }
        if is_network_text(&e.to_string()) {
            return Reach::Gone;
        }
        next = e.source();
    }
    Reach::Local
}

fn is_network_text(text: &str) -> bool {
    let text = text.to_lowercase();
    NETWORK_WORDS.iter().any(|w| text.contains(w))
}

/// One line for a person: each distinct message of the error's chain, outermost first, the
/// API server's own message for an answer (never a debug dump of its Status).
pub fn cause(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return format!("{} ({} {})", status.message, status.code, status.reason);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        // kube's own wrappers repeat their cause or name a Rust type: keep what says more.
        let text = text
            .trim_start_matches("ServiceError: ")
            .trim_start_matches("HyperError: ")
            .trim()
            .to_owned();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(error: std::io::Error) -> kube::Error {
        kube::Error::Service(Box::new(error))
    }

    #[test]
    fn only_a_network_failure_is_a_site_gone() {
        for kind in NETWORK {
            assert_eq!(
                classify(&service(std::io::Error::new(*kind, "x"))),
                Reach::Gone,
                "{kind:?}"
            );
        }
        let dns = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert_eq!(classify(&service(dns)), Reach::Gone);
        let tls = std::io::Error::new(
            ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(classify(&service(tls)), Reach::Local);
        for code in [401, 403, 404, 500, 503] {
            let answer = kube::Error::Api(
                kube::core::Status::failure("no", "Forbidden")
                    .with_code(code)
                    .boxed(),
            );
            assert_eq!(classify(&answer), Reach::Local, "{code}");
        }
        assert_eq!(
            classify(&kube::Error::LinesCodecMaxLineLengthExceeded),
            Reach::Local
        );
    }

    #[test]
    fn causes_are_one_line_without_repeats_or_debug_dumps() {
        let answer = kube::Error::Api(
            kube::core::Status::failure(
                "volumereplications is forbidden: User \"x\" cannot list",
                "Forbidden",
            )
            .with_code(403)
            .boxed(),
        );
        let text = cause(&answer);
        assert_eq!(
            text,
            "volumereplications is forbidden: User \"x\" cannot list (403 Forbidden)"
        );
        assert!(!text.contains("ErrorResponse"));
        let refused = service(std::io::Error::new(
            ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(cause(&refused), "Connection refused (os error 111)");
    }
}
