//! The configuration file, through the loader `frontdesk` starts with: TOML, the environment
//! overrides laid over it, every section (the channels' included) and the validation. The
//! input is the file's text; after a NUL byte, each `NAME=value` line is an environment
//! variable (e.g. `FRONTDESK_SERVER__PORT=8080`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(input) = std::str::from_utf8(input) else { return };
    let (text, env) = input.split_once('\0').unwrap_or((input, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let loaded = frontdesk::serve::registry::parse_config(text, &env, "fuzz.toml");
    frontdesk_fuzz::explain(|| match &loaded {
        Ok(_) => "valid configuration".to_string(),
        Err(e) => e.to_string(),
    });
});
