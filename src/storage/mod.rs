//! Where the inputs live: a local folder, or a prefix in an S3 object store
//! (`--data s3://bucket/prefix`, AWS S3, Tencent COS, MinIO).
//!
//! Takes `--data` as given and the S3 settings; gives [`DataRoot`]. For a prefix, [`s3`] lists,
//! reads ranges of and hashes the objects through one client ([`s3_error`] names what
//! failed), and [`sparse`] lets polars' Parquet reader decode the ranges fetched as if it held
//! the whole file. The output folder is always local: its atomic rename is what makes a
//! ledger trustworthy.

pub mod s3;
pub mod s3_error;
pub mod sparse;
pub mod url;

use std::fmt;
use std::path::PathBuf;

pub use s3::{ObjectVersion, S3Client, S3Error, S3Settings};
pub use url::S3Url;

/// The data directory of SPEC §2, wherever it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataRoot {
    Folder(PathBuf),
    Objects { url: S3Url, settings: S3Settings },
}

impl DataRoot {
    /// The local folder, when the inputs are in one.
    pub fn folder(&self) -> Option<&std::path::Path> {
        match self {
            DataRoot::Folder(path) => Some(path),
            DataRoot::Objects { .. } => None,
        }
    }
}

impl DataRoot {
    /// As the manifest records it: the folder as given (provenance), or the URL.
    pub fn recorded(&self) -> String {
        match self {
            DataRoot::Folder(path) => path.display().to_string(),
            DataRoot::Objects { url, .. } => url.to_string(),
        }
    }
}

impl fmt::Display for DataRoot {
    /// The folder as a person reads it, or the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataRoot::Folder(path) => write!(f, "{}", crate::paths::shown(path)),
            DataRoot::Objects { url, .. } => write!(f, "{url}"),
        }
    }
}
