//! What goes over the wire to Meilisearch and how its answers become `Hit`s.
//!
//! Everything here is pure (no I/O), so it is tested against answers recorded from a real
//! Meilisearch server (`tests/fixtures/meili/`).
//!
//! Scores are mapped onto the embedded backend's meaning:
//! - `keyword_score`: Meilisearch's `_rankingScore` for the keyword search (in [0, 1]);
//! - `semantic_score`: cosine similarity. A semantic search scores `(1 + cos) / 2`, which is
//!   turned back into the cosine; a keyword hit's cosine is computed from its stored vector;
//! - `keyword_norm` and `fused_score`: the same min-max fusion as the embedded backend.

use super::MeiliError;
use crate::document::SourceKind;
use crate::retrieval::fusion::{fuse, Evidence};
use crate::retrieval::{Filters, Hit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Document fields frontdesk reads back from a hit (vectors excepted).
pub const RETRIEVED_FIELDS: &[&str] =
    &["id", "chunk_id", "doc_id", "source_kind", "title", "url", "product", "updated_at", "heading_path", "text"];

/// One chunk as stored in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeiliDoc {
    /// Derived from workspace and chunk id (Meilisearch ids allow only `[A-Za-z0-9_-]`).
    pub id: String,
    pub workspace_id: String,
    pub chunk_id: String,
    pub doc_id: String,
    pub source_kind: String,
    pub title: String,
    pub url: Option<String>,
    pub product: Option<String>,
    pub updated_at: Option<i64>,
    pub heading_path: Vec<String>,
    /// The heading path as one searchable string.
    pub headings: String,
    pub text: String,
    #[serde(rename = "_vectors", default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
}

/// The document id of a chunk of a workspace.
pub fn document_id(workspace: &str, chunk_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((workspace.len() as u64).to_le_bytes());
    h.update(workspace.as_bytes());
    h.update(chunk_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl MeiliDoc {
    pub fn new(workspace: &str, chunk: &crate::document::Chunk, vector: Option<(&str, Vec<f32>)>) -> Self {
        MeiliDoc {
            id: document_id(workspace, &chunk.chunk_id),
            workspace_id: workspace.to_string(),
            chunk_id: chunk.chunk_id.clone(),
            doc_id: chunk.doc_id.clone(),
            source_kind: chunk.source_kind.as_str().to_string(),
            title: chunk.title.clone(),
            url: chunk.url.clone(),
            product: chunk.product.clone(),
            updated_at: chunk.updated_at,
            headings: chunk.heading_path.join(" > "),
            heading_path: chunk.heading_path.clone(),
            text: chunk.text.clone(),
            vectors: vector.map(|(name, v)| BTreeMap::from([(name.to_string(), v)])),
        }
    }
}

/// A value inside a filter expression, quoted and escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The filter expression of a search: the workspace, then the request's own filters.
pub fn filter_expression(workspace: &str, filters: &Filters) -> String {
    let mut parts = vec![format!("workspace_id = {}", quote(workspace))];
    if !filters.products.is_empty() {
        let list: Vec<String> = filters.products.iter().map(|p| quote(p)).collect();
        parts.push(format!("product IN [{}]", list.join(", ")));
    }
    if let Some(kind) = filters.source_kind {
        parts.push(format!("source_kind = {}", quote(kind.as_str())));
    }
    if let Some(after) = filters.updated_after {
        parts.push(format!("updated_at >= {after}"));
    }
    if let Some(before) = filters.updated_before {
        parts.push(format!("updated_at <= {before}"));
    }
    parts.join(" AND ")
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hybrid {
    pub embedder: String,
    pub semantic_ratio: f32,
}

/// The body of one search (also one entry of a multi-search).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_uid: Option<String>,
    pub q: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<Hybrid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits_per_page: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching_strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes_to_retrieve: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub show_ranking_score: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub show_ranking_score_details: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retrieve_vectors: bool,
}

/// One hit as Meilisearch returns it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RawHit {
    pub id: String,
    pub chunk_id: String,
    pub doc_id: String,
    pub source_kind: String,
    pub title: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub heading_path: Vec<String>,
    pub text: String,
    #[serde(rename = "_rankingScore", default)]
    pub ranking_score: Option<f64>,
    #[serde(rename = "_rankingScoreDetails", default)]
    pub ranking_details: Option<Value>,
    #[serde(rename = "_vectors", default)]
    pub vectors: Option<Value>,
}

impl RawHit {
    /// The stored vector of embedder `name`, in either shape Meilisearch returns
    /// (`[..]`, `[[..]]`, or `{"embeddings": [[..]], "regenerate": ..}`).
    pub fn vector(&self, name: &str) -> Option<Vec<f32>> {
        let v = self.vectors.as_ref()?.get(name)?;
        let v = v.get("embeddings").unwrap_or(v);
        let arr = v.as_array()?;
        let arr = match arr.first() {
            Some(Value::Array(inner)) => inner,
            _ => arr,
        };
        arr.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()
    }

    /// The similarity Meilisearch reports for a hit found by the vector search, if it was.
    pub fn vector_similarity(&self) -> Option<f64> {
        let d = self.ranking_details.as_ref()?;
        d.get("vectorSort")?.get("similarity")?.as_f64()
    }
}

/// A search answer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub hits: Vec<RawHit>,
    #[serde(default)]
    pub semantic_hit_count: Option<usize>,
    #[serde(default)]
    pub estimated_total_hits: Option<usize>,
    #[serde(default)]
    pub total_hits: Option<usize>,
    #[serde(default)]
    pub processing_time_ms: Option<u64>,
}

