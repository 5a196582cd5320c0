//! Did-you-mean hints for misspelt keys.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(c, name), c))
        .min()
        .filter(|(d, _)| *d <= 2 && *d < name.chars().count())
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(closest("smok", ["requires", "smoke", "crate"]), Some("smoke"));
        assert_eq!(closest("nmae", ["name", "score", "topologies"]), Some("name"));
        assert_eq!(closest("chld", ["child", "secret"]), Some("child"));
        assert_eq!(closest("zzzzzz", ["name", "score"]), None);
        // Two letters are not a typo of a four-letter key.
        assert_eq!(closest("ab", ["name"]), None);
    }
}
