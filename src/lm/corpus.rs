//! The two text corpora, read from the Debian packages `scripts/setup.sh` installs (never
//! committed), and their split by file into train / validation / test.
//!
//! - `code`: the Python 3.11 standard library sources (`libpython3.11-stdlib`), every `.py`
//!   under `/usr/lib/python3.11` (about 13 MB).
//! - `prose`: the Linux 6.1 kernel documentation (`linux-doc-6.1`), every `.rst` and `.txt`
//!   under `/usr/share/doc/linux-doc-6.1/Documentation`, gzip-compressed as Debian ships them
//!   (about 24 MB of reStructuredText).
//!
//! A file's part is a pure function of its path relative to the corpus root (a 64-bit FNV-1a
//! hash, 95 / 2.5 / 2.5 in thousandths), so the split is disjoint by construction and the same on
//! every machine whatever else the package directory holds.

use super::error::LmError;
pub use super::study::SplitFiles;
use super::tokens;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Which corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorpusName {
    /// Python standard library sources.
    Code,
    /// Kernel documentation (reStructuredText).
    Prose,
}

impl CorpusName {
    /// Both corpora.
    pub const ALL: [CorpusName; 2] = [CorpusName::Code, CorpusName::Prose];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            CorpusName::Code => "code",
            CorpusName::Prose => "prose",
        }
    }

    /// The corpus of CLI name `s`.
    pub fn from_name(s: &str) -> Option<CorpusName> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            CorpusName::Code => "libpython3.11-stdlib",
            CorpusName::Prose => "linux-doc-6.1",
        }
    }

    /// Where the package puts it.
    pub fn default_root(self) -> &'static str {
        match self {
            CorpusName::Code => "/usr/lib/python3.11",
            CorpusName::Prose => "/usr/share/doc/linux-doc-6.1/Documentation",
        }
    }

    /// Whether the file at `rel` (relative to the root) belongs to the corpus.
    pub fn accepts(self, rel: &str) -> bool {
        match self {
            CorpusName::Code => rel.ends_with(".py"),
            CorpusName::Prose => [".rst", ".txt", ".rst.gz", ".txt.gz"]
                .iter()
                .any(|e| rel.ends_with(e)),
        }
    }
}

/// The three disjoint parts of a corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Training text (95% of files).
    Train,
    /// Validation text: early stopping (2.5%).
    Validation,
    /// Test text: every reported perplexity (2.5%).
    Test,
}

/// The part of the file at relative path `rel`: FNV-1a 64 of the path, in thousandths.
pub fn part_of(rel: &str) -> Part {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    match h % 1000 {
        0..25 => Part::Validation,
        25..50 => Part::Test,
        _ => Part::Train,
    }
}

/// A loaded corpus: each part as one token stream (files in path order, each led by BOS).
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Which corpus.
    pub name: CorpusName,
    /// Where it was read from.
    pub root: PathBuf,
    /// The files of each part.
    pub files: SplitFiles,
    /// Training tokens.
    pub train: Vec<u16>,
    /// Validation tokens.
    pub validation: Vec<u16>,
    /// Test tokens.
    pub test: Vec<u16>,
}

/// The error for a corpus whose root is missing: names the package that installs it.
fn missing(name: CorpusName, root: &Path, custom: bool) -> LmError {
    if custom {
        LmError::Usage(format!(
            "invalid --corpus-dir: {} is not a directory",
            root.display()
        ))
    } else {
        LmError::Usage(format!(
            "invalid --corpus: the {} corpus is not installed ({} missing); install the Debian \
             package {} (scripts/setup.sh does) or pass --corpus-dir",
            name.name(),
            root.display(),
            name.package()
        ))
    }
}

/// Every file of corpus `name` under `root`, relative and sorted.
pub fn list_files(name: CorpusName, root: &Path) -> Result<Vec<String>, LmError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| LmError::Runtime(format!("cannot list the corpus: {e}")))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if name.accepts(&rel) {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// The bytes of one file, gunzipped when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<Vec<u8>, LmError> {
    let raw = std::fs::read(path)
        .map_err(|e| LmError::Runtime(format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| LmError::Runtime(format!("cannot gunzip {}: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

impl Corpus {
    /// Reads corpus `name` from `root` (its package's directory when `None`). A missing root
    /// is bad input naming the package; a part without files is bad input too.
    pub fn load(name: CorpusName, root: Option<&Path>) -> Result<Corpus, LmError> {
        match root {
            Some(r) => Corpus::load_at(name, r, true),
            None => Corpus::load_at(name, Path::new(name.default_root()), false),
        }
    }

    /// Reads corpus `name` from `root`; `custom` says the user named the directory (else a
    /// missing directory means a missing package, and the error names it).
    pub fn load_at(name: CorpusName, root: &Path, custom: bool) -> Result<Corpus, LmError> {
        let root = root.to_path_buf();
        if !root.is_dir() {
            return Err(missing(name, &root, custom));
        }
        let mut files = SplitFiles::default();
        let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for rel in list_files(name, &root)? {
            let t = tokens::encode(&read_file(&root.join(&rel))?);
            let (list, stream) = match part_of(&rel) {
                Part::Train => (&mut files.train, &mut train),
                Part::Validation => (&mut files.validation, &mut validation),
                Part::Test => (&mut files.test, &mut test),
            };
            list.push(rel);
            stream.extend(t);
        }
        for (part, list) in [
            ("training", &files.train),
            ("validation", &files.validation),
            ("test", &files.test),
        ] {
            if list.is_empty() {
                return Err(LmError::Usage(format!(
                    "invalid --corpus-dir: {} has no {part} files of the {} corpus ({})",
                    root.display(),
                    name.name(),
                    match name {
                        CorpusName::Code => "*.py",
                        CorpusName::Prose => "*.rst, *.txt, gzipped or not",
                    }
                )));
            }
        }
        Ok(Corpus {
            name,
            root,
            files,
            train,
            validation,
            test,
        })
    }
}
