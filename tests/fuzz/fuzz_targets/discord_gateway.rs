//! One gateway frame as the bot's websocket receives it, decoded the way serenity's shard
//! decodes it (`serenity::json::from_str` into a `GatewayEvent`), then handed to the adapter the
//! way its event handler does: MESSAGE_CREATE to `inbound_from_message`, INTERACTION_CREATE
//! (buttons, `/ask`, `/frontdesk policy`) to `handle_interaction`.
#![no_main]

use frontdesk_fuzz::explain;
use libfuzzer_sys::fuzz_target;
use serenity::all::{Event, GatewayEvent};

fuzz_target!(|frame: &[u8]| {
    let Ok(text) = std::str::from_utf8(frame) else { return };
    let event = match serenity::json::from_str::<GatewayEvent>(text) {
        Ok(GatewayEvent::Dispatch(_, event)) => event,
        Ok(other) => return explain(|| format!("not a dispatch: {other:?}")),
        Err(e) => return explain(|| format!("not a gateway event: {e}")),
    };
    let rig = frontdesk_fuzz::discord::idle();
    let rt = frontdesk_fuzz::runtime();
    match event {
        Event::MessageCreate(e) => {
            let inbound = rt.block_on(rig.adapter.inbound_from_message(&e.message));
            explain(|| format!("message: {inbound:?}"));
        }
        Event::InteractionCreate(e) => {
            let response = rt.block_on(rig.adapter.handle_interaction(&rig.inbox, e.interaction));
            // The response goes back to Discord as JSON.
            let json = serde_json::to_string(&response);
            explain(|| format!("interaction answered: {json:?}"));
        }
        other => explain(|| format!("event not handled by the adapter: {:?}", other.name())),
    }
});
