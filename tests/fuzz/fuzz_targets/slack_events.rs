//! A body POSTed to `/slack/events` (Events API envelopes: url_verification, event_callback
//! with message / app_mention events, app_rate_limited), signed with the app's secret, through
//! the adapter's real router: signature check, envelope, event, the message handed to the inbox.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    frontdesk_fuzz::slack::post("/slack/events", "application/json", body.to_vec());
});
