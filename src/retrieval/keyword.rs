//! The keyword side of the embedded backend: a BM25 index (tantivy) over title, headings and
//! text of every chunk, with an English analyser (lower-casing, stop words, stemming).
//!
//! Queries are built from the analysed terms of the customer's message rather than parsed as
//! query syntax: a question full of quotes, colons and brackets is still just words, and an
//! error code like `TH-4012` becomes the terms `th` and `4012`, which match the document that
//! names it. Every query carries a mandatory term on the workspace field.

use crate::document::Chunk;
use crate::retrieval::{Filters, RetrievalError};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

const ANALYZER: &str = "frontdesk_en";
const WRITER_HEAP: usize = 64 * 1024 * 1024;
/// Title and headings say what a chunk is about; they weigh more than a word in passing.
const TITLE_BOOST: f32 = 1.5;
const HEADINGS_BOOST: f32 = 1.2;

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    workspace: Field,
    chunk_id: Field,
    product: Field,
    kind: Field,
    title: Field,
    headings: Field,
    body: Field,
}

/// A BM25 index shared by all workspaces, each query filtered to one.
pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    analyzer: Analyzer,
}

/// The index's English analyser on its own, for reading a text's terms as the index reads them
/// (the Meilisearch backend's term statistics use it too).
pub struct Analyzer(Mutex<TextAnalyzer>);

impl Analyzer {
    pub fn new() -> Result<Self, RetrievalError> {
        Ok(Analyzer(Mutex::new(analyzer()?)))
    }

    /// The distinct analysed terms of a text, in first-seen order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let Ok(mut analyzer) = self.0.lock() else { return Vec::new() };
        let mut stream = analyzer.token_stream(text);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token().text.clone();
            if seen.insert(t.clone()) {
                out.push(t);
            }
        }
        out
    }
}

fn err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RetrievalError {
    RetrievalError::Keyword(e.into())
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        workspace: b.add_text_field("workspace", STRING),
        chunk_id: b.add_text_field("chunk_id", STRING | STORED),
        product: b.add_text_field("product", STRING),
        kind: b.add_text_field("kind", STRING),
        title: b.add_text_field("title", text.clone()),
        headings: b.add_text_field("headings", text.clone()),
        body: b.add_text_field("body", text),
    };
    (b.build(), fields)
}

fn analyzer() -> Result<TextAnalyzer, RetrievalError> {
    let stop = StopWordFilter::new(Language::English).ok_or_else(|| err("no English stop words"))?;
    Ok(TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop)
        .filter(Stemmer::new(Language::English))
        .build())
}

