//! Small helpers: timestamps, identifiers, random suffixes, private files, programs on `PATH`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as Kubernetes writes it: RFC 3339, UTC, whole seconds.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(secs)
}

/// The current time with microseconds, as a Lease's `renewTime` is written.
pub(crate) fn now_rfc3339_micros() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = rfc3339(now.as_secs());
    format!("{}.{:06}Z", whole.trim_end_matches('Z'), now.subsec_micros())
}

/// Writes a file only its owner may read (keys, tokens, kubeconfigs).
pub(crate) fn write_private(path: &std::path::Path, content: &[u8]) -> Result<(), crate::StartError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(content))
        .map_err(|e| crate::StartError::io(format!("write {}", path.display()), e))
}

/// A program on `PATH` (or in the system directories, which a test's `PATH` may lack).
pub(crate) fn find_program(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into(), "/bin".into()])
        .map(|d: std::path::PathBuf| d.join(name))
        .find(|p| p.is_file())
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts a day count since 1970-01-01 into a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random 64-bit number (splitmix64 over the clock and a counter): unique enough for
/// identifiers in one test process, with no dependency on a random number crate.
pub(crate) fn random_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = nanos
        .wrapping_add(count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters from the safe alphabet, as in `generateName` suffixes.
pub(crate) fn random_suffix(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut bits = random_u64();
    for i in 0..n {
        if i % 8 == 7 {
            bits = random_u64();
        }
        out.push(SAFE[(bits % SAFE.len() as u64) as usize] as char);
        bits /= SAFE.len() as u64;
    }
    out
}

/// A stable short hash of a JSON value in the safe alphabet (like `pod-template-hash`).
pub(crate) fn stable_hash(value: &serde_json::Value, n: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest.iter().take(n).map(|b| SAFE[*b as usize % SAFE.len()] as char).collect()
}

/// A JSON merge patch that turns `old` into `new`: every key of `old` that `new` lacks is
/// removed (null), objects are patched key by key, anything else is replaced.
pub(crate) fn merge_patch(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                patch.insert(k.clone(), merge_patch(o.get(k).unwrap_or(&serde_json::Value::Null), v));
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), serde_json::Value::Null);
            }
            serde_json::Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_260_645), "2025-11-27T16:24:05Z");
    }

    #[test]
    fn a_merge_patch_removes_what_the_new_value_lacks() {
        let old = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        let new = serde_json::json!({"b": {"c": 2}, "e": [3]});
        assert_eq!(
            merge_patch(&old, &new),
            serde_json::json!({"a": null, "b": {"c": 2, "d": null}, "e": [3]})
        );
    }

    #[test]
    fn suffixes_use_the_safe_alphabet() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| SAFE.contains(&b)));
    }
}
