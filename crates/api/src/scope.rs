//! Where a reader looks: the one namespace a flag names (`--namespace`, `--watch-namespace`,
//! `--protected-namespace`), else every namespace.

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource};

/// `K` in `namespace` when given, else in all namespaces.
pub fn namespaced_or_all<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
