//! A help-centre file in Html as `frontdesk ingest` reads it: parsed, then chunked with
//! the default sizes and with the smallest the configuration allows, and each chunk's indexed
//! text and content hash computed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    frontdesk_fuzz::documents::parse_and_chunk(frontdesk::knowledge::parse::Format::Html, bytes);
});
