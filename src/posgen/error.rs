//! Why a PosGen operation failed: bad input (the caller can fix it; the CLI exits 2) or a
//! runtime failure of the tensor library (the CLI exits 1 with its message).

use crate::rope::ConfigError;
use std::fmt;

/// A PosGen failure, split by who can fix it.
#[derive(Clone, Debug, PartialEq)]
pub enum PosgenError {
    /// A rejected option or value; names the option and its valid range.
    Config(ConfigError),
    /// A failure while building or running the model (tensor shapes, allocation, ...).
    Runtime(String),
}

impl fmt::Display for PosgenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PosgenError::Config(e) => e.fmt(f),
            PosgenError::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PosgenError {}

impl From<ConfigError> for PosgenError {
    fn from(e: ConfigError) -> Self {
        PosgenError::Config(e)
    }
}

impl From<candle_core::Error> for PosgenError {
    fn from(e: candle_core::Error) -> Self {
        PosgenError::Runtime(e.to_string())
    }
}
