//! What can go wrong, each with what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--site {spec:?}: {problem}; write NAME=KUBECONFIG[#CONTEXT], e.g. a=~/.kube/site-a.yaml#admin"
    )]
    SiteSpec { spec: String, problem: String },
    #[error(
        "no sites: give --site NAME=KUBECONFIG[#CONTEXT] twice, set LIFELINE_SITES, or use a kubeconfig with a context per site"
    )]
    NoSites,
    #[error("site {0:?} is named twice")]
    DuplicateSite(String),
    #[error("there is no site {0:?}; the sites are {1}")]
    UnknownSite(String, String),
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    /// A request failed after the site answered before (a mid-command failure).
    #[error("site {site}: {}", crate::reach::cause(.source))]
    Api { site: String, source: kube::Error },
    /// This side cannot ask the site (kubeconfig, credentials, certificates, RBAC): exit 2,
    /// before anything is read or written. Never taken for a site that is gone.
    #[error(
        "site {site} ({address}): {cause}. That is a problem on this side (the kubeconfig, its credentials or certificates, or RBAC), not a site that is gone: fix it and run the command again"
    )]
    Local {
        site: String,
        address: String,
        cause: String,
    },
    /// The command line names something impossible (the same site twice, say): exit 2.
    #[error("{0}")]
    Usage(String),
    /// A check refused to go on; the message says why and what would make it pass.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub fn api(site: &str) -> impl FnOnce(kube::Error) -> Self + '_ {
        move |source| Error::Api {
            site: site.to_owned(),
            source,
        }
    }
}
