//! Channel policies: what the bot may do where.
//!
//! A policy is resolved per message from three layers: the built-in defaults, the workspace's
//! defaults, and the channel's own settings, each layer setting only what it names. Policies
//! live in sled (tree `policies`) and are read on every turn, so `frontdesk policy set` takes
//! effect on the next message without a restart.

use crate::channel::{ChannelId, WorkspaceId};
use crate::llm::ModelTier;
use crate::store::{key2, prefix1, Store, StoreError};
use serde::{Deserialize, Serialize};

/// How the bot behaves in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Answers customers directly when confident; hands off otherwise.
    Answer,
    /// Writes a draft for the agents instead of answering the customer.
    Suggest,
    /// Never answers here; the channel belongs to people.
    Off,
}

/// Which model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierPolicy {
    Standard,
    Cheap,
    /// Easy questions (short, strongly supported) go to the cheap model.
    Auto,
}

/// The effective policy for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub enabled: bool,
    pub mode: PolicyMode,
    /// Answer top-level messages that do not mention the bot (e.g. a help channel or forum).
    pub answer_top_level: bool,
    /// Only knowledge of these products (empty: all).
    pub products: Vec<String>,
    /// Only knowledge updated within this many days (none: any age).
    pub max_age_days: Option<u32>,
    /// Answers with a confidence below this are handed to a person.
    pub confidence_threshold: f32,
    /// Who is mentioned in the thread on handoff (a Slack user group like `<!subteam^S123>`,
    /// user ids, a Discord role, an email address).
    pub escalation_target: Option<String>,
    /// Where the agents' summary card goes (a channel id), if anywhere.
    pub agents_channel: Option<String>,
    /// Actions the bot may run here (read-only ones; others wait for approval).
    pub allowed_actions: Vec<String>,
    pub model_tier: TierPolicy,
    /// Longest answer in characters.
    pub max_answer_chars: usize,
    /// After an agent resolves a conversation, a new customer message goes back to the bot.
    pub bot_resumes_after_resolve: bool,
    /// Domains (and their subdomains) that links in answers may point to besides the addresses
    /// the retrieved help docs themselves contain. Empty: only those.
    pub link_domains: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            mode: PolicyMode::Answer,
            answer_top_level: false,
            products: Vec::new(),
            max_age_days: None,
            confidence_threshold: DEFAULT_THRESHOLD,
            escalation_target: None,
            agents_channel: None,
            allowed_actions: Vec::new(),
            model_tier: TierPolicy::Standard,
            max_answer_chars: 1200,
            bot_resumes_after_resolve: true,
            link_domains: Vec::new(),
        }
    }
}

/// The built-in confidence threshold: the shipped confidence model's recommended threshold
/// (chosen by `frontdesk calibrate` on the data the model was fitted on, to keep risk at or
/// under its target); a test keeps the two equal. See the README's risk–coverage section for how
/// to pick one for your own knowledge.
pub const DEFAULT_THRESHOLD: f32 = 0.81;

impl Policy {
    pub fn tier(&self, easy: bool) -> ModelTier {
        match self.model_tier {
            TierPolicy::Standard => ModelTier::Standard,
            TierPolicy::Cheap => ModelTier::Cheap,
            TierPolicy::Auto if easy => ModelTier::Cheap,
            TierPolicy::Auto => ModelTier::Standard,
        }
    }
}

/// One layer: only the fields it sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<PolicyMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_top_level: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_target: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents_channel: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_actions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_tier: Option<TierPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_answer_chars: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_resumes_after_resolve: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_domains: Option<Vec<String>>,
}

/// The keys `frontdesk policy set` accepts, with what each takes.
pub const POLICY_KEYS: &[(&str, &str)] = &[
    ("enabled", "true|false"),
    ("mode", "answer|suggest|off"),
    ("answer_top_level", "true|false"),
    ("products", "comma-separated product names, or empty for all"),
    ("max_age_days", "days, or none"),
    ("confidence_threshold", "0.0 to 1.0"),
    ("escalation_target", "who to mention on handoff, or none"),
    ("agents_channel", "channel id for summaries, or none"),
    ("allowed_actions", "comma-separated action names"),
    ("model_tier", "standard|cheap|auto"),
    ("max_answer_chars", "100 to 4000"),
    ("bot_resumes_after_resolve", "true|false"),
    ("link_domains", "comma-separated domains answers may link to besides the help docs' own links"),
];

