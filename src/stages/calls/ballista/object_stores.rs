//! How every member of a cluster reads `s3://` call files: an object store registry that
//! builds a bucket's store from the member's own environment the first time a URL of it is
//! asked for.
//!
//! Takes the S3 settings (the client's: job file and environment; a scheduler's or executor's:
//! its environment); gives [`S3Registry`], installed in the client's session, the scheduler's
//! session builder and the executors' runtime, so a cluster needs no shared disk and no key
//! ever travels between members (each has its own `AWS_*`).

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use object_store::ObjectStore;
use url::Url;

use crate::storage::{S3Client, S3Settings};

/// Local files as DataFusion reads them, and S3 buckets built on demand.
#[derive(Debug)]
pub(crate) struct S3Registry {
    known: DefaultObjectStoreRegistry,
    settings: S3Settings,
}

impl S3Registry {
    pub(crate) fn new(settings: S3Settings) -> S3Registry {
        S3Registry {
            known: DefaultObjectStoreRegistry::new(),
            settings,
        }
    }

    /// A registry with the settings this process's environment gives (a cluster member's).
    pub(crate) fn from_environment() -> Result<S3Registry> {
        let settings = S3Settings::default()
            .with_environment(&|name| std::env::var(name).ok())
            .map_err(DataFusionError::Configuration)?;
        Ok(S3Registry::new(settings))
    }

    /// A runtime whose object stores are this registry's; `temp` is where it spills.
    pub(crate) fn runtime(self, temp: Option<&str>) -> Result<Arc<RuntimeEnv>> {
        let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(self));
        if let Some(temp) = temp {
            builder = builder.with_temp_file_path(temp);
        }
        Ok(Arc::new(builder.build()?))
    }
}

impl ObjectStoreRegistry for S3Registry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let bucket = match (url.scheme(), url.host_str()) {
            ("s3", Some(bucket)) => bucket,
            _ => return self.known.get_store(url),
        };
        let store = S3Client::store_for_another_runtime(bucket, &self.settings).map_err(|e| {
            DataFusionError::Configuration(format!("cannot read `s3://{bucket}`: {e}"))
        })?;
        let bucket_url = Url::parse(&format!("s3://{bucket}"))
            .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        self.known.register_store(&bucket_url, Arc::clone(&store));
        Ok(store)
    }
}
