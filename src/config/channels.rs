//! The channels' sections (`[slack]`, `[discord]`, `[email]`, ...), kept as written.
//!
//! The engine's configuration never holds a channel's own types: the sections are read here as
//! plain TOML, with the environment's overrides laid over them like every other section, and
//! the wiring layer that builds the adapters (`serve::registry`) parses and checks each with
//! its channel's configuration type.

use std::collections::BTreeMap;
use std::fmt;

/// Every top-level section the engine's configuration does not read, by name.
#[derive(Clone, Default, PartialEq)]
pub struct ChannelSections {
    sections: BTreeMap<String, toml::Value>,
}

/// Only the names: the sections hold secrets.
impl fmt::Debug for ChannelSections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.sections.keys()).finish()
    }
}

impl ChannelSections {
    pub(crate) fn insert(&mut self, name: String, value: toml::Value) {
        self.sections.insert(name, value);
    }

    /// The section called `name`, as written.
    pub fn get(&self, name: &str) -> Option<&toml::Value> {
        self.sections.get(name)
    }

    /// Every section, by name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &toml::Value)> {
        self.sections.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The names of the sections present.
    pub fn names(&self) -> Vec<&str> {
        self.sections.keys().map(String::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}
