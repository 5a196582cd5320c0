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

/// Edit distance where swapping two neighbouring letters counts as one edit
/// (optimal string alignment): `nmae` is one edit from `name`, two from `image`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(closest("smok", ["requires", "smoke", "crate"]), Some("smoke"));
        assert_eq!(closest("nmae", ["name", "score", "image", "topologies"]), Some("name"));
        assert_eq!(closest("chld", ["child", "secret"]), Some("child"));
        assert_eq!(closest("zzzzzz", ["name", "score"]), None);
        // Two letters are not a typo of a four-letter key.
        assert_eq!(closest("ab", ["name"]), None);
    }
}
