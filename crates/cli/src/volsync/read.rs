//! Reads a site's VolSync pairs: its rsync-TLS sources and destinations and the claims they
//! (or a role annotation) name, as [`Observed`]s keyed by (namespace, claim). A site without
//! VolSync's CRDs has none.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Client, ResourceExt};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_api::scope::namespaced_or_all;

use super::ROLE;
use super::observe::{Objects, observe};
use crate::error::Error;
use crate::verdict::Observed;

/// Lists `K`; a kind the site does not serve (no VolSync there) is an empty list.
async fn list_or_none<K>(client: &Client, namespace: Option<&str>) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespaced_or_all::<K>(client, namespace)
        .list(&Default::default())
        .await
    {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Every VolSync-protected claim of the site (in `namespace`, or all).
pub async fn pairs(
    client: &Client,
    namespace: Option<&str>,
) -> Result<BTreeMap<(String, String), Observed>, kube::Error> {
    let sources: Vec<ReplicationSource> = list_or_none(client, namespace).await?;
    let destinations: Vec<ReplicationDestination> = list_or_none(client, namespace).await?;
    let claims = namespaced_or_all::<PersistentVolumeClaim>(client, namespace)
        .list(&Default::default())
        .await?;
    let mut out = BTreeMap::new();
    for claim in &claims.items {
        let ns = claim.namespace().unwrap_or_default();
        let name = claim.name_any();
        let (source, destination) =
            lifeline_api::volsync_pair::pair_of(&ns, &name, &sources, &destinations);
        let objects = Objects {
            source,
            destination,
        };
        if objects.source.is_none()
            && objects.destination.is_none()
            && !claim.annotations().contains_key(ROLE)
        {
            continue;
        }
        if let Some(observed) = observe(claim, objects) {
            out.insert((ns, name), observed);
        }
    }
    Ok(out)
}

/// [`pairs`], with a failure named by its site.
pub async fn site_pairs(
    client: &Client,
    site: &str,
    namespace: Option<&str>,
) -> Result<BTreeMap<(String, String), Observed>, Error> {
    pairs(client, namespace).await.map_err(Error::api(site))
}