/// Key of a chunk across workspaces.
fn chunk_key(workspace: &str, chunk_id: &str) -> String {
    format!("{workspace}\u{0}{chunk_id}")
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating it when the folder is empty.
    pub fn open(dir: &Path) -> Result<Self, RetrievalError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let (schema, fields) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(err)?;
        let index = Index::open_or_create(mmap, schema).map_err(err)?;
        Self::from_index(index, fields)
    }

    /// An index in memory only (tests, benchmarks).
    pub fn in_memory() -> Result<Self, RetrievalError> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<Self, RetrievalError> {
        index.tokenizers().register(ANALYZER, analyzer()?);
        let writer = index.writer(WRITER_HEAP).map_err(err)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(err)?;
        Ok(KeywordIndex { index, reader, writer: Mutex::new(writer), fields, analyzer: Analyzer::new()? })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, RetrievalError> {
        self.writer.lock().map_err(|_| err("the index writer was poisoned by an earlier failure"))
    }

    /// Adds or replaces a chunk.
    pub fn upsert(&self, workspace: &str, chunk: &Chunk) -> Result<(), RetrievalError> {
        let f = self.fields;
        let key = chunk_key(workspace, &chunk.chunk_id);
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, &key);
        doc.add_text(f.workspace, workspace);
        doc.add_text(f.chunk_id, &chunk.chunk_id);
        if let Some(p) = &chunk.product {
            doc.add_text(f.product, p);
        }
        doc.add_text(f.kind, chunk.source_kind.as_str());
        doc.add_text(f.title, &chunk.title);
        doc.add_text(f.headings, chunk.heading_path.join(" \n "));
        doc.add_text(f.body, &chunk.text);
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(f.key, &key));
        writer.add_document(doc).map_err(err)?;
        Ok(())
    }

    pub fn delete(&self, workspace: &str, chunk_id: &str) -> Result<(), RetrievalError> {
        let key = chunk_key(workspace, chunk_id);
        self.writer()?.delete_term(Term::from_field_text(self.fields.key, &key));
        Ok(())
    }

    /// Makes pending changes durable and visible to searches.
    pub fn commit(&self) -> Result<(), RetrievalError> {
        self.writer()?.commit().map_err(err)?;
        self.reader.reload().map_err(err)?;
        Ok(())
    }

    /// The distinct analysed terms of a text, in first-seen order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        self.analyzer.terms(text)
    }

    fn filter_clauses(&self, workspace: &str, filters: &Filters) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let exact = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, exact(f.workspace, workspace))];
        if let Some(kind) = filters.source_kind {
            clauses.push((Occur::Must, exact(f.kind, kind.as_str())));
        }
        if !filters.products.is_empty() {
            let any: Vec<(Occur, Box<dyn Query>)> =
                filters.products.iter().map(|p| (Occur::Should, exact(f.product, p))).collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        clauses
    }

    /// BM25 search. Returns `(chunk_id, score)` best first. Date filters are applied by the
    /// caller, which knows each chunk's date.
    pub fn search(
        &self,
        workspace: &str,
        query: &str,
        filters: &Filters,
        limit: usize,
    ) -> Result<Vec<(String, f32)>, RetrievalError> {
        let terms = self.terms(query);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let f = self.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in &terms {
            for (field, boost) in [(f.title, TITLE_BOOST), (f.headings, HEADINGS_BOOST), (f.body, 1.0)] {
                let q = TermQuery::new(Term::from_field_text(field, t), IndexRecordOption::WithFreqs);
                should.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
            }
        }
        let mut clauses = self.filter_clauses(workspace, filters);
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(should))));
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score()).map_err(err)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(err)?;
            if let Some(id) = doc.get_first(f.chunk_id).and_then(|v| v.as_str()) {
                out.push((id.to_string(), score));
            }
        }
        Ok(out)
    }

    /// Chunks of a workspace containing an analysed term (in title, headings or text).
    pub fn chunk_freq(&self, workspace: &str, term: &str) -> Result<u64, RetrievalError> {
        let f = self.fields;
        let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for field in [f.title, f.headings, f.body] {
            any.push((
                Occur::Should,
                Box::new(TermQuery::new(Term::from_field_text(field, term), IndexRecordOption::Basic)),
            ));
        }
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(Term::from_field_text(f.workspace, workspace), IndexRecordOption::Basic)),
            ),
            (Occur::Must, Box::new(BooleanQuery::new(any))),
        ]);
        self.reader.searcher().search(&q, &Count).map(|n| n as u64).map_err(err)
    }

    /// Chunks indexed for a workspace.
    pub fn count(&self, workspace: &str) -> Result<usize, RetrievalError> {
        let q = TermQuery::new(Term::from_field_text(self.fields.workspace, workspace), IndexRecordOption::Basic);
        self.reader.searcher().search(&q, &Count).map_err(err)
    }

    /// The underlying index, for diagnostics.
    pub fn index(&self) -> &Index {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::SourceKind;

    fn chunk(id: &str, title: &str, text: &str, product: Option<&str>) -> Chunk {
        Chunk {
            chunk_id: id.into(),
            doc_id: id.split('#').next().unwrap_or(id).into(),
            source_kind: SourceKind::Doc,
            title: title.into(),
            url: None,
            product: product.map(Into::into),
            updated_at: None,
            heading_path: vec!["Errors".into()],
            text: text.into(),
        }
    }

    #[test]
    fn finds_error_codes_and_stems_and_scopes_by_workspace() {
        let idx = KeywordIndex::in_memory().unwrap();
        idx.upsert("w1", &chunk("api#0", "API errors", "TH-4012 means the export token expired.", Some("api")))
            .unwrap();
        idx.upsert("w1", &chunk("bill#0", "Refunds", "Refunds are issued within 5 days.", Some("billing"))).unwrap();
        idx.upsert("w2", &chunk("other#0", "Refunds", "Refunding works differently here.", None)).unwrap();
        idx.commit().unwrap();

        let hits = idx.search("w1", "Why do I get TH-4012?", &Filters::default(), 10).unwrap();
        assert_eq!(hits[0].0, "api#0");
        let hits = idx.search("w1", "refunding my invoice", &Filters::default(), 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), vec!["bill#0"]);
        let f = Filters { products: vec!["api".into()], ..Default::default() };
        assert!(idx.search("w1", "refund", &f, 10).unwrap().is_empty());
        assert_eq!(idx.count("w1").unwrap(), 2);
        assert_eq!(idx.count("w2").unwrap(), 1);
    }

    #[test]
    fn upsert_replaces_and_delete_removes() {
        let idx = KeywordIndex::in_memory().unwrap();
        idx.upsert("w", &chunk("a#0", "Alpha", "first version about invoices", None)).unwrap();
        idx.commit().unwrap();
        idx.upsert("w", &chunk("a#0", "Alpha", "second version about receipts", None)).unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.count("w").unwrap(), 1);
        assert!(idx.search("w", "invoices", &Filters::default(), 5).unwrap().is_empty());
        assert_eq!(idx.search("w", "receipts", &Filters::default(), 5).unwrap().len(), 1);
        idx.delete("w", "a#0").unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.count("w").unwrap(), 0);
    }

    #[test]
    fn stop_words_only_and_punctuation_queries_return_nothing_without_error() {
        let idx = KeywordIndex::in_memory().unwrap();
        idx.upsert("w", &chunk("a#0", "Alpha", "text", None)).unwrap();
        idx.commit().unwrap();
        assert!(idx.search("w", "the and of ?!: \"(", &Filters::default(), 5).unwrap().is_empty());
    }
}
