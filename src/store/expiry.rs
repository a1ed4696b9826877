//! Time indexes of records that are kept for a while and then purged.
//!
//! One index tree per kind of record: `v1/` + the record's time (Unix ms, big-endian) + the
//! record's key → empty. A range scan up to a cut-off finds exactly the records old enough to
//! purge, without reading the others, so a purge costs what it removes.

use super::StoreError;
use sled::IVec;

const SCHEMA: &[u8] = b"v1/";

/// Index entries read per purge step.
pub const PURGE_CHUNK: usize = 256;

fn millis_be(at_ms: i64) -> [u8; 8] {
    u64::try_from(at_ms).unwrap_or(0).to_be_bytes()
}

/// The index entry of the record `target` written at `at_ms`.
pub fn entry(at_ms: i64, target: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(SCHEMA.len() + 8 + target.len());
    key.extend_from_slice(SCHEMA);
    key.extend_from_slice(&millis_be(at_ms));
    key.extend_from_slice(target);
    key
}

/// The time and target key of an index entry.
pub fn parse(key: &[u8]) -> Option<(i64, &[u8])> {
    let rest = key.strip_prefix(SCHEMA)?;
    if rest.len() < 8 {
        return None;
    }
    let (time, target) = rest.split_at(8);
    let at = u64::from_be_bytes(time.try_into().ok()?);
    Some((i64::try_from(at).unwrap_or(i64::MAX), target))
}

/// Up to [`PURGE_CHUNK`] entries of `index` for records written before `cut_off_ms`, oldest
/// first.
pub fn due(index: &sled::Tree, cut_off_ms: i64) -> Result<Vec<IVec>, StoreError> {
    let mut end = SCHEMA.to_vec();
    end.extend_from_slice(&millis_be(cut_off_ms));
    Ok(index
        .range(SCHEMA.to_vec()..end)
        .take(PURGE_CHUNK)
        .map(|item| item.map(|(key, _)| key))
        .collect::<Result<Vec<IVec>, _>>()?)
}

/// `now_ms` minus `retention`: records written before it are purged.
pub fn cut_off(now_ms: i64, retention: std::time::Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_time_and_parse_back() {
        let early = entry(1_000, b"zzz");
        let late = entry(2_000, b"aaa");
        assert!(early < late);
        assert_eq!(parse(&early), Some((1_000, &b"zzz"[..])));
        let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("t").unwrap();
        tree.insert(&early, b"").unwrap();
        tree.insert(&late, b"").unwrap();
        assert_eq!(due(&tree, 1_000).unwrap().len(), 0);
        assert_eq!(due(&tree, 1_001).unwrap(), vec![IVec::from(early)]);
        assert_eq!(due(&tree, 5_000).unwrap().len(), 2);
    }
}