/// A multi-search answer.
#[derive(Debug, Clone, Deserialize)]
pub struct MultiResponse {
    pub results: Vec<SearchResponse>,
}

/// A count-only answer (`hitsPerPage: 0`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountResponse {
    #[serde(default)]
    pub hits: Vec<DetailHit>,
    #[serde(default)]
    pub total_hits: Option<u64>,
    #[serde(default)]
    pub estimated_total_hits: Option<u64>,
}

impl CountResponse {
    pub fn total(&self) -> u64 {
        self.total_hits.or(self.estimated_total_hits).unwrap_or(0)
    }

    /// Chunks that contain the term without a typo. Meilisearch forgives typos, so "lisbon"
    /// also finds "listen"; counted that way, a word the knowledge never mentions would look
    /// known. The ranking details of the returned hits say which matched only with a typo
    /// (they rank last); when not every hit was returned, those seen are taken off the total.
    pub fn exact_total(&self) -> u64 {
        let total = self.total();
        let typos = self.hits.iter().filter(|h| h.typos() > 0).count() as u64;
        total.saturating_sub(typos)
    }
}

/// A hit of a counting query: only its ranking details.
#[derive(Debug, Clone, Deserialize)]
pub struct DetailHit {
    #[serde(rename = "_rankingScoreDetails", default)]
    pub details: Option<Value>,
}

