//! A button click POSTed to `/slack/interactions`, signed, through the adapter's real router.
//! Slack sends `payload=<url-encoded JSON>`: an input starting with `{` is that JSON and is
//! form-encoded here (so the fuzzer works on the JSON); any other input is sent as the raw
//! form body (so the form parsing is fuzzed too).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let body = if input.first() == Some(&b'{') {
        let json = String::from_utf8_lossy(input);
        url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", &json).finish().into_bytes()
    } else {
        input.to_vec()
    };
    frontdesk_fuzz::slack::post("/slack/interactions", "application/x-www-form-urlencoded", body);
});
