//! Why a language-model operation failed: bad input (the CLI exits 2 with one line) or a
//! runtime failure (exit 1).

use std::fmt;

/// A language-model failure, split by who can fix it.
#[derive(Clone, Debug, PartialEq)]
pub enum LmError {
    /// Bad input: a missing corpus, an option out of range, a checkpoint of another preset.
    Usage(String),
    /// A failure while running (tensor library, file system).
    Runtime(String),
}

impl fmt::Display for LmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmError::Usage(m) | LmError::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LmError {}

impl From<candle_core::Error> for LmError {
    fn from(e: candle_core::Error) -> Self {
        LmError::Runtime(e.to_string())
    }
}

impl From<crate::rope::ConfigError> for LmError {
    fn from(e: crate::rope::ConfigError) -> Self {
        LmError::Usage(e.to_string())
    }
}
