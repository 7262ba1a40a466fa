//! The run's S3 client: lists a prefix, reads whole objects or ranges of them, and hashes them,
//! always of the one version listed.
//!
//! Takes an [`S3Url`] and [`S3Settings`] (non-secret: the job file's `[s3]` keys with the
//! environment's `AWS_*` over them); the keys are read from the environment when the client is
//! built and live only inside it, so no message, log line or manifest can hold them. Gives
//! [`S3Client`] and [`ObjectVersion`]s. Requests are retried with backoff on 5xx answers,
//! timeouts and refused connections; anything else (403, 404, a missing bucket) is an
//! [`S3Error`] at once, naming the URL and S3's error code and never the body of S3's answer
//! (which can echo the access key id). Every read asks for the listed ETag (`If-Match`) and
//! checks the one answered, so an object replaced during a run fails it.

use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, RetryConfig,
};
use sha2::{Digest, Sha256};

pub use super::s3_error::S3Error;
use super::s3_error::S3ErrorKind;
use super::url::S3Url;

/// Retries of one request before it fails, unless `[s3] max_retries` says otherwise.
pub const DEFAULT_MAX_RETRIES: usize = 5;
/// Seconds one request may take, unless `[s3] timeout_secs` says otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Ranges closer than this are fetched in one request.
const COALESCE_BYTES: u64 = 1 << 20;

/// How to reach the object store; nothing here is secret. Also the job file's `[s3]` table,
/// whose unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL`: the server, for anything but AWS itself (COS, MinIO).
    pub endpoint: Option<String>,
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_ALLOW_HTTP`: plain HTTP to the endpoint (a loopback or in-cluster server).
    pub allow_http: Option<bool>,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`: the bucket in the host name (COS, AWS) rather than
    /// in the path (MinIO). Default: virtual-hosted without an endpoint, path style with one.
    pub virtual_hosted_style: Option<bool>,
    pub max_retries: Option<usize>,
    pub timeout_secs: Option<u64>,
}

impl S3Settings {
    /// These settings with every one the environment sets put over them (as every S3 tool
    /// reads them, the environment wins over a file).
    pub fn with_environment(
        mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Settings, String> {
        let var = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
        if let Some(endpoint) = var(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]) {
            self.endpoint = Some(endpoint);
        }
        if let Some(region) = var(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
            self.region = Some(region);
        }
        for (name, slot) in [
            ("AWS_ALLOW_HTTP", &mut self.allow_http),
            (
                "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
                &mut self.virtual_hosted_style,
            ),
        ] {
            if let Some(text) = var(&[name]) {
                *slot = Some(parse_bool(&text).ok_or_else(|| {
                    format!(
                        "{name} is `{}`; expected `true` or `false`",
                        crate::text::shown(&text)
                    )
                })?);
            }
        }
        Ok(self)
    }

    fn virtual_hosted(&self) -> bool {
        self.virtual_hosted_style.unwrap_or(self.endpoint.is_none())
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The endpoint a virtual-hosted request goes to: the bucket put in front of the endpoint's
/// host, as AWS's own tools do (`https://cos.ap-guangzhou.myqcloud.com` →
/// `https://logs.cos.ap-guangzhou.myqcloud.com`).
fn bucket_endpoint(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{}", host.trim_end_matches('/')),
        None => format!("{bucket}.{}", endpoint.trim_end_matches('/')),
    }
}

/// One version of one object, as listed (or looked up) before it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub url: S3Url,
    pub size: u64,
    pub etag: Option<String>,
    /// When the store says it was last written, to tell versions apart where it gives no ETag.
    pub last_modified_ns: i64,
}

