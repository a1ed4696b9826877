//! The mapping code against answers recorded from a real Meilisearch v1.50.0 server
//! (`tests/fixtures/meili/`). The recorded index holds five chunks with 4-dimensional vectors
//! (`d1`–`d4` in workspace A, `d5` in B); the query vector is `[0.85, 0.05, 0.05, 0.3]`.

use super::config::MeiliConfig;
use super::http::{decode, error_of};
use super::setup::settings_problems;
use super::wire::{self, cosine, MultiCount, MultiResponse, SearchResponse};
use super::{task_finished, MeiliError, TaskView};
use crate::retrieval::RetrievalError;
use serde_json::Value;

const KEYWORD: &str = include_str!("../../../tests/fixtures/meili/search_keyword.json");
const VECTOR: &str = include_str!("../../../tests/fixtures/meili/search_vector.json");
const NATIVE: &str = include_str!("../../../tests/fixtures/meili/search_hybrid_native.json");
const MULTI: &str = include_str!("../../../tests/fixtures/meili/multi_search.json");
const COUNTS: &str = include_str!("../../../tests/fixtures/meili/multi_search_counts.json");
const TERM_COUNTS: &str = include_str!("../../../tests/fixtures/meili/multi_search_term_counts.json");
const SETTINGS: &str = include_str!("../../../tests/fixtures/meili/settings.json");
const BAD_DIMS: &str = include_str!("../../../tests/fixtures/meili/error_invalid_vector_dimensions.json");
const NO_VECTOR: &str = include_str!("../../../tests/fixtures/meili/search_hybrid_without_vector.json");
const TASK_FAILED: &str = include_str!("../../../tests/fixtures/meili/task_failed.json");
const NOT_FOUND: &str = include_str!("../../../tests/fixtures/meili/error_index_not_found.json");

const QUERY: [f32; 4] = [0.85, 0.05, 0.05, 0.3];

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
    decode(200, text).unwrap()
}

#[test]
fn keyword_hits_take_their_cosine_from_the_vectors_meilisearch_returns() {
    let resp: SearchResponse = parse(KEYWORD);
    assert_eq!(resp.hits.len(), 2);
    let d4 = resp.hits[0].vector("default").unwrap();
    assert_eq!(d4.len(), 4);
    let expected = cosine(&QUERY, &d4).unwrap();
    let hits = wire::fuse_lists(resp.hits, vec![], Some(&QUERY), "default", 0.5, 10).unwrap();
    assert_eq!(hits[0].doc_id, "ticket-7");
    assert!((hits[0].semantic_score - expected).abs() < 1e-6);
    assert!((hits[0].keyword_score - 0.957_227).abs() < 1e-5, "{}", hits[0].keyword_score);
    assert_eq!(hits[0].keyword_norm, 1.0);
    assert_eq!(hits[1].source_kind, crate::document::SourceKind::Doc);
    assert_eq!(hits[1].product.as_deref(), Some("billing"));
    assert_eq!(hits[1].updated_at, Some(1_700_000_000));
}

#[test]
fn a_semantic_score_is_one_plus_cosine_over_two() {
    let vector: SearchResponse = parse(VECTOR);
    let native: SearchResponse = parse(NATIVE);
    assert!(wire::check_semantic(&vector).is_ok());
    assert_eq!(vector.semantic_hit_count, Some(4));
    for (v, n) in vector.hits.iter().zip(&native.hits) {
        assert_eq!(v.id, n.id);
        let stored = n.vector("default").unwrap();
        let cos = cosine(&QUERY, &stored).unwrap();
        let from_score = wire::cosine_from_score(v.ranking_score.unwrap());
        assert!((cos - from_score).abs() < 1e-5, "{}: {cos} vs {from_score}", v.id);
    }
}

#[test]
fn native_hybrid_keeps_meilisearch_order_and_reads_the_vector_details() {
    let resp: SearchResponse = parse(NATIVE);
    let order: Vec<String> = resp.hits.iter().map(|h| h.id.clone()).collect();
    let top_similarity = resp.hits[0].vector_similarity().unwrap();
    let hits = wire::native_hits(resp, Some(&QUERY), "default", false).unwrap();
    assert_eq!(hits.len(), order.len());
    assert_eq!(hits[0].doc_id, "ticket-7");
    assert!((f64::from(hits[0].fused_score) - top_similarity).abs() < 1e-6);
    // Every hit here came from the vector side: no keyword evidence is invented.
    assert!(hits.iter().all(|h| h.keyword_score == 0.0 && h.keyword_norm == 0.0));
    assert!(hits.windows(2).all(|w| w[0].fused_score >= w[1].fused_score));
    assert!((hits[0].semantic_score - wire::cosine_from_score(top_similarity)).abs() < 1e-5);
}

