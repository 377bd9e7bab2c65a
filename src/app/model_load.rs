//! A config.json to import, as every way of loading one hands it to the app (the model panel,
//! a dropped file, the page's `loadConfig`): the message type of [`super::commands::AppCommand::LoadModel`].

use crate::rope::hf_config::{self, ImportError, ImportOptions, ModelRope};

/// A config to import: its text, a name for configs that carry none, and the layer type to read.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelLoad {
    /// The config.json text.
    pub text: String,
    /// The name used when the config has neither `_name_or_path` nor `model_type` (a file name).
    pub fallback_name: String,
    /// The layer type to read (`None`: the full-attention one, or the only one).
    pub layer_type: Option<String>,
    /// Where the text came from, for the status message (`pasted`, `dropped file x.json`, ...).
    pub origin: String,
}

impl ModelLoad {
    /// Imports the config (pure: no app state involved).
    pub fn import(&self) -> Result<ModelRope, ImportError> {
        let opts = ImportOptions {
            layer_type: self.layer_type.clone(),
            ..ImportOptions::default()
        };
        hf_config::parse_config(&self.text, &self.fallback_name, &opts)
    }
}
