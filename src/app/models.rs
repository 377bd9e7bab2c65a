//! The built-in model list: RoPE-relevant subsets of well-known public models' published
//! `config.json` files, kept in `assets/models/` with `index.json` naming, for each, its hub
//! page and where its values were confirmed. They are compiled in, so the list works offline
//! and on a static page.

use serde::Deserialize;
use std::sync::OnceLock;

/// One built-in model.
#[derive(Debug, Deserialize)]
pub struct BuiltinModel {
    /// The file in `assets/models/`.
    pub file: String,
    /// The display name, e.g. `Llama 3.1 8B`.
    pub label: String,
    /// The Hugging Face model id (the config's `_name_or_path`).
    pub model_id: String,
    /// The published config.json on the hub.
    pub hub_url: String,
    /// Where the values were confirmed.
    pub source: String,
    /// One sentence on the model's RoPE.
    pub note: String,
    /// The config text (filled from [`FILES`]).
    #[serde(skip)]
    pub config: &'static str,
}

const INDEX: &str = include_str!("../../assets/models/index.json");

/// Every config file of `assets/models/`, by file name (a test checks this against the folder
/// and the index).
pub const FILES: &[(&str, &str)] = &[
    (
        "deepseek-v3.json",
        include_str!("../../assets/models/deepseek-v3.json"),
    ),
    (
        "gemma-3-1b-it.json",
        include_str!("../../assets/models/gemma-3-1b-it.json"),
    ),
    (
        "gemma-3-4b-it.json",
        include_str!("../../assets/models/gemma-3-4b-it.json"),
    ),
    (
        "gpt-oss-20b.json",
        include_str!("../../assets/models/gpt-oss-20b.json"),
    ),
    (
        "llama-2-7b.json",
        include_str!("../../assets/models/llama-2-7b.json"),
    ),
    (
        "llama-3.1-8b.json",
        include_str!("../../assets/models/llama-3.1-8b.json"),
    ),
    (
        "llama-3.2-1b-instruct.json",
        include_str!("../../assets/models/llama-3.2-1b-instruct.json"),
    ),
    (
        "llama-3.2-3b.json",
        include_str!("../../assets/models/llama-3.2-3b.json"),
    ),
    (
        "mistral-7b-v0.1.json",
        include_str!("../../assets/models/mistral-7b-v0.1.json"),
    ),
    (
        "mixtral-8x7b-v0.1.json",
        include_str!("../../assets/models/mixtral-8x7b-v0.1.json"),
    ),
    (
        "phi-3.5-mini-instruct.json",
        include_str!("../../assets/models/phi-3.5-mini-instruct.json"),
    ),
    (
        "qwen2.5-7b-instruct.json",
        include_str!("../../assets/models/qwen2.5-7b-instruct.json"),
    ),
    (
        "qwen3-8b.json",
        include_str!("../../assets/models/qwen3-8b.json"),
    ),
];

/// The built-in models in display order (an entry whose file is missing from [`FILES`] is left
/// out; a test makes sure there is none).
pub fn all() -> &'static [BuiltinModel] {
    static ALL: OnceLock<Vec<BuiltinModel>> = OnceLock::new();
    ALL.get_or_init(|| {
        let list: Vec<BuiltinModel> = serde_json::from_str(INDEX).unwrap_or_default();
        list.into_iter()
            .filter_map(|mut m| {
                let (_, text) = FILES.iter().find(|(f, _)| *f == m.file)?;
                m.config = text;
                Some(m)
            })
            .collect()
    })
}

/// The built-in model whose id is `model_id`.
pub fn find(model_id: &str) -> Option<&'static BuiltinModel> {
    all().iter().find(|m| m.model_id == model_id)
}

/// The built-in model a link names: by its id (`meta-llama/Llama-3.1-8B`), the id without its
/// owner (`Llama-3.1-8B`) or its label (`Llama 3.1 8B`), ignoring case.
pub fn find_by_name(name: &str) -> Option<&'static BuiltinModel> {
    let n = name.trim();
    find(n).or_else(|| {
        all().iter().find(|m| {
            let short = m.model_id.rsplit('/').next().unwrap_or(&m.model_id);
            m.model_id.eq_ignore_ascii_case(n)
                || short.eq_ignore_ascii_case(n)
                || m.label.eq_ignore_ascii_case(n)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rope::hf_config::{ImportOptions, parse_config};

    #[test]
    fn the_index_the_folder_and_the_compiled_files_agree() {
        let index: Vec<BuiltinModel> = serde_json::from_str(INDEX).unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/models");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".json") && f != "index.json")
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        compiled.sort();
        let mut indexed: Vec<String> = index.iter().map(|m| m.file.clone()).collect();
        indexed.sort();
        assert_eq!(compiled, on_disk);
        assert_eq!(indexed, on_disk);
        assert_eq!(all().len(), index.len());
        assert!(all().len() >= 10, "at least ten built-in models");
    }

    #[test]
    fn every_builtin_imports_under_its_own_id_and_names_its_source() {
        for m in all() {
            let r = parse_config(m.config, "x", &ImportOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", m.file));
            assert_eq!(r.name, m.model_id, "{}", m.file);
            assert!(
                m.hub_url.starts_with("https://huggingface.co/") && m.hub_url.contains(&m.model_id),
                "{}",
                m.file
            );
            assert!(!m.source.is_empty() && !m.label.is_empty(), "{}", m.file);
            for t in &r.layer_types {
                let opts = ImportOptions {
                    layer_type: Some(t.clone()),
                    ..ImportOptions::default()
                };
                parse_config(m.config, "x", &opts)
                    .unwrap_or_else(|e| panic!("{} {t}: {e}", m.file));
            }
        }
    }
}