#[test]
fn multi_search_lists_fuse_like_the_embedded_backend() {
    let mut resp: MultiResponse = parse(MULTI);
    assert_eq!(resp.results.len(), 2);
    let semantic = resp.results.pop().unwrap();
    wire::check_semantic(&semantic).unwrap();
    let keyword = resp.results.pop().unwrap();
    let hits = wire::fuse_lists(keyword.hits, semantic.hits, Some(&QUERY), "default", 0.5, 3).unwrap();
    assert_eq!(hits.len(), 3);
    // The two chunks both searches found lead; the one found by vectors only follows.
    assert_eq!(hits[0].doc_id, "ticket-7");
    assert_eq!(hits[1].doc_id, "refunds");
    assert_eq!(hits[2].keyword_score, 0.0);
    for h in &hits {
        assert!((0.0..=1.0).contains(&h.fused_score) && (-1.0..=1.0).contains(&h.semantic_score), "{h:?}");
    }
    // Keyword only and vector only from the same answers.
    let mut resp: MultiResponse = parse(MULTI);
    let semantic = resp.results.pop().unwrap();
    let only_vectors = wire::fuse_lists(vec![], semantic.hits, None, "default", 1.0, 10).unwrap();
    assert_eq!(only_vectors.len(), 4);
    assert!(only_vectors.iter().all(|h| h.keyword_score == 0.0));
}

#[test]
fn counts_come_from_total_hits() {
    let counts: MultiCount = parse(COUNTS);
    let totals: Vec<u64> = counts.results.iter().map(|c| c.total()).collect();
    assert_eq!(totals, vec![4, 2, 0]);
    let exact: Vec<u64> = counts.results.iter().map(|c| c.exact_total()).collect();
    assert_eq!(exact, totals);
}

#[test]
fn a_term_found_only_through_a_typo_counts_as_unknown() {
    // "trail" matches "trial" with one typo; "refund" is in two chunks as written.
    let counts: MultiCount = parse(TERM_COUNTS);
    let seen: Vec<(u64, u64)> = counts.results.iter().map(|c| (c.total(), c.exact_total())).collect();
    assert_eq!(seen, vec![(1, 0), (2, 2)]);
}

#[test]
fn recorded_settings_match_what_frontdesk_applies_for_their_dimensions() {
    let actual: Value = parse(SETTINGS);
    let config = MeiliConfig::default();
    assert!(settings_problems(&actual, &config, 4).is_empty(), "{:?}", settings_problems(&actual, &config, 4));
    let p = settings_problems(&actual, &config, 384);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("dimensions Some(4), expected 384"), "{p:?}");
    let mut changed = actual.clone();
    changed["searchableAttributes"] = serde_json::json!(["*"]);
    changed["filterableAttributes"] = serde_json::json!(["workspace_id"]);
    assert_eq!(settings_problems(&changed, &config, 4).len(), 2);
}

#[test]
fn a_wrong_vector_length_keeps_meilisearch_code() {
    let recorded: Value = serde_json::from_str(BAD_DIMS).unwrap();
    let status = recorded["status"].as_u64().unwrap() as u16;
    let e = error_of(status, &recorded["body"].to_string());
    assert_eq!(e.code(), Some("invalid_vector_dimensions"));
    match RetrievalError::from(e) {
        RetrievalError::Backend { code, message } => {
            assert_eq!(code, "invalid_vector_dimensions");
            assert!(message.contains("HTTP 400") && message.contains("expected: `4`, found: `3`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let not_found: Value = serde_json::from_str(NOT_FOUND).unwrap();
    let e = error_of(not_found["status"].as_u64().unwrap() as u16, &not_found["body"].to_string());
    assert_eq!(e.code(), Some("index_not_found"));
}

#[test]
fn a_hybrid_search_without_its_vector_is_refused() {
    // Meilisearch 1.50 refuses rather than answering with keyword hits; either way frontdesk
    // never sends such a search (`MissingVector` is raised first).
    let e = error_of(400, NO_VECTOR);
    assert_eq!(e.code(), Some("vector_embedding_error"));
}

#[test]
fn a_failed_task_reports_its_error_code() {
    let view: TaskView = serde_json::from_str(TASK_FAILED).unwrap();
    let e = task_finished(4, view).unwrap_err();
    assert!(matches!(&e, MeiliError::TaskFailed { task: 4, kind, .. } if kind == "documentAdditionOrUpdate"), "{e:?}");
    assert_eq!(e.code(), Some("invalid_vector_dimensions"));
    assert!(e.to_string().contains("embedder `default` requires 4"), "{e}");
    let running: TaskView = serde_json::from_str(r#"{"status":"processing","type":"settingsUpdate"}"#).unwrap();
    assert!(!task_finished(5, running).unwrap());
    let cancelled: TaskView = serde_json::from_str(r#"{"status":"canceled","type":"documentDeletion"}"#).unwrap();
    assert_eq!(task_finished(6, cancelled).unwrap_err().code(), Some("task_canceled"));
}
