//! Resolved support tickets as knowledge.
//!
//! Many answers a support team gives never make it into the help centre. frontdesk can learn
//! from an export of resolved tickets (JSON Lines or CSV): each ticket becomes a small document
//! pairing the customer's question with the agent's answer, so a later customer asking the same
//! thing gets the answer that worked, with the ticket cited.
//!
//! Exports are messy, so loading is forgiving row by row: a bad row (broken JSON, a missing
//! answer, a bad date, a duplicate id, an unresolved ticket, bytes that are not UTF-8) is
//! skipped with a precise reason and the rest still load. Only problems with the file as a
//! whole (cannot be read, unknown type, a CSV header without the required columns) are errors.
//!
//! Customer personal data is masked when a ticket becomes a document, before anything is
//! indexed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::mask::mask_pii;
use super::parse::parse_timestamp;
use crate::document::{Section, SourceDocument, SourceKind};

/// One resolved ticket as read from an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub subject: String,
    pub customer_message: String,
    pub agent_answer: String,
    pub tags: Vec<String>,
    /// Unix seconds.
    pub resolved_at: Option<i64>,
    pub product: Option<String>,
    pub url: Option<String>,
}

/// What a ticket file yielded: the usable tickets, and every row that was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketLoad {
    pub tickets: Vec<Ticket>,
    pub skipped: Vec<SkippedRow>,
}

/// A row of a ticket file that was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// `line N` for JSON Lines (1-based); `row N` for CSV, counting the header as row 1 as a
    /// spreadsheet does.
    pub location: String,
    pub reason: String,
}

/// A problem with a ticket file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum TicketFileError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unknown ticket file type; use .jsonl, .ndjson or .csv", .0.display())]
    UnknownFormat(PathBuf),
    #[error("{}: the CSV header has no '{column}' column", .path.display())]
    MissingColumn { path: PathBuf, column: String },
    #[error("{}: {reason}", .path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error("{}: {message}", .path.display())]
    Csv { path: PathBuf, message: String },
}

/// Columns a CSV export must have.
const REQUIRED_COLUMNS: [&str; 2] = ["id", "agent_answer"];
/// Columns read from a CSV export; any others are ignored.
const KNOWN_COLUMNS: [&str; 9] =
    ["id", "subject", "customer_message", "agent_answer", "tags", "resolved_at", "product", "url", "status"];
/// Statuses that mean the ticket is finished and its answer can be trusted.
const RESOLVED_STATUSES: [&str; 3] = ["resolved", "closed", "solved"];

/// Loads a ticket export. The type comes from the extension: `.jsonl` / `.ndjson` (one JSON
/// object per line) or `.csv` (with a header row).
pub fn load_tickets(path: &Path) -> Result<TicketLoad, TicketFileError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let io_err = |source| TicketFileError::Io { path: path.to_path_buf(), source };
    match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => {
            let file = File::open(path).map_err(io_err)?;
            read_jsonl(BufReader::new(file)).map_err(io_err)
        }
        Some("csv") => {
            let file = File::open(path).map_err(io_err)?;
            read_csv(path, BufReader::new(file))
        }
        _ => Err(TicketFileError::UnknownFormat(path.to_path_buf())),
    }
}

/// Turns a ticket into a document ready for chunking, with personal data masked in the
/// subject, question and answer.
pub fn ticket_to_document(t: &Ticket) -> SourceDocument {
    let subject = mask_pii(&t.subject.split_whitespace().collect::<Vec<_>>().join(" "));
    let question = mask_pii(t.customer_message.trim());
    let answer = mask_pii(t.agent_answer.trim());
    let mut text = String::new();
    if !question.is_empty() {
        text.push_str("Customer: ");
        text.push_str(&question);
        text.push_str("\n\n");
    }
    text.push_str("Agent: ");
    text.push_str(&answer);
    if !t.tags.is_empty() {
        text.push_str("\n\nTags: ");
        text.push_str(&t.tags.join(", "));
    }
    SourceDocument {
        doc_id: t.id.clone(),
        source_kind: SourceKind::Ticket,
        title: if subject.is_empty() { format!("Ticket {}", t.id) } else { subject },
        url: t.url.clone(),
        product: t.product.clone(),
        updated_at: t.resolved_at,
        sections: vec![Section { heading_path: Vec::new(), text }],
    }
}

