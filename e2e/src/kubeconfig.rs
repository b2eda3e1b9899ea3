//! Writing a kubeconfig for a test cluster, so child processes (controllers, kubectl) reach
//! the same API as the test.

use std::path::Path;

/// How a client authenticates to a test cluster.
pub enum Auth<'a> {
    None,
    Token(&'a str),
}

/// Writes a one-context kubeconfig to `path`.
pub fn write(
    path: &Path,
    server: &str,
    ca_file: Option<&Path>,
    auth: Auth<'_>,
) -> std::io::Result<()> {
    let mut cluster = format!("    server: {server}\n");
    if let Some(ca) = ca_file {
        cluster.push_str(&format!("    certificate-authority: {}\n", ca.display()));
    }
    let user = match auth {
        Auth::None => "  user: {}\n".to_owned(),
        Auth::Token(token) => format!("  user:\n    token: {token}\n"),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n{cluster}users:\n- name: test\n{user}contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n"
    );
    std::fs::write(path, text)
}

/// A kube client for a kubeconfig file.
pub async fn client(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}
