//! A rejected configuration value, named by its key so that each caller can say it in its own
//! words: `--beta-fast` on the command line, `rope_scaling.beta_fast` in a config.json, the
//! control's label in the UI. The library itself never spells a caller's syntax.

use std::fmt;

/// One piece of an error message: plain text, or a reference to another field by key (rendered
/// by the caller, like the field the error is about).
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// Another field, by key (e.g. `low_freq_factor` in "must be greater than ...").
    Field(&'static str),
}

/// A rejected configuration value: which field (by key), and why, with its valid range.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The field's key: the `snake_case` name of the [`crate::rope::ScheduleConfig`] field or
    /// of the option it belongs to (e.g. `beta_fast`, `train_len`, `stop_every`).
    pub field: &'static str,
    /// What is wrong and what is valid, possibly naming other fields.
    pub parts: Vec<Part>,
}

impl ConfigError {
    /// An error about `field` with a plain-text message.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            parts: vec![Part::Text(message.into())],
        }
    }

    /// An error about `field` whose message names other fields (`Part::Field`).
    pub fn with_parts(field: &'static str, parts: Vec<Part>) -> Self {
        ConfigError { field, parts }
    }

    /// The message alone, with every field named by `name`.
    pub fn message_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field(k) => name(k),
            })
            .collect()
    }

    /// `invalid <field>: <message>`, every field (this one and those the message names) said
    /// by `name`: a caller's words for a key.
    pub fn render(&self, name: &dyn Fn(&'static str) -> String) -> String {
        format!("invalid {}: {}", name(self.field), self.message_with(name))
    }
}

/// The library's own form: fields by key, e.g. `invalid beta_fast: must be ...`.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&|k| k.to_string()))
    }
}

impl std::error::Error for ConfigError {}