// ---------------------------------------------------------------------------------------------
// Shared row handling
// ---------------------------------------------------------------------------------------------

/// A field as found in a row, before validation.
enum Field<'a> {
    Missing,
    Text(&'a str),
    /// A JSON value that is not a string (number, array, object, bool).
    Json(&'a Value),
}

/// Looks a field up by name in the row being read.
type Getter<'a> = dyn Fn(&str) -> Field<'a> + 'a;

/// Tracks loaded ids and collects the outcome.
#[derive(Default)]
struct Collector {
    load: TicketLoad,
    /// Ticket id → where it was first loaded.
    seen: HashMap<String, String>,
}

impl Collector {
    fn skip(&mut self, location: String, reason: impl Into<String>) {
        self.load.skipped.push(SkippedRow { location, reason: reason.into() });
    }

    fn row<'a>(&mut self, location: String, get: &Getter<'a>) {
        match build_ticket(get) {
            Err(reason) => self.skip(location, reason),
            Ok(ticket) => {
                if let Some(first) = self.seen.get(&ticket.id) {
                    let reason = format!("duplicate id '{}' (first seen on {first})", ticket.id);
                    self.skip(location, reason);
                } else {
                    self.seen.insert(ticket.id.clone(), location);
                    self.load.tickets.push(ticket);
                }
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A text field: missing, null and blank all read as empty.
fn text_field<'a>(get: &Getter<'a>, name: &str) -> Result<String, String> {
    match get(name) {
        Field::Missing => Ok(String::new()),
        Field::Text(s) => Ok(s.trim().replace("\r\n", "\n")),
        Field::Json(v) => Err(format!("field '{name}' must be a string, not {}", json_kind(v))),
    }
}

fn optional_field<'a>(get: &Getter<'a>, name: &str) -> Result<Option<String>, String> {
    let value = text_field(get, name)?;
    Ok(if value.is_empty() { None } else { Some(value) })
}

fn build_ticket<'a>(get: &Getter<'a>) -> Result<Ticket, String> {
    let id = match get("id") {
        Field::Missing => return Err("missing required field 'id'".into()),
        Field::Text(s) => s.trim().to_string(),
        // Help-desk exports often number their tickets.
        Field::Json(Value::Number(n)) => n.to_string(),
        Field::Json(v) => return Err(format!("field 'id' must be a string or a number, not {}", json_kind(v))),
    };
    if id.is_empty() {
        return Err("field 'id' is empty".into());
    }
    if let Some(status) = optional_field(get, "status")? {
        if !RESOLVED_STATUSES.iter().any(|s| s.eq_ignore_ascii_case(&status)) {
            return Err(format!("status is '{status}', only resolved tickets are used"));
        }
    }
    let agent_answer = match get("agent_answer") {
        Field::Missing => return Err("missing required field 'agent_answer'".into()),
        _ => text_field(get, "agent_answer")?,
    };
    if agent_answer.is_empty() {
        return Err("field 'agent_answer' is empty".into());
    }
    let resolved_at = match optional_field(get, "resolved_at")? {
        None => None,
        Some(value) => Some(
            parse_timestamp(&value)
                .ok_or_else(|| format!("resolved_at '{value}' is not a date (use YYYY-MM-DD or RFC 3339)"))?,
        ),
    };
    let tags = match get("tags") {
        Field::Missing => Vec::new(),
        Field::Text(s) => split_tags(s),
        Field::Json(Value::Array(items)) => {
            let mut tags = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if !s.trim().is_empty() => tags.push(s.trim().to_string()),
                    Value::String(_) => {}
                    other => return Err(format!("field 'tags' must be a list of strings; found {}", json_kind(other))),
                }
            }
            tags
        }
        Field::Json(v) => return Err(format!("field 'tags' must be a list of strings, not {}", json_kind(v))),
    };
    Ok(Ticket {
        id,
        subject: text_field(get, "subject")?,
        customer_message: text_field(get, "customer_message")?,
        agent_answer,
        tags,
        resolved_at,
        product: optional_field(get, "product")?,
        url: optional_field(get, "url")?,
    })
}

