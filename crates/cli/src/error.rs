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
    #[error("site {site}: {source}")]
    Connect { site: String, source: kube::Error },
    #[error("site {site}: {source}")]
    Api { site: String, source: kube::Error },
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