impl ObjectVersion {
    fn of(url: S3Url, meta: &ObjectMeta) -> ObjectVersion {
        ObjectVersion {
            url,
            size: meta.size,
            etag: meta.e_tag.clone(),
            last_modified_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX),
        }
    }

    fn same_as(&self, meta: &ObjectMeta) -> bool {
        self.matches(
            &meta.e_tag,
            meta.size,
            meta.last_modified.timestamp_nanos_opt(),
        )
    }

    /// Whether `now` (looked up later) is still this version.
    pub fn is_still(&self, now: &ObjectVersion) -> bool {
        self.matches(&now.etag, now.size, Some(now.last_modified_ns))
    }

    fn matches(&self, etag: &Option<String>, size: u64, last_modified_ns: Option<i64>) -> bool {
        match (&self.etag, etag) {
            (Some(was), Some(now)) => was == now && self.size == size,
            // Without ETags, the time, to the second (a header's precision; a listing's is finer).
            _ => {
                let seconds = |ns: i64| ns.div_euclid(1_000_000_000);
                self.size == size
                    && last_modified_ns
                        .is_some_and(|ns| seconds(ns) == seconds(self.last_modified_ns))
            }
        }
    }
}

/// The keys, read from the environment when a client is built and handed to it.
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    fn from_environment() -> Result<Credentials, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            }),
            _ => Err("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set".into()),
        }
    }
}

/// A client for one bucket, reading below one prefix.
pub struct S3Client {
    store: Arc<AmazonS3>,
    root: S3Url,
    settings: S3Settings,
}

impl std::fmt::Debug for S3Client {
    /// The URL only: the store's own `Debug` would print the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Client({})", self.root)
    }
}

impl S3Client {
    /// A client for `root`'s bucket; checks nothing on the network (the first request does).
    pub fn connect(root: &S3Url, settings: &S3Settings) -> Result<S3Client, String> {
        Ok(S3Client {
            store: Arc::new(build_store(&root.bucket, settings)?),
            root: root.clone(),
            settings: settings.clone(),
        })
    }

    /// The prefix this client reads below.
    pub fn root(&self) -> &S3Url {
        &self.root
    }

    /// The settings it was built with (nothing secret).
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// A store for the same bucket with the same settings, for another async runtime (an
    /// engine's own): a connection pool belongs to the runtime that opened it.
    pub fn store_for_another_runtime(
        bucket: &str,
        settings: &S3Settings,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        Ok(Arc::new(build_store(bucket, settings)?))
    }

