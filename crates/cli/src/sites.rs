//! Sites: named kubeconfigs (`--site a=PATH[#CONTEXT]`, `LIFELINE_SITES`, or else one site per
//! context of the current kubeconfig), and clients for them.

use std::path::PathBuf;
use std::str::FromStr;

use http::HeaderValue;
use http::header::USER_AGENT;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::Error;

/// One site as the user named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteSpec {
    pub name: String,
    /// `None`: the current kubeconfig (`KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl FromStr for SiteSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self, Error> {
        let bad = |problem: &str| Error::SiteSpec {
            spec: spec.to_owned(),
            problem: problem.to_owned(),
        };
        let (name, rest) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("the site name must be letters, digits, '-' or '_'"));
        }
        let (path, context) = match rest.split_once('#') {
            Some((path, context)) => (path, Some(context)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad("no kubeconfig path"));
        }
        if context.is_some_and(str::is_empty) {
            return Err(bad("an empty context after '#'"));
        }
        Ok(SiteSpec {
            name: name.to_owned(),
            kubeconfig: Some(expand_home(path)),
            context: context.map(str::to_owned),
        })
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The sites: `--site` flags, else `LIFELINE_SITES` (comma-separated specs), else one site per
/// context of the current kubeconfig, named after the context.
pub fn resolve(flags: &[SiteSpec], env: Option<&str>) -> Result<Vec<SiteSpec>, Error> {
    let sites = if !flags.is_empty() {
        flags.to_vec()
    } else if let Some(env) = env.filter(|e| !e.trim().is_empty()) {
        env.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(SiteSpec::from_str)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let config = Kubeconfig::read().map_err(|source| Error::Kubeconfig {
            path: PathBuf::from("(KUBECONFIG or ~/.kube/config)"),
            source,
        })?;
        config
            .contexts
            .iter()
            .map(|c| SiteSpec {
                name: c.name.clone(),
                kubeconfig: None,
                context: Some(c.name.clone()),
            })
            .collect()
    };
    if sites.is_empty() {
        return Err(Error::NoSites);
    }
    for (i, site) in sites.iter().enumerate() {
        if sites[..i].iter().any(|s| s.name == site.name) {
            return Err(Error::DuplicateSite(site.name.clone()));
        }
    }
    Ok(sites)
}

/// The site named `name`.
pub fn named<'a>(sites: &'a [SiteSpec], name: &str) -> Result<&'a SiteSpec, Error> {
    sites.iter().find(|s| s.name == name).ok_or_else(|| {
        Error::UnknownSite(
            name.to_owned(),
            sites
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

/// A client for the site, naming the CLI in its `User-Agent` (audit logs tell who asked).
pub async fn connect(site: &SiteSpec) -> Result<Client, Error> {
    Ok(connect_with_address(site).await?.0)
}

/// A client for the site and the address of its API server. A kubeconfig that cannot be read
/// or used is a local error ([`Error::Local`]), never a site that is gone.
pub async fn connect_with_address(site: &SiteSpec) -> Result<(Client, String), Error> {
    let options = KubeConfigOptions {
        context: site.context.clone(),
        ..Default::default()
    };
    let where_ = match &site.kubeconfig {
        Some(path) => format!("kubeconfig {}", path.display()),
        None => "the current kubeconfig".to_owned(),
    };
    let local = |address: &str, cause: String| Error::Local {
        site: site.name.clone(),
        address: address.to_owned(),
        cause,
    };
    let mut config = match &site.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| local(&where_, format!("cannot read it: {e}")))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| local(&where_, format!("cannot use it: {e}")))?;
    let address = config.cluster_url.to_string();
    config.headers.push((
        USER_AGENT,
        HeaderValue::from_str(&format!("kubectl-lifeline/{}", env!("CARGO_PKG_VERSION")))
            .expect("ASCII"),
    ));
    let client = Client::try_from(config).map_err(|e| local(&address, crate::reach::cause(&e)))?;
    Ok((client, address))
}

/// `--from` and `--to` must name two different sites (the same one twice would consult one
/// site where two are needed, and could leave two primaries).
pub fn distinct(from: &str, to: &str) -> Result<(), Error> {
    if from == to {
        return Err(Error::Usage(format!(
            "--from and --to both name site {from}: a switch moves volumes between two different sites"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_specs_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(
            "a=/k/a.yaml#admin".parse::<SiteSpec>().unwrap(),
            SiteSpec {
                name: "a".into(),
                kubeconfig: Some("/k/a.yaml".into()),
                context: Some("admin".into())
            }
        );
        assert_eq!(
            "site-b=/k/b.yaml".parse::<SiteSpec>().unwrap().context,
            None
        );
        for bad in ["", "a", "=x", "a=", "a=x#", "a b=x", "é=x"] {
            let error = bad.parse::<SiteSpec>().unwrap_err().to_string();
            assert!(
                error.contains("NAME=KUBECONFIG[#CONTEXT]"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_switch_needs_two_different_sites() {
        assert!(distinct("a", "b").is_ok());
        let error = distinct("b", "b").unwrap_err();
        assert!(matches!(error, Error::Usage(_)));
        assert!(error.to_string().contains("both name site b"), "{error}");
    }

    #[tokio::test]
    async fn an_unreadable_kubeconfig_is_a_local_error_naming_it() {
        let site: SiteSpec = "a=/nonexistent/site-a.yaml".parse().unwrap();
        let Err(error) = connect(&site).await else {
            panic!("a kubeconfig that does not exist gave a client");
        };
        assert!(matches!(error, Error::Local { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("/nonexistent/site-a.yaml"), "{text}");
        assert!(text.contains("not a site that is gone"), "{text}");
    }

    #[test]
    fn flags_win_over_the_environment_and_names_are_unique() {
        let a: SiteSpec = "a=/a".parse().unwrap();
        assert_eq!(
            resolve(std::slice::from_ref(&a), Some("b=/b")).unwrap(),
            vec![a.clone()]
        );
        let env = resolve(&[], Some("a=/a, b=/b#ctx")).unwrap();
        assert_eq!(
            env.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(matches!(
            resolve(&[], Some("a=/a,a=/b")),
            Err(Error::DuplicateSite(_))
        ));
        assert!(resolve(&[], Some("a")).is_err());
        assert!(matches!(
            named(&env, "c"),
            Err(Error::UnknownSite(_, names)) if names == "a, b"
        ));
    }
}
