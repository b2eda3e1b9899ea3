//! Comparing Kubernetes storage quantities ("10Gi", "500M", "1073741824").

/// Bytes of a quantity, if it parses.
pub fn bytes(quantity: &str) -> Option<u128> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let number: u128 = number.parse().ok()?;
    let factor: u128 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// The larger of two quantities (as written), ignoring ones that do not parse.
pub fn larger(a: Option<&str>, b: Option<&str>) -> Option<String> {
    match (
        a.and_then(|a| bytes(a).map(|n| (n, a))),
        b.and_then(|b| bytes(b).map(|n| (n, b))),
    ) {
        (Some((x, a)), Some((y, b))) => Some(if y > x { b } else { a }.to_owned()),
        (Some((_, a)), None) => Some(a.to_owned()),
        (None, Some((_, b))) => Some(b.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_by_bytes() {
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(
            larger(Some("1Gi"), Some("1073741825")).as_deref(),
            Some("1073741825")
        );
        assert_eq!(
            larger(Some("10Gi"), Some("1073741824")).as_deref(),
            Some("10Gi")
        );
        assert_eq!(larger(None, Some("5Mi")).as_deref(), Some("5Mi"));
        assert_eq!(bytes("1.5Gi"), None);
    }
}
