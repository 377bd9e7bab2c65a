//! The method registry: one file per frequency schedule, listed once below. Each file declares
//! everything about its method in one [`MethodDef`](crate::rope::config::MethodDef): names,
//! label, parameters, the f32 formula in transformers' operation order and its f64 twin, the
//! attention factor, how it reads a Hugging Face config and its docs section. The CLI's flags,
//! the UI's controls, the permalink, the importer, the docs table and the tests all read the
//! registry, so a new method is a new file plus one line here.

pub mod common;

use super::config::{Method, Param};
use super::params::CORE;
use serde::{Deserialize, Deserializer};

/// Declares the method modules and [`Method::ALL`] from one list of `module => CONSTANT`.
macro_rules! registry {
    ($($module:ident => $konst:ident),* $(,)?) => {
        $(pub mod $module;)*

        impl Method {
            /// Every method, in the order pickers list them.
            pub const ALL: &'static [Method] = &[$(Method::$konst),*];
        }
    };
}

registry! {
    rope => ROPE,
    pi => PI,
    ntk => NTK,
    dynamic_ntk => DYNAMIC_NTK,
    yarn => YARN,
    llama3 => LLAMA3,
    longrope => LONGROPE,
    proportional => PROPORTIONAL,
    nope => NOPE,
    clip => CLIP,
}

impl Method {
    /// The method of a name: its id or one of its aliases (transformers' `rope_type` names).
    pub fn from_name(name: &str) -> Option<Method> {
        let m = Method::ALL.iter().find(|m| m.name() == name);
        m.or_else(|| Method::ALL.iter().find(|m| m.def().aliases.contains(&name)))
            .copied()
    }

    /// The method transformers computes for a `rope_type` (as in a model's config.json).
    pub fn from_transformers_type(rope_type: &str) -> Option<Method> {
        Method::ALL
            .iter()
            .find(|m| m.def().transformers_type == Some(rope_type))
            .copied()
    }

    /// Every accepted name, ids first then aliases (for "known: ..." messages and pickers).
    pub fn names() -> Vec<&'static str> {
        let ids = Method::ALL.iter().map(|m| m.name());
        let aliases = Method::ALL
            .iter()
            .flat_map(|m| m.def().aliases.iter().copied());
        ids.chain(aliases).collect()
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let name = String::deserialize(d)?;
        Method::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown method '{name}'; known: {}",
                Method::names().join(", ")
            ))
        })
    }
}

/// Every parameter: the shared core, then each method's own in registry order, each once.
pub fn all_params() -> Vec<&'static Param> {
    let mut out: Vec<&'static Param> = CORE.to_vec();
    for m in Method::ALL {
        for &p in m.def().params {
            if !out.iter().any(|q| q.key == p.key) {
                out.push(p);
            }
        }
    }
    out
}

/// The parameter of a key.
pub fn param(key: &str) -> Option<&'static Param> {
    all_params().into_iter().find(|p| p.key == key)
}

/// The methods table of docs/schedules.md, generated from the registry (a test checks that the
/// committed page holds exactly this).
pub fn docs_table() -> String {
    let mut s = String::from(
        "| method | label | transformers `rope_type` | parameters beyond the core | what it does |\n\
         |---|---|---|---|---|\n",
    );
    for m in Method::ALL {
        let d = m.def();
        let anchor = d.docs_anchor.split('#').nth(1).unwrap_or("");
        let names = std::iter::once(d.id)
            .chain(d.aliases.iter().copied())
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let params = d
            .params
            .iter()
            .map(|p| format!("`{}`", p.key))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "| [{names}](#{anchor}) | {} | {} | {} | {} |\n",
            d.label,
            d.transformers_type
                .map(|t| format!("`{t}`"))
                .unwrap_or_else(|| "none".into()),
            if params.is_empty() {
                "none".into()
            } else {
                params
            },
            d.summary
        ));
    }
    s
}

pub use yarn::{correction_range as yarn_correction_range, get_mscale};
