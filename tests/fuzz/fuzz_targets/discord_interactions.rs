//! A body POSTed to `/discord/interactions` (PING, button presses, slash commands), signed with
//! the application's Ed25519 key, through the running adapter's real router: signature,
//! timestamp, JSON, the interaction, its handling and the response.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    frontdesk_fuzz::discord::running().post_interaction(body.to_vec());
});
