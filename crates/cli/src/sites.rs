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

/// Where the sites come from when no `--site` names them: kubectl's `--kubeconfig` and
/// `--context` flags.
#[derive(Clone, Debug, Default)]
pub struct FromKubeconfig {
    pub kubeconfig: Option<PathBuf>,
    pub contexts: Vec<String>,
}

/// The sites: `--site` flags, else `LIFELINE_SITES` (comma-separated specs), else one site per
/// context of the kubeconfig (`--kubeconfig`, else the current one; only the `--context`s
/// named, if any), named after the context.
pub fn resolve(
    flags: &[SiteSpec],
    env: Option<&str>,
    from: &FromKubeconfig,
) -> Result<Vec<SiteSpec>, Error> {
    let explicit = from.kubeconfig.is_some() || !from.contexts.is_empty();
    let sites = if !flags.is_empty() {
        flags.to_vec()
    } else if let Some(env) = env.filter(|e| !e.trim().is_empty() && !explicit) {
        env.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(SiteSpec::from_str)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let config = match &from.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?,
            None => Kubeconfig::read().map_err(|source| Error::Kubeconfig {
                path: PathBuf::from("(KUBECONFIG or ~/.kube/config)"),
                source,
            })?,
        };
        let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        if let Some(missing) = from.contexts.iter().find(|c| !known.contains(&c.as_str())) {
            return Err(Error::Usage(format!(
                "--context {missing}: no such context in the kubeconfig (it has: {}); or name sites with --site NAME=KUBECONFIG#CONTEXT",
                known.join(", ")
            )));
        }
        known
            .iter()
            .filter(|c| from.contexts.is_empty() || from.contexts.iter().any(|w| w == *c))
            .map(|c| SiteSpec {
                name: (*c).to_owned(),
                kubeconfig: from.kubeconfig.clone(),
                context: Some((*c).to_owned()),
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

/// The namespace the site's kubeconfig context sets, as kubectl would default to it.
pub fn context_namespace(site: &SiteSpec) -> Option<String> {
    let config = match &site.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    let context = site.context.clone().or(config.current_context.clone())?;
    config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
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
        let none = FromKubeconfig::default();
        let a: SiteSpec = "a=/a".parse().unwrap();
        assert_eq!(
            resolve(std::slice::from_ref(&a), Some("b=/b"), &none).unwrap(),
            vec![a.clone()]
        );
        let env = resolve(&[], Some("a=/a, b=/b#ctx"), &none).unwrap();
        assert_eq!(
            env.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(matches!(
            resolve(&[], Some("a=/a,a=/b"), &none),
            Err(Error::DuplicateSite(_))
        ));
        assert!(resolve(&[], Some("a"), &none).is_err());
        assert!(matches!(
            named(&env, "c"),
            Err(Error::UnknownSite(_, names)) if names == "a, b"
        ));
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: east\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: east\n  context: {cluster: c, user: u, namespace: shop}\n- name: west\n  context: {cluster: c, user: u}\n";

    /// kubectl's way: `--kubeconfig` and `--context` pick the sites (named after the
    /// contexts), and `-n` defaults to the context's namespace.
    #[test]
    fn kubeconfig_and_context_flags_name_the_sites_and_the_context_namespace_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let from = |contexts: &[&str]| FromKubeconfig {
            kubeconfig: Some(path.clone()),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
        };
        let both = resolve(&[], Some("x=/ignored"), &from(&[])).unwrap();
        assert_eq!(
            both.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["east", "west"],
            "explicit kubectl flags win over LIFELINE_SITES"
        );
        let west = resolve(&[], None, &from(&["west"])).unwrap();
        assert_eq!(west.len(), 1);
        let e = resolve(&[], None, &from(&["north"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("north") && e.contains("east, west") && e.contains("--site"),
            "{e}"
        );
        assert_eq!(context_namespace(&both[0]).as_deref(), Some("shop"));
        assert_eq!(context_namespace(&west[0]), None);
    }
}