    /// Every object below `name` (a folder relative to the root), recursively, in key order;
    /// the store pages through the listing (ListObjectsV2) itself.
    pub fn list(&self, name: &str) -> Result<Vec<(String, ObjectVersion)>, S3Error> {
        let folder = self.root.join(name);
        let store = Arc::clone(&self.store);
        let prefix = ObjectPath::from(folder.prefix.as_str());
        let listed = run(async move {
            let mut stream = store.list(Some(&prefix));
            let mut all = Vec::new();
            while let Some(meta) = stream.next().await {
                all.push(meta?);
            }
            Ok::<_, object_store::Error>(all)
        });
        let listed = listed
            .map_err(|e| S3Error::new("list", &folder, &e))?
            .map_err(|e| S3Error::new("list", &folder, &e))?;
        let root_key = if self.root.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.root.prefix)
        };
        let mut objects = Vec::with_capacity(listed.len());
        for meta in &listed {
            let Some(relative) = meta.location.as_ref().strip_prefix(&root_key) else {
                continue;
            };
            let url = self.root.join(relative);
            // A store whose listing gives no ETag (some S3-compatible servers) is asked for it.
            let version = match &meta.e_tag {
                Some(_) => ObjectVersion::of(url, meta),
                None => self.head_url(&url)?.ok_or_else(|| S3Error {
                    action: "read",
                    url: url.to_string(),
                    reason: "it was deleted while the run listed it".into(),
                    kind: S3ErrorKind::NotFound,
                })?,
            };
            objects.push((relative.to_string(), version));
        }
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(objects)
    }

    /// The object at `name` (relative to the root), or `None` when there is none.
    pub fn head(&self, name: &str) -> Result<Option<ObjectVersion>, S3Error> {
        let url = self.root.join(name);
        self.head_url(&url)
    }

    fn head_url(&self, url: &S3Url) -> Result<Option<ObjectVersion>, S3Error> {
        let store = Arc::clone(&self.store);
        let path = ObjectPath::from(url.prefix.as_str());
        let found = run(async move {
            let options = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            store.get_opts(&path, options).await.map(|r| r.meta)
        })
        .map_err(|e| S3Error::new("look up", url, &e))?;
        match found {
            Ok(meta) => Ok(Some(ObjectVersion::of(url.clone(), &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(S3Error::new("look up", url, &e)),
        }
    }

    /// Fails unless the object is still `version`.
    pub fn check_unchanged(&self, version: &ObjectVersion) -> Result<(), S3Error> {
        match self.head_url(&version.url)? {
            Some(now) if version.is_still(&now) => Ok(()),
            Some(_) => Err(S3Error::changed("read", &version.url)),
            None => Err(S3Error {
                action: "read",
                url: version.url.to_string(),
                reason: "it was deleted while the run read it".into(),
                kind: S3ErrorKind::NotFound,
            }),
        }
    }

    /// The bytes of `ranges` of `version`, in the order asked; ranges close together travel in
    /// one request.
    pub fn get_ranges(
        &self,
        version: &ObjectVersion,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, S3Error> {
        let merged = merge_ranges(ranges, COALESCE_BYTES);
        let store = Arc::clone(&self.store);
        let path = ObjectPath::from(version.url.prefix.as_str());
        let (wanted, url) = (version.clone(), version.url.clone());
        let fetched = run(async move {
            let requests = merged.iter().map(|range| {
                let options = GetOptions {
                    if_match: wanted.etag.clone(),
                    range: Some(GetRange::Bounded(range.clone())),
                    ..GetOptions::default()
                };
                let (store, path, wanted) = (Arc::clone(&store), path.clone(), &wanted);
                async move {
                    let result = store.get_opts(&path, options).await?;
                    let same = wanted.same_as(&result.meta);
                    Ok::<_, object_store::Error>((same, result.bytes().await?))
                }
            });
            let parts = futures_util::future::try_join_all(requests).await?;
            Ok::<_, object_store::Error>((merged, parts))
        })
        .map_err(|e| S3Error::new("read", &url, &e))?
        .map_err(|e| S3Error::new("read", &url, &e))?;
        let (merged, parts) = fetched;
        if parts.iter().any(|(same, _)| !same) {
            return Err(S3Error::changed("read", &url));
        }
        ranges
            .iter()
            .map(|range| {
                // The merged range that holds `range`: the last one starting at or before it.
                let at = merged.partition_point(|m| m.start <= range.start).max(1) - 1;
                let (outer, (_, bytes)) = (&merged[at], &parts[at]);
                let from = (range.start - outer.start) as usize;
                let to = (range.end - outer.start) as usize;
                if range.start < outer.start || to > bytes.len() {
                    return Err(S3Error {
                        action: "read",
                        url: url.to_string(),
                        reason: format!(
                            "the server sent {} bytes for bytes {}..{}",
                            bytes.len(),
                            outer.start,
                            outer.end
                        ),
                        kind: S3ErrorKind::Other,
                    });
                }
                Ok(bytes.slice(from..to))
            })
            .collect()
    }

    /// The whole of `version`.
    pub fn get_all(&self, version: &ObjectVersion) -> Result<Bytes, S3Error> {
        if version.size == 0 {
            return Ok(Bytes::new());
        }
        let whole = 0..version.size;
        let mut parts = self.get_ranges(version, std::slice::from_ref(&whole))?;
        Ok(parts.pop().unwrap_or_default())
    }

    /// The size and SHA-256 (lowercase hex) of `version`, streamed, never held whole.
    pub fn sha256(&self, version: &ObjectVersion) -> Result<(u64, String), S3Error> {
        let store = Arc::clone(&self.store);
        let path = ObjectPath::from(version.url.prefix.as_str());
        let (wanted, url) = (version.clone(), version.url.clone());
        let hashed = run(async move {
            let options = GetOptions {
                if_match: wanted.etag.clone(),
                ..GetOptions::default()
            };
            let result = store.get_opts(&path, options).await?;
            let same = wanted.same_as(&result.meta);
            let mut stream = result.into_stream();
            let (mut hasher, mut bytes) = (Sha256::new(), 0u64);
            while let Some(part) = stream.next().await {
                let part = part?;
                bytes += part.len() as u64;
                hasher.update(&part);
            }
            Ok::<_, object_store::Error>((same, bytes, hasher.finalize()))
        })
        .map_err(|e| S3Error::new("hash", &url, &e))?
        .map_err(|e| S3Error::new("hash", &url, &e))?;
        let (same, bytes, digest) = hashed;
        if !same || bytes != version.size {
            return Err(S3Error::changed("hash", &url));
        }
        Ok((bytes, digest.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// `ranges` sorted and merged where less than `gap` bytes lie between them.
fn merge_ranges(ranges: &[Range<u64>], gap: u64) -> Vec<Range<u64>> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}

fn build_store(bucket: &str, settings: &S3Settings) -> Result<AmazonS3, String> {
    let keys = Credentials::from_environment()?;
    let timeout = Duration::from_secs(settings.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: settings.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        retry_timeout: timeout * 2,
    };
    let client = ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(Duration::from_secs(10).min(timeout))
        .with_allow_http(settings.allow_http.unwrap_or(false));
    let virtual_hosted = settings.virtual_hosted();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
        .with_access_key_id(keys.access_key_id)
        .with_secret_access_key(keys.secret_access_key)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_retry(retry)
        .with_client_options(client);
    if let Some(token) = keys.session_token {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = &settings.endpoint {
        let endpoint = if virtual_hosted {
            bucket_endpoint(endpoint, bucket)
        } else {
            endpoint.clone()
        };
        builder = builder.with_endpoint(endpoint);
    }
    // The builder's own error can quote its settings; say only what is wrong in general.
    builder.build().map_err(|e| {
        let text = e.to_string();
        let first = text
            .split(':')
            .next()
            .unwrap_or("invalid settings")
            .to_string();
        format!(
            "the S3 settings are not usable ({})",
            crate::text::shown(&first)
        )
    })
}

/// Drives `future` to its end on the client's runtime, from any thread, including a thread of
/// another async runtime (an engine's), where blocking on a runtime of one's own would panic.
fn run<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, object_store::Error> {
    let runtime = runtime().map_err(|reason| object_store::Error::Generic {
        store: "S3",
        source: reason.into(),
    })?;
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        sender.send(future.await).ok();
    });
    receiver.recv().map_err(|_| object_store::Error::Generic {
        store: "S3",
        source: "the request was dropped".into(),
    })
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sla-ledger-s3")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the S3 client's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_over_the_job_file_and_booleans_are_checked() {
        let file = S3Settings {
            endpoint: Some("http://file:9000".into()),
            region: Some("ap-guangzhou".into()),
            ..S3Settings::default()
        };
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".to_string()),
            "AWS_ALLOW_HTTP" => Some("true".to_string()),
            _ => None,
        };
        let settings = file.clone().with_environment(&env).unwrap();
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(settings.region.as_deref(), Some("ap-guangzhou"));
        assert_eq!(settings.allow_http, Some(true));
        assert!(
            !settings.virtual_hosted(),
            "an endpoint means path style by default"
        );
        let bad = |name: &str| (name == "AWS_VIRTUAL_HOSTED_STYLE_REQUEST").then(|| "maybe".into());
        let err = file.with_environment(&bad).unwrap_err();
        assert!(err.contains("AWS_VIRTUAL_HOSTED_STYLE_REQUEST"), "{err}");
    }

    #[test]
    fn ranges_close_together_are_merged_and_each_is_found_in_its_merge() {
        let merged = merge_ranges(&[10..20, 0..5, 5_000_000..5_000_010, 19..30], 100);
        assert_eq!(merged, vec![0..30, 5_000_000..5_000_010]);
    }

    #[test]
    fn a_virtual_hosted_endpoint_gets_the_bucket_in_front_of_its_host() {
        assert_eq!(
            bucket_endpoint("https://cos.ap-guangzhou.myqcloud.com/", "logs-1250000000"),
            "https://logs-1250000000.cos.ap-guangzhou.myqcloud.com"
        );
        assert!(
            S3Settings::default().virtual_hosted(),
            "AWS itself: virtual-hosted"
        );
    }
}
