//! The catalogue: per workspace, every ingested document and the hashes of its chunks.
//!
//! Ingest compares a document's new chunks against this record to count chunks added,
//! updated and removed, to skip documents that did not change, and to find documents that are
//! gone from the source (`--prune`).

use super::{key2, prefix1, StoreError};
use crate::channel::WorkspaceId;
use crate::document::SourceKind;
use serde::{Deserialize, Serialize};

/// What is known about one ingested document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocEntry {
    pub source_kind: SourceKind,
    pub title: String,
    pub product: Option<String>,
    /// The file or export it came from, for the summary and `--prune` messages.
    pub origin: String,
    /// `(chunk_id, content_hash)` in document order.
    pub chunks: Vec<(String, String)>,
    /// Unix seconds of the last ingest that changed it.
    pub ingested_at: i64,
}

#[derive(Clone)]
pub struct Catalogue {
    tree: sled::Tree,
}

impl Catalogue {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Catalogue { tree }
    }

    pub fn get(&self, workspace: &WorkspaceId, doc_id: &str) -> Result<Option<DocEntry>, StoreError> {
        match self.tree.get(key2(workspace.as_str(), doc_id))? {
            Some(bytes) => Ok(Some(decode(&bytes, doc_id)?)),
            None => Ok(None),
        }
    }

    pub fn put(&self, workspace: &WorkspaceId, doc_id: &str, entry: &DocEntry) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(entry)
            .map_err(|e| StoreError::Corrupt { what: format!("catalogue entry {doc_id}"), message: e.to_string() })?;
        self.tree.insert(key2(workspace.as_str(), doc_id), bytes)?;
        Ok(())
    }

    pub fn remove(&self, workspace: &WorkspaceId, doc_id: &str) -> Result<(), StoreError> {
        self.tree.remove(key2(workspace.as_str(), doc_id))?;
        Ok(())
    }

    /// Every document of a workspace, ordered by id.
    pub fn list(&self, workspace: &WorkspaceId) -> Result<Vec<(String, DocEntry)>, StoreError> {
        let prefix = prefix1(workspace.as_str());
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            let doc_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let entry = decode(&v, &doc_id)?;
            out.push((doc_id, entry));
        }
        Ok(out)
    }

    /// Every workspace that has at least one document.
    pub fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.tree.iter() {
            let (k, _) = item?;
            let rest = k.get(3..).unwrap_or_default();
            if let Some(end) = rest.iter().position(|b| *b == 0) {
                let ws = String::from_utf8_lossy(&rest[..end]).into_owned();
                if out.last() != Some(&ws) {
                    out.push(ws);
                }
            }
        }
        Ok(out)
    }
}

fn decode(bytes: &[u8], doc_id: &str) -> Result<DocEntry, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { what: format!("catalogue entry {doc_id}"), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn entry(title: &str) -> DocEntry {
        DocEntry {
            source_kind: SourceKind::Doc,
            title: title.into(),
            product: None,
            origin: "docs/a.md".into(),
            chunks: vec![("a#0".into(), "h".into())],
            ingested_at: 1,
        }
    }

    #[test]
    fn entries_are_kept_per_workspace() {
        let store = Store::temporary().unwrap();
        let cat = store.catalogue().unwrap();
        let a = WorkspaceId::new("acme").unwrap();
        let ab = WorkspaceId::new("acme-b").unwrap();
        cat.put(&a, "doc1", &entry("one")).unwrap();
        cat.put(&a, "doc2", &entry("two")).unwrap();
        cat.put(&ab, "doc1", &entry("other")).unwrap();
        assert_eq!(cat.list(&a).unwrap().len(), 2);
        assert_eq!(cat.list(&ab).unwrap().len(), 1);
        assert_eq!(cat.get(&ab, "doc1").unwrap().unwrap().title, "other");
        cat.remove(&a, "doc1").unwrap();
        assert_eq!(cat.list(&a).unwrap().len(), 1);
        assert_eq!(cat.workspaces().unwrap(), vec!["acme".to_string(), "acme-b".to_string()]);
    }
}
