//! The data directory opened: a local folder, or an S3 prefix and the client that reads it.
//!
//! Takes a [`DataRoot`]; gives [`DataSource`], what every table reader looks in, and
//! [`Origin`], where one input file is (a path, or a listed object version).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{InputError, Location};
use crate::storage::{DataRoot, ObjectVersion, S3Client, S3Error};

/// Where the tables are looked for.
#[derive(Debug, Clone)]
pub enum DataSource {
    Folder(PathBuf),
    Objects(Arc<S3Client>),
}

impl DataSource {
    /// Opens `root`; for a prefix, builds its client (no request is made yet).
    pub fn open(root: &DataRoot) -> Result<DataSource, InputError> {
        match root {
            DataRoot::Folder(path) => Ok(DataSource::Folder(path.clone())),
            DataRoot::Objects { url, settings } => S3Client::connect(url, settings)
                .map(|client| DataSource::Objects(Arc::new(client)))
                .map_err(|problem| {
                    InputError::new(Location::file(url.to_string()), problem).hint(
                        "S3 keys come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); see the README's \"Data in object storage\"",
                    )
                }),
        }
    }

    /// The folder as a person reads it, or the URL.
    pub fn shown(&self) -> String {
        match self {
            DataSource::Folder(path) => crate::paths::shown(path),
            DataSource::Objects(client) => client.root().to_string(),
        }
    }
}

/// Where one input file is.
#[derive(Debug, Clone)]
pub enum Origin {
    File(PathBuf),
    Object {
        client: Arc<S3Client>,
        version: ObjectVersion,
    },
}

/// An S3 failure as an input problem at `shown` (the file's name relative to the data root).
pub fn object_problem(shown: impl Into<PathBuf>, err: S3Error) -> InputError {
    let hint = err.hint();
    InputError::new(Location::file(shown), err.to_string()).hint(hint)
}