/// Tags written in one cell: `billing, refunds` or `billing;refunds`.
fn split_tags(s: &str) -> Vec<String> {
    s.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// JSON Lines
// ---------------------------------------------------------------------------------------------

fn read_jsonl<R: BufRead>(mut reader: R) -> std::io::Result<TicketLoad> {
    let mut collector = Collector::default();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let location = format!("line {line_no}");
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let Ok(line) = std::str::from_utf8(bytes) else {
            collector.skip(location, "not valid UTF-8");
            continue;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                collector.skip(location, format!("invalid JSON: {e}"));
                continue;
            }
        };
        let Value::Object(map) = &value else {
            collector.skip(location, format!("expected a JSON object, found {}", json_kind(&value)));
            continue;
        };
        let get = |name: &str| match map.get(name) {
            None | Some(Value::Null) => Field::Missing,
            Some(Value::String(s)) => Field::Text(s),
            Some(v) => Field::Json(v),
        };
        collector.row(location, &get);
    }
    Ok(collector.load)
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

fn read_csv<R: Read>(path: &Path, reader: R) -> Result<TicketLoad, TicketFileError> {
    let csv_err = |e: csv::Error| -> TicketFileError {
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(source) => TicketFileError::Io { path: path.to_path_buf(), source },
            _ => TicketFileError::Csv { path: path.to_path_buf(), message },
        }
    };
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(reader);
    let header = rdr.byte_headers().map_err(csv_err)?.clone();
    if header.iter().all(|h| h.iter().all(u8::is_ascii_whitespace)) {
        return Err(TicketFileError::BadHeader {
            path: path.to_path_buf(),
            reason: "the CSV file has no header row".into(),
        });
    }
    // Column name → index of its first occurrence.
    let mut columns: HashMap<String, usize> = HashMap::new();
    for (index, raw) in header.iter().enumerate() {
        let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(TicketFileError::BadHeader {
                path: path.to_path_buf(),
                reason: format!("CSV header column {} is not valid UTF-8", index + 1),
            });
        };
        columns.entry(name.trim().to_ascii_lowercase()).or_insert(index);
    }
    for column in REQUIRED_COLUMNS {
        if !columns.contains_key(column) {
            return Err(TicketFileError::MissingColumn { path: path.to_path_buf(), column: column.to_string() });
        }
    }

    let mut collector = Collector::default();
    let mut record = csv::ByteRecord::new();
    let mut row_no = 1usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_err(e)),
        }
        row_no += 1;
        // Blank lines and line breaks inside quoted fields make rows and lines differ; then
        // both are given so the row can be found in a spreadsheet or a text editor.
        let location = match record.position().map(|p| p.line()) {
            Some(line) if line != row_no as u64 => format!("row {row_no} (line {line})"),
            _ => format!("row {row_no}"),
        };
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        // Decode the columns frontdesk reads; a bad byte anywhere in them skips the row.
        let mut values: HashMap<&str, &str> = HashMap::new();
        let mut bad_column = None;
        for name in KNOWN_COLUMNS {
            let Some(&index) = columns.get(name) else {
                continue;
            };
            let Some(raw) = record.get(index) else {
                continue;
            };
            match std::str::from_utf8(raw) {
                Ok(text) => {
                    values.insert(name, text);
                }
                Err(_) => {
                    bad_column = Some(name);
                    break;
                }
            }
        }
        if let Some(name) = bad_column {
            collector.skip(location, format!("column '{name}' is not valid UTF-8"));
            continue;
        }
        let get = |name: &str| match values.get(name) {
            None => Field::Missing,
            Some(text) if text.trim().is_empty() && name != "agent_answer" && name != "id" => Field::Missing,
            Some(text) => Field::Text(text),
        };
        collector.row(location, &get);
    }
    Ok(collector.load)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = match File::create(&path) {
            Ok(f) => f,
            Err(e) => panic!("create {name}: {e}"),
        };
        if let Err(e) = f.write_all(content) {
            panic!("write {name}: {e}");
        }
        path
    }

    fn load(name: &str, content: &[u8]) -> TicketLoad {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = write_file(&dir, name, content);
        match load_tickets(&path) {
            Ok(l) => l,
            Err(e) => panic!("load failed: {e}"),
        }
    }

    fn load_err(name: &str, content: &[u8]) -> TicketFileError {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = write_file(&dir, name, content);
        match load_tickets(&path) {
            Ok(l) => panic!("expected an error, got {l:?}"),
            Err(e) => e,
        }
    }

    fn skipped(load: &TicketLoad) -> Vec<(&str, &str)> {
        load.skipped.iter().map(|s| (s.location.as_str(), s.reason.as_str())).collect()
    }

    #[test]
    fn jsonl_loads_tickets() {
        let content = br#"{"id": "T-1", "subject": "Refund", "customer_message": "Can I get a refund?", "agent_answer": "Yes, within 30 days.", "tags": ["billing", " refunds ", ""], "resolved_at": "2024-03-15", "product": "Pay", "url": "https://desk.example.com/t/1", "status": "Solved", "assignee": "ann"}

{"id": 42, "agent_answer": "Restart the app.", "resolved_at": "2024-03-15T10:00:00Z", "subject": null}
"#;
        let l = load("export.jsonl", content);
        assert_eq!(l.skipped, vec![]);
        assert_eq!(
            l.tickets[0],
            Ticket {
                id: "T-1".into(),
                subject: "Refund".into(),
                customer_message: "Can I get a refund?".into(),
                agent_answer: "Yes, within 30 days.".into(),
                tags: vec!["billing".into(), "refunds".into()],
                resolved_at: Some(1_710_460_800),
                product: Some("Pay".into()),
                url: Some("https://desk.example.com/t/1".into()),
            }
        );
        assert_eq!(l.tickets[1].id, "42");
        assert_eq!(l.tickets[1].subject, "");
        assert_eq!(l.tickets[1].resolved_at, Some(1_710_496_800));
        assert_eq!(l.tickets[1].tags, Vec::<String>::new());
    }

    #[test]
    fn jsonl_bad_lines_are_skipped_with_reasons() {
        let mut content = Vec::new();
        content.extend_from_slice(b"{\"id\": \"1\", \"agent_answer\": \"ok\"}\n");
        content.extend_from_slice(b"{\"id\": \"2\", \"agent_answer\": \"broken\"\n");
        content.extend_from_slice(b"{\"agent_answer\": \"no id\"}\n");
        content.extend_from_slice(b"{\"id\": \"4\"}\n");
        content.extend_from_slice(b"{\"id\": \"5\", \"agent_answer\": \"  \"}\n");
        content.extend_from_slice(b"{\"id\": \"6\", \"agent_answer\": \"x\", \"resolved_at\": \"yesterday\"}\n");
        content.extend_from_slice(b"{\"id\": \"1\", \"agent_answer\": \"again\"}\n");
        content.extend_from_slice(b"{\"id\": \"8\", \"agent_answer\": \"x\", \"status\": \"open\"}\n");
        content.extend_from_slice(b"{\"id\": \"9\", \"agent_answer\": \"caf\xe9\"}\n");
        content.extend_from_slice(b"[1, 2]\n");
        content.extend_from_slice(b"   \r\n");
        content.extend_from_slice(b"{\"id\": \"12\", \"agent_answer\": \"x\", \"tags\": [1]}\n");
        content.extend_from_slice(b"{\"id\": \"13\", \"agent_answer\": 5}\n");
        content.extend_from_slice(b"{\"id\": \"\", \"agent_answer\": \"x\"}\n");
        content.extend_from_slice(b"{\"id\": \"15\", \"agent_answer\": \"last\"}");
        let l = load("export.ndjson", &content);
        let ids: Vec<&str> = l.tickets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "15"]);
        let s = skipped(&l);
        assert_eq!(s.len(), 12);
        assert_eq!(s[0].0, "line 2");
        assert!(s[0].1.starts_with("invalid JSON: "), "{}", s[0].1);
        assert_eq!(
            &s[1..],
            &[
                ("line 3", "missing required field 'id'"),
                ("line 4", "missing required field 'agent_answer'"),
                ("line 5", "field 'agent_answer' is empty"),
                ("line 6", "resolved_at 'yesterday' is not a date (use YYYY-MM-DD or RFC 3339)"),
                ("line 7", "duplicate id '1' (first seen on line 1)"),
                ("line 8", "status is 'open', only resolved tickets are used"),
                ("line 9", "not valid UTF-8"),
                ("line 10", "expected a JSON object, found an array"),
                ("line 12", "field 'tags' must be a list of strings; found a number"),
                ("line 13", "field 'agent_answer' must be a string, not a number"),
                ("line 14", "field 'id' is empty"),
            ]
        );
    }

    #[test]
    fn duplicate_of_a_skipped_row_loads() {
        let content = b"{\"id\": \"1\", \"agent_answer\": \"\"}\n{\"id\": \"1\", \"agent_answer\": \"real\"}\n";
        let l = load("t.jsonl", content);
        assert_eq!(l.tickets.len(), 1);
        assert_eq!(l.tickets[0].agent_answer, "real");
        assert_eq!(skipped(&l), vec![("line 1", "field 'agent_answer' is empty")]);
    }

    #[test]
    fn jsonl_bom_and_tags_string() {
        let l = load("t.JSONL", b"\xef\xbb\xbf{\"id\": \"a\", \"agent_answer\": \"b\", \"tags\": \"x; y\"}\n");
        assert_eq!(l.tickets.len(), 1);
        assert_eq!(l.tickets[0].tags, vec!["x".to_string(), "y".to_string()]);
    }

    #[test]
    fn csv_loads_quoted_fields() {
        let content = "\u{feff}ID,Subject,customer_message,agent_answer,tags,resolved_at,product,url,status,extra\n\
            7,\"Refund, please\",\"Hi,\nI was charged twice.\nThanks\",\"Refunded \"\"both\"\" charges.\",\"billing; refunds,urgent\",2024-03-15,Pay,https://desk.example.com/7,closed,ignored\n\
            8,,,Reset your password.,,,,,,\n";
        let l = load("export.csv", content.as_bytes());
        assert_eq!(l.skipped, vec![]);
        assert_eq!(
            l.tickets[0],
            Ticket {
                id: "7".into(),
                subject: "Refund, please".into(),
                customer_message: "Hi,\nI was charged twice.\nThanks".into(),
                agent_answer: "Refunded \"both\" charges.".into(),
                tags: vec!["billing".into(), "refunds".into(), "urgent".into()],
                resolved_at: Some(1_710_460_800),
                product: Some("Pay".into()),
                url: Some("https://desk.example.com/7".into()),
            }
        );
        assert_eq!(
            l.tickets[1],
            Ticket {
                id: "8".into(),
                subject: String::new(),
                customer_message: String::new(),
                agent_answer: "Reset your password.".into(),
                tags: vec![],
                resolved_at: None,
                product: None,
                url: None,
            }
        );
    }

    #[test]
    fn csv_bad_rows_are_skipped_with_reasons() {
        let mut content = Vec::new();
        content.extend_from_slice(b"id,agent_answer,resolved_at,status\n");
        content.extend_from_slice(b"1,ok,,\n");
        content.extend_from_slice(b",no id,,\n");
        content.extend_from_slice(b"3,,,\n");
        content.extend_from_slice(b"4,x,15/03/2024,\n");
        content.extend_from_slice(b"1,dup,,\n");
        content.extend_from_slice(b"6,x,,Pending\n");
        content.extend_from_slice(b"7,caf\xe9,,\n");
        content.extend_from_slice(b"\n");
        content.extend_from_slice(b",,,\n");
        content.extend_from_slice(b"8\n");
        content.extend_from_slice(b"9,\"multi\nline\",,RESOLVED\n");
        content.extend_from_slice(b"10,after,,\n");
        let l = load("t.csv", &content);
        let ids: Vec<&str> = l.tickets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "9", "10"]);
        assert_eq!(
            skipped(&l),
            vec![
                ("row 3", "field 'id' is empty"),
                ("row 4", "field 'agent_answer' is empty"),
                ("row 5", "resolved_at '15/03/2024' is not a date (use YYYY-MM-DD or RFC 3339)"),
                ("row 6", "duplicate id '1' (first seen on row 2)"),
                ("row 7", "status is 'Pending', only resolved tickets are used"),
                ("row 8", "column 'agent_answer' is not valid UTF-8"),
                // The blank line before it is not a row, but it is a line.
                ("row 10 (line 11)", "missing required field 'agent_answer'"),
            ]
        );
    }

    #[test]
    fn csv_crlf_export() {
        let content = b"id,agent_answer\r\nA1,\"Line one\r\nline two\"\r\n";
        let l = load("t.csv", content);
        assert_eq!(l.skipped, vec![]);
        assert_eq!(l.tickets[0].id, "A1");
        assert_eq!(l.tickets[0].agent_answer, "Line one\nline two");
        let doc = ticket_to_document(&Ticket { subject: "Two\nlines".into(), ..l.tickets[0].clone() });
        assert_eq!(doc.title, "Two lines");
    }

    #[test]
    fn csv_header_problems() {
        match load_err("t.csv", b"id,answer\n1,x\n") {
            TicketFileError::MissingColumn { column, .. } => assert_eq!(column, "agent_answer"),
            e => panic!("unexpected {e}"),
        }
        let e = load_err("t.csv", b"ticket,agent_answer\n1,x\n");
        assert!(e.to_string().ends_with("the CSV header has no 'id' column"), "{e}");
        match load_err("t.csv", b"") {
            TicketFileError::BadHeader { reason, .. } => {
                assert_eq!(reason, "the CSV file has no header row")
            }
            e => panic!("unexpected {e}"),
        }
        match load_err("t.csv", b"id,agent_answer,\xff\n1,x,y\n") {
            TicketFileError::BadHeader { reason, .. } => {
                assert_eq!(reason, "CSV header column 3 is not valid UTF-8")
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn unknown_format_and_missing_file() {
        let e = load_err("tickets.json", b"[]");
        assert!(matches!(e, TicketFileError::UnknownFormat(_)));
        assert!(e.to_string().contains("use .jsonl, .ndjson or .csv"));
        match load_tickets(Path::new("/definitely/not/here.jsonl")) {
            Err(TicketFileError::Io { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_files() {
        assert_eq!(load("t.jsonl", b""), TicketLoad::default());
        assert_eq!(load("t.jsonl", b"\n\n  \n"), TicketLoad::default());
        assert_eq!(load("t.csv", b"id,agent_answer\n"), TicketLoad::default());
    }

    fn ticket() -> Ticket {
        Ticket {
            id: "T-100".into(),
            subject: "Card 4111 1111 1111 1111 declined".into(),
            customer_message: "Hi, I'm jane@example.com, call me on (555) 123-4567. Order INV-000123.".into(),
            agent_answer: "Sorry! Error TH-4012 means the bank declined it; we emailed jane@example.com.".into(),
            tags: vec!["billing".into(), "cards".into()],
            resolved_at: Some(1_710_460_800),
            product: Some("Pay".into()),
            url: Some("https://desk.example.com/t/100?email=jane@example.com".into()),
        }
    }

    #[test]
    fn ticket_document_is_masked() {
        let doc = ticket_to_document(&ticket());
        assert_eq!(doc.doc_id, "T-100");
        assert_eq!(doc.source_kind, SourceKind::Ticket);
        assert_eq!(doc.title, "Card [card] declined");
        assert_eq!(doc.url.as_deref(), Some("https://desk.example.com/t/100?email=jane@example.com"));
        assert_eq!(doc.product.as_deref(), Some("Pay"));
        assert_eq!(doc.updated_at, Some(1_710_460_800));
        assert_eq!(
            doc.sections,
            vec![Section {
                heading_path: vec![],
                text: "Customer: Hi, I'm [email], call me on [phone]. Order INV-000123.\n\n\
                       Agent: Sorry! Error TH-4012 means the bank declined it; we emailed [email].\n\n\
                       Tags: billing, cards"
                    .into(),
            }]
        );
    }

    #[test]
    fn ticket_document_fallbacks() {
        let t = Ticket { subject: "  ".into(), customer_message: String::new(), tags: vec![], ..ticket() };
        let doc = ticket_to_document(&t);
        assert_eq!(doc.title, "Ticket T-100");
        assert_eq!(doc.sections[0].text, "Agent: Sorry! Error TH-4012 means the bank declined it; we emailed [email].");
    }
}