impl DetailHit {
    pub fn typos(&self) -> u64 {
        self.details
            .as_ref()
            .and_then(|d| d.get("typo"))
            .and_then(|t| t.get("typoCount"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MultiCount {
    pub results: Vec<CountResponse>,
}

/// Cosine from Meilisearch's semantic score `(1 + cos) / 2`.
pub fn cosine_from_score(score: f64) -> f32 {
    (2.0 * score - 1.0).clamp(-1.0, 1.0) as f32
}

pub fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na <= 0.0 || nb <= 0.0 {
        return Some(0.0);
    }
    Some(dot / (na.sqrt() * nb.sqrt()))
}

/// Checks that a pure-semantic search really was one. When the vector side of a hybrid search
/// cannot run (an embedder that Meilisearch cannot reach, earlier releases given no vector),
/// Meilisearch can answer with keyword hits and `semanticHitCount: 0` instead of an error.
/// (v1.50 refuses a `userProvided` search without a vector with `vector_embedding_error`.)
pub fn check_semantic(resp: &SearchResponse) -> Result<(), MeiliError> {
    let semantic = resp.semantic_hit_count.unwrap_or(0);
    if semantic < resp.hits.len() {
        return Err(MeiliError::SemanticFallback { hits: resp.hits.len(), semantic });
    }
    Ok(())
}

fn to_hit(raw: RawHit, keyword: f32, keyword_norm: f32, semantic: f32, fused: f32) -> Result<Hit, MeiliError> {
    let source_kind = SourceKind::parse(&raw.source_kind)
        .ok_or_else(|| MeiliError::Decode(format!("document {} has source_kind {:?}", raw.id, raw.source_kind)))?;
    Ok(Hit {
        doc_id: raw.doc_id,
        chunk_id: raw.chunk_id,
        title: raw.title,
        url: raw.url,
        heading_path: raw.heading_path,
        text: raw.text,
        source_kind,
        product: raw.product,
        updated_at: raw.updated_at,
        keyword_score: keyword,
        keyword_norm,
        semantic_score: semantic,
        fused_score: fused,
    })
}

/// A hit of a term query: only its id and score.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct IdHit {
    pub id: String,
    #[serde(rename = "_rankingScore", default)]
    pub ranking_score: Option<f64>,
}

/// The answer of a term query (or of a count).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdsResponse {
    pub hits: Vec<IdHit>,
    #[serde(default)]
    pub estimated_total_hits: Option<u64>,
    #[serde(default)]
    pub total_hits: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MultiIds {
    pub results: Vec<IdsResponse>,
}

/// Keyword scores from one query per term: each chunk gets the sum over the terms it matches
/// of the term's inverse document frequency times Meilisearch's ranking score for that term
/// (which rewards exact over typo'd and prefix matches and title over text). A chunk that
/// matches several rare terms of the question ranks first, as with BM25, and a chunk missing
/// one word of a long question is still found. `chunks` is the number of chunks searched.
/// Best first, ties in first-seen order.
pub fn term_scores(chunks: u64, terms: &[IdsResponse]) -> Vec<(String, f32)> {
    let n = chunks as f64;
    let mut order: Vec<String> = Vec::new();
    let mut score: HashMap<String, f64> = HashMap::new();
    for list in terms {
        let df = list.total_hits.or(list.estimated_total_hits).unwrap_or(list.hits.len() as u64) as f64;
        let idf = (1.0 + (n - df + 0.5).max(0.0) / (df + 0.5)).ln();
        for h in &list.hits {
            let s = idf * h.ranking_score.unwrap_or(0.0);
            match score.get_mut(&h.id) {
                Some(v) => *v += s,
                None => {
                    order.push(h.id.clone());
                    score.insert(h.id.clone(), s);
                }
            }
        }
    }
    let mut out: Vec<(String, f32)> = order
        .into_iter()
        .map(|id| (score.get(&id).copied().unwrap_or(0.0) as f32, id))
        .map(|(s, id)| (id, s))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Fuses keyword candidates (each with its keyword score and, if known, its cosine) and a
/// semantic list into at most `limit` hits, as the embedded backend does.
pub fn fuse_scored(
    keyword: Vec<(RawHit, f32, Option<f32>)>,
    semantic: Vec<RawHit>,
    ratio: f32,
    limit: usize,
) -> Result<Vec<Hit>, MeiliError> {
    let mut order: Vec<RawHit> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let sem_scores: HashMap<String, f32> =
        semantic.iter().filter_map(|h| h.ranking_score.map(|s| (h.id.clone(), cosine_from_score(s)))).collect();
    for (h, kw, cos) in keyword {
        if position.contains_key(&h.id) {
            continue;
        }
        let sem = cos.or_else(|| sem_scores.get(&h.id).copied());
        position.insert(h.id.clone(), order.len());
        evidence.push(Evidence { keyword: Some(kw), semantic: sem });
        order.push(h);
    }
    for h in semantic {
        if position.contains_key(&h.id) {
            continue;
        }
        position.insert(h.id.clone(), order.len());
        evidence.push(Evidence { keyword: None, semantic: h.ranking_score.map(cosine_from_score) });
        order.push(h);
    }
    let fused = fuse(&evidence, ratio);
    let mut ranked: Vec<usize> = (0..order.len()).collect();
    ranked.sort_by(|&a, &b| fused[b].score.total_cmp(&fused[a].score).then(a.cmp(&b)));
    ranked.truncate(limit);
    let mut slots: Vec<Option<RawHit>> = order.into_iter().map(Some).collect();
    let mut hits = Vec::with_capacity(ranked.len());
    for i in ranked {
        let Some(raw) = slots[i].take() else { continue };
        let (ev, f) = (evidence[i], fused[i]);
        hits.push(to_hit(raw, ev.keyword.unwrap_or(0.0), f.keyword_norm, ev.semantic.unwrap_or(0.0), f.score)?);
    }
    Ok(hits)
}

/// Fuses a keyword list and a semantic list (either may be empty) into at most `limit` hits,
/// as the embedded backend does. `query_vector` and `embedder` let keyword hits that the
/// semantic list missed get their cosine from their stored vectors.
pub fn fuse_lists(
    keyword: Vec<RawHit>,
    semantic: Vec<RawHit>,
    query_vector: Option<&[f32]>,
    embedder: &str,
    ratio: f32,
    limit: usize,
) -> Result<Vec<Hit>, MeiliError> {
    let keyword = keyword
        .into_iter()
        .map(|h| {
            let cos = query_vector.and_then(|q| h.vector(embedder).and_then(|v| cosine(q, &v)));
            let kw = h.ranking_score.unwrap_or(0.0) as f32;
            (h, kw, cos)
        })
        .collect();
    fuse_scored(keyword, semantic, ratio, limit)
}

/// Maps the answer of Meilisearch's own hybrid search: its order and `_rankingScore` are kept
/// as the fused ranking; the per-list evidence is read from the ranking details (a hit with
/// `vectorSort` details came from the vector search) and from stored vectors when retrieved.
/// With `single_mode` (keyword only or vector only) the fused score is relative to the best hit,
/// as the embedded backend's is, so the best hit scores 1.
pub fn native_hits(
    resp: SearchResponse,
    query_vector: Option<&[f32]>,
    embedder: &str,
    single_mode: bool,
) -> Result<Vec<Hit>, MeiliError> {
    let best = resp.hits.iter().filter_map(|h| h.ranking_score).fold(0.0f64, f64::max);
    let best_kw = resp
        .hits
        .iter()
        .filter(|h| h.vector_similarity().is_none())
        .filter_map(|h| h.ranking_score)
        .fold(0.0f64, f64::max);
    let mut hits = Vec::with_capacity(resp.hits.len());
    for raw in resp.hits {
        let score = raw.ranking_score.unwrap_or(0.0);
        let from_vector = raw.vector_similarity();
        let keyword = if from_vector.is_some() { 0.0 } else { score as f32 };
        let keyword_norm = if best_kw > 0.0 { (f64::from(keyword) / best_kw) as f32 } else { 0.0 };
        let semantic = query_vector
            .and_then(|q| raw.vector(embedder).and_then(|v| cosine(q, &v)))
            .or(from_vector.map(cosine_from_score))
            .unwrap_or(0.0);
        let fused = if single_mode && best > 0.0 { score / best } else { score };
        hits.push(to_hit(raw, keyword, keyword_norm.clamp(0.0, 1.0), semantic, fused.clamp(0.0, 1.0) as f32)?);
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, score: f64) -> RawHit {
        RawHit {
            id: id.into(),
            chunk_id: format!("{id}#0"),
            doc_id: id.into(),
            source_kind: "doc".into(),
            title: id.into(),
            url: None,
            product: None,
            updated_at: None,
            heading_path: vec![],
            text: "t".into(),
            ranking_score: Some(score),
            ranking_details: None,
            vectors: None,
        }
    }

    #[test]
    fn ids_are_valid_meilisearch_ids_and_differ_by_workspace() {
        let a = document_id("ws-a", "billing/refunds#0");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, document_id("ws-b", "billing/refunds#0"));
        assert_ne!(document_id("a", "b\u{0}c"), document_id("a\u{0}b", "c"));
    }

    #[test]
    fn filters_are_quoted_and_combined() {
        let f = Filters {
            products: vec!["api".into(), "O'Brien \\ co".into()],
            source_kind: Some(SourceKind::Ticket),
            updated_after: Some(10),
            updated_before: Some(20),
        };
        assert_eq!(
            filter_expression("T1", &f),
            r"workspace_id = 'T1' AND product IN ['api', 'O\'Brien \\ co'] AND source_kind = 'ticket' AND updated_at >= 10 AND updated_at <= 20"
        );
        assert_eq!(filter_expression("w'x", &Filters::default()), r"workspace_id = 'w\'x'");
    }

    #[test]
    fn search_body_leaves_out_what_is_not_set() {
        let body = SearchBody { q: "refund".into(), limit: Some(5), show_ranking_score: true, ..Default::default() };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"q": "refund", "limit": 5, "showRankingScore": true})
        );
    }

    #[test]
    fn fusion_credits_hits_found_by_both_searches() {
        // b is second in both lists; a leads keyword only, c leads semantic only.
        let kw = vec![raw("a", 0.95), raw("b", 0.90)];
        let sem = vec![raw("c", 0.92), raw("b", 0.91), raw("a", 0.60)];
        let hits = fuse_lists(kw, sem, None, "default", 0.5, 10).unwrap();
        assert_eq!(hits[0].doc_id, "b", "{hits:?}");
        assert_eq!(hits.len(), 3);
        let b = &hits[0];
        assert!((b.semantic_score - 0.82).abs() < 1e-5, "{}", b.semantic_score);
        assert!((b.keyword_score - 0.90).abs() < 1e-6);
        for h in &hits {
            assert!((0.0..=1.0).contains(&h.fused_score) && (0.0..=1.0).contains(&h.keyword_norm));
        }
        let keyword_only = fuse_lists(vec![raw("a", 0.95), raw("b", 0.90)], vec![], None, "default", 0.0, 1).unwrap();
        assert_eq!(keyword_only.len(), 1);
        assert_eq!(keyword_only[0].semantic_score, 0.0);
    }

    #[test]
    fn keyword_hits_get_their_cosine_from_stored_vectors() {
        let mut a = raw("a", 0.9);
        a.vectors = Some(serde_json::json!({"default": {"embeddings": [[0.6, 0.8]], "regenerate": false}}));
        let hits = fuse_lists(vec![a], vec![], Some(&[1.0, 0.0]), "default", 0.5, 5).unwrap();
        assert!((hits[0].semantic_score - 0.6).abs() < 1e-6);
    }

    #[test]
    fn a_semantic_answer_with_keyword_hits_is_a_fallback() {
        let resp = SearchResponse {
            hits: vec![raw("a", 0.9)],
            semantic_hit_count: Some(0),
            estimated_total_hits: None,
            total_hits: None,
            processing_time_ms: None,
        };
        assert!(matches!(check_semantic(&resp), Err(MeiliError::SemanticFallback { hits: 1, semantic: 0 })));
        let ok = SearchResponse { semantic_hit_count: Some(1), ..resp.clone() };
        assert!(check_semantic(&ok).is_ok());
        let empty = SearchResponse { hits: vec![], semantic_hit_count: None, ..resp };
        assert!(check_semantic(&empty).is_ok());
    }

    #[test]
    fn native_scores_are_relative_to_the_best_hit_in_a_single_mode_only() {
        let resp = SearchResponse {
            hits: vec![raw("a", 0.8), raw("b", 0.4)],
            semantic_hit_count: None,
            estimated_total_hits: None,
            total_hits: None,
            processing_time_ms: None,
        };
        let single = native_hits(resp.clone(), None, "default", true).unwrap();
        assert_eq!(single.iter().map(|h| h.fused_score).collect::<Vec<_>>(), vec![1.0, 0.5]);
        let hybrid = native_hits(resp, None, "default", false).unwrap();
        assert_eq!(hybrid.iter().map(|h| h.fused_score).collect::<Vec<_>>(), vec![0.8, 0.4]);
    }

    fn ids(total: u64, hits: &[(&str, f64)]) -> IdsResponse {
        IdsResponse {
            hits: hits.iter().map(|(id, s)| IdHit { id: id.to_string(), ranking_score: Some(*s) }).collect(),
            estimated_total_hits: Some(total),
            total_hits: None,
        }
    }

    #[test]
    fn rare_terms_weigh_more_and_matches_add_up() {
        // 100 chunks; "th-4012" is in 1, "export" in 10, "token" in 60.
        let lists =
            [ids(60, &[("a", 1.0), ("b", 1.0), ("c", 1.0)]), ids(10, &[("b", 1.0), ("d", 0.9)]), ids(1, &[("d", 1.0)])];
        let ranked = term_scores(100, &lists);
        let order: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(order, vec!["d", "b", "a", "c"]);
        assert!(ranked.iter().all(|(_, s)| *s > 0.0));
        assert!(term_scores(100, &[]).is_empty());
    }

    #[test]
    fn unknown_source_kind_is_an_error_not_a_guess() {
        let mut a = raw("a", 0.9);
        a.source_kind = "faq".into();
        assert!(fuse_lists(vec![a], vec![], None, "default", 0.0, 5).is_err());
    }
}
