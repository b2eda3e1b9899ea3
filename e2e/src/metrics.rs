//! Reading a controller's Prometheus `/metrics` (what a scrape sees), for tests and the demo.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` from an HTTP admin endpoint; the whole response, status line first.
pub async fn http_get(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("cannot reach {address}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// The text exposition of `address`'s `/metrics`.
pub async fn scrape(address: &str) -> anyhow::Result<String> {
    let response = http_get(address, "/metrics").await?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("{address}/metrics: no HTTP response");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "{address}/metrics: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_owned())
}

/// The value of the sample of `name` whose labels include all of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest.trim_end_matches('}'), value))
        })
        .find(|(have, _)| {
            labels
                .iter()
                .all(|(k, v)| have.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP x y\nup 1\nage{name=\"a\",role=\"primary\"} 2.5\nage{name=\"b\",role=\"secondary\"} 7\n";
        assert_eq!(sample(text, "up", &[]), Some(1.0));
        assert_eq!(sample(text, "age", &[("role", "secondary")]), Some(7.0));
        assert_eq!(
            sample(text, "age", &[("name", "a"), ("role", "primary")]),
            Some(2.5)
        );
        assert_eq!(sample(text, "age", &[("name", "c")]), None);
    }
}