/// A `key=value` could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PolicyValueError {
    pub key: String,
    pub message: String,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, PolicyValueError> {
    match v {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(PolicyValueError { key: key.into(), message: format!("expected true or false, not {v:?}") }),
    }
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A domain name with at least two labels: letters, digits and hyphens.
fn is_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && d.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn optional(v: &str) -> Option<String> {
    match v.trim() {
        "" | "none" => None,
        s => Some(s.to_string()),
    }
}

impl PolicyLayer {
    /// Applies one `key=value` from the command line.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PolicyValueError> {
        let err = |message: String| PolicyValueError { key: key.into(), message };
        match key {
            "enabled" => self.enabled = Some(parse_bool(key, value)?),
            "mode" => {
                self.mode = Some(match value {
                    "answer" => PolicyMode::Answer,
                    "suggest" => PolicyMode::Suggest,
                    "off" => PolicyMode::Off,
                    _ => return Err(err(format!("expected answer, suggest or off, not {value:?}"))),
                })
            }
            "answer_top_level" => self.answer_top_level = Some(parse_bool(key, value)?),
            "products" => self.products = Some(parse_list(value)),
            "max_age_days" => {
                self.max_age_days = Some(match optional(value) {
                    None => None,
                    Some(v) => {
                        Some(v.parse().map_err(|_| err(format!("expected a number of days or none, not {v:?}")))?)
                    }
                })
            }
            "confidence_threshold" => {
                let t: f32 = value.parse().map_err(|_| err(format!("expected a number, not {value:?}")))?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(err(format!("must be between 0.0 and 1.0, not {t}")));
                }
                self.confidence_threshold = Some(t);
            }
            "escalation_target" => self.escalation_target = Some(optional(value)),
            "agents_channel" => self.agents_channel = Some(optional(value)),
            "allowed_actions" => self.allowed_actions = Some(parse_list(value)),
            "model_tier" => {
                self.model_tier = Some(match value {
                    "standard" => TierPolicy::Standard,
                    "cheap" => TierPolicy::Cheap,
                    "auto" => TierPolicy::Auto,
                    _ => return Err(err(format!("expected standard, cheap or auto, not {value:?}"))),
                })
            }
            "max_answer_chars" => {
                let n: usize = value.parse().map_err(|_| err(format!("expected a number, not {value:?}")))?;
                if !(100..=4000).contains(&n) {
                    return Err(err(format!("must be between 100 and 4000, not {n}")));
                }
                self.max_answer_chars = Some(n);
            }
            "bot_resumes_after_resolve" => self.bot_resumes_after_resolve = Some(parse_bool(key, value)?),
            "link_domains" => {
                let domains: Vec<String> =
                    parse_list(value).into_iter().map(|d| d.trim_start_matches("*.").to_ascii_lowercase()).collect();
                if let Some(bad) = domains.iter().find(|d| !is_domain(d)) {
                    return Err(err(format!(
                        "{bad:?} is not a domain name (write domains like help.example.com, without https:// or paths)"
                    )));
                }
                self.link_domains = Some(domains);
            }
            _ => {
                let known: Vec<&str> = POLICY_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(err(format!("unknown policy key (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    /// Lays this layer over a policy.
    pub fn apply(&self, p: &mut Policy) {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { p.$f = v.clone(); } )* };
        }
        take!(
            enabled,
            mode,
            answer_top_level,
            products,
            max_age_days,
            confidence_threshold,
            escalation_target,
            agents_channel,
            allowed_actions,
            model_tier,
            max_answer_chars,
            bot_resumes_after_resolve,
            link_domains
        );
    }

    pub fn is_empty(&self) -> bool {
        *self == PolicyLayer::default()
    }
}

/// The scope of a stored layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Workspace,
    Channel(ChannelId),
}

const WORKSPACE_SCOPE: &str = "*";

fn scope_key(scope: &Scope) -> &str {
    match scope {
        Scope::Workspace => WORKSPACE_SCOPE,
        Scope::Channel(c) => c.as_str(),
    }
}

/// Policies in sled.
#[derive(Clone)]
pub struct PolicyStore {
    tree: sled::Tree,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: "policy".into(), message: e.to_string() }
}

impl PolicyStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(PolicyStore { tree: store.db().open_tree("policies")? })
    }

    pub fn layer(&self, ws: &WorkspaceId, scope: &Scope) -> Result<PolicyLayer, StoreError> {
        match self.tree.get(key2(ws.as_str(), scope_key(scope)))? {
            Some(b) => serde_json::from_slice(&b).map_err(corrupt),
            None => Ok(PolicyLayer::default()),
        }
    }

    pub fn put_layer(&self, ws: &WorkspaceId, scope: &Scope, layer: &PolicyLayer) -> Result<(), StoreError> {
        let key = key2(ws.as_str(), scope_key(scope));
        if layer.is_empty() {
            self.tree.remove(key)?;
        } else {
            self.tree.insert(key, serde_json::to_vec(layer).map_err(corrupt)?)?;
        }
        self.tree.flush()?;
        Ok(())
    }

    /// Applies `key=value` pairs to a layer, all or nothing.
    pub fn set(
        &self,
        ws: &WorkspaceId,
        scope: &Scope,
        pairs: &[(String, String)],
    ) -> Result<Result<PolicyLayer, Vec<PolicyValueError>>, StoreError> {
        let mut layer = self.layer(ws, scope)?;
        let errors: Vec<PolicyValueError> = pairs.iter().filter_map(|(k, v)| layer.set(k, v).err()).collect();
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        self.put_layer(ws, scope, &layer)?;
        Ok(Ok(layer))
    }

    /// The policy in force for a channel: defaults < workspace < channel.
    pub fn effective(&self, ws: &WorkspaceId, channel: &ChannelId) -> Result<Policy, StoreError> {
        let mut p = Policy::default();
        self.layer(ws, &Scope::Workspace)?.apply(&mut p);
        self.layer(ws, &Scope::Channel(channel.clone()))?.apply(&mut p);
        Ok(p)
    }

    /// Every stored layer of a workspace: `("*", layer)` for the workspace defaults.
    pub fn list(&self, ws: &WorkspaceId) -> Result<Vec<(String, PolicyLayer)>, StoreError> {
        let prefix = prefix1(ws.as_str());
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            let scope = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((scope, serde_json::from_slice(&v).map_err(corrupt)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_threshold_is_the_shipped_models_recommendation() {
        let m = crate::engine::confidence::ConfidenceModel::shipped().expect("the shipped model parses");
        assert!(
            (super::DEFAULT_THRESHOLD - m.recommended_threshold).abs() < 0.005,
            "DEFAULT_THRESHOLD {} but the shipped model recommends {:.3}",
            super::DEFAULT_THRESHOLD,
            m.recommended_threshold
        );
    }

    use super::*;

    fn ids() -> (WorkspaceId, ChannelId, ChannelId) {
        (WorkspaceId::new("T1").unwrap(), ChannelId::new("C1").unwrap(), ChannelId::new("C2").unwrap())
    }

    #[test]
    fn channel_overrides_workspace_overrides_defaults() {
        let store = Store::temporary().unwrap();
        let policies = PolicyStore::open(&store).unwrap();
        let (ws, c1, c2) = ids();
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        policies
            .set(&ws, &Scope::Workspace, &pairs(&[("confidence_threshold", "0.7"), ("escalation_target", "@support")]))
            .unwrap()
            .unwrap();
        policies
            .set(&ws, &Scope::Channel(c1.clone()), &pairs(&[("mode", "suggest"), ("products", "billing, api")]))
            .unwrap()
            .unwrap();
        let p1 = policies.effective(&ws, &c1).unwrap();
        assert_eq!(p1.mode, PolicyMode::Suggest);
        assert_eq!(p1.confidence_threshold, 0.7);
        assert_eq!(p1.products, vec!["billing", "api"]);
        assert_eq!(p1.escalation_target.as_deref(), Some("@support"));
        let p2 = policies.effective(&ws, &c2).unwrap();
        assert_eq!(p2.mode, PolicyMode::Answer);
        assert_eq!(p2.confidence_threshold, 0.7);
        // Another workspace sees only defaults.
        let other = policies.effective(&WorkspaceId::new("T2").unwrap(), &c1).unwrap();
        assert_eq!(other, Policy::default());
        assert_eq!(policies.list(&ws).unwrap().len(), 2);
    }

    #[test]
    fn bad_values_are_all_reported_and_nothing_is_stored() {
        let store = Store::temporary().unwrap();
        let policies = PolicyStore::open(&store).unwrap();
        let (ws, c1, _) = ids();
        let pairs = vec![
            ("mode".to_string(), "loud".to_string()),
            ("confidence_threshold".to_string(), "2".to_string()),
            ("enabled".to_string(), "false".to_string()),
            ("colour".to_string(), "red".to_string()),
        ];
        let errors = policies.set(&ws, &Scope::Channel(c1.clone()), &pairs).unwrap().unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(policies.effective(&ws, &c1).unwrap().enabled);
    }

    #[test]
    fn link_domains_take_domain_names_only() {
        let mut layer = PolicyLayer::default();
        layer.set("link_domains", "Help.Example.com, *.status.example.org").unwrap();
        assert_eq!(layer.link_domains, Some(vec!["help.example.com".to_string(), "status.example.org".to_string()]));
        for bad in ["https://example.com", "example.com/docs", "localhost", "exa mple.com", "-x.com"] {
            let e = layer.clone().set("link_domains", bad).unwrap_err();
            assert_eq!(e.key, "link_domains", "{bad}");
            assert!(e.message.contains("is not a domain name"), "{bad}: {e}");
        }
        let mut policy = Policy::default();
        layer.apply(&mut policy);
        assert_eq!(policy.link_domains.len(), 2);
    }

    #[test]
    fn none_clears_an_optional_value() {
        let mut layer = PolicyLayer::default();
        layer.set("escalation_target", "@oncall").unwrap();
        layer.set("escalation_target", "none").unwrap();
        let mut p = Policy { escalation_target: Some("x".into()), ..Policy::default() };
        layer.apply(&mut p);
        assert_eq!(p.escalation_target, None);
    }

    #[test]
    fn auto_tier_routes_easy_questions_to_the_cheap_model() {
        let p = Policy { model_tier: TierPolicy::Auto, ..Policy::default() };
        assert_eq!(p.tier(true), ModelTier::Cheap);
        assert_eq!(p.tier(false), ModelTier::Standard);
    }
}
