//! `s3://BUCKET/PREFIX` and the S3 client, configured the way every AWS tool
//! is: endpoint, region and credentials from the standard environment
//! variables, never from a flag (flags end up in shell history and `ps`).

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::error::{Error, Result};

/// Opt-in to credentials from an instance-metadata service, when no keys
/// are set: without it snap never sends a request to such an address.
pub const INSTANCE_METADATA_ENV: &str = "SNAP_S3_INSTANCE_METADATA";
/// How long a failing request is retried (with backoff) before the command
/// gives up, as a duration such as `2min` or `30s`.
pub const RETRY_TIMEOUT_ENV: &str = "SNAP_S3_RETRY_TIMEOUT";
pub(super) const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);
/// The retry timeout is what bounds retrying; this only keeps a count.
const MAX_RETRIES: usize = 1000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A bucket and a key prefix inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    bucket: String,
    prefix: String,
}

impl S3Url {
    /// Parses what follows `s3://`: `BUCKET` or `BUCKET/PREFIX`.
    pub fn parse(rest: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("bad repository s3://{rest}: {why}"));
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name (expected s3://BUCKET/PREFIX)"));
        }
        if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)) {
            return Err(bad("a bucket name has only lowercase letters, digits, '-', '.' and '_'"));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && prefix.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(bad("the prefix has an empty, '.' or '..' part"));
        }
        Ok(S3Url { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without slashes at either end (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            p => write!(f, "s3://{}/{p}", self.bucket),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// How waits between attempts grow: from 0.2 s, doubling, to 10 s, with
/// jitter (object_store draws each wait between the last and the next).
pub(super) fn backoff() -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(10),
        base: 2.0,
    }
}

/// The client for `url`, from the environment, and how long a failing
/// request is retried. Makes no request.
pub(super) fn build(url: &S3Url) -> Result<(AmazonS3, Duration)> {
    // TLS goes through ring (see Cargo.toml); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bad = |detail: String| Error::Storage { location: url.to_string(), detail };
    let retry_timeout = match env(RETRY_TIMEOUT_ENV) {
        Some(v) => {
            humantime::parse_duration(&v).map_err(|e| bad(format!("{RETRY_TIMEOUT_ENV}={v:?}: {e}")))?
        }
        None => DEFAULT_RETRY_TIMEOUT,
    };
    let endpoint = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"));
    let region =
        env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    let mut options =
        ClientOptions::new().with_timeout(REQUEST_TIMEOUT).with_connect_timeout(CONNECT_TIMEOUT);
    if let Some(e) = &endpoint {
        options = options.with_allow_http(e.starts_with("http://"));
    }
    let retry = RetryConfig { backoff: backoff(), max_retries: MAX_RETRIES, retry_timeout };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(url.bucket())
        .with_region(region)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e);
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(token) = env("AWS_SESSION_TOKEN") {
                builder = builder.with_token(token);
            }
        }
        (None, None) if env(INSTANCE_METADATA_ENV).as_deref() == Some("1") => {}
        (None, None) => {
            return Err(bad(format!(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (snap asks an \
                 instance-metadata service only when {INSTANCE_METADATA_ENV}=1)"
            )));
        }
        _ => return Err(bad("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into())),
    }
    Ok((builder.build().map_err(|e| bad(e.to_string()))?, retry_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("bucket/a/b/").unwrap();
        assert_eq!((u.bucket(), u.prefix()), ("bucket", "a/b"));
        assert_eq!(u.to_string(), "s3://bucket/a/b");
        let u = S3Url::parse("bucket").unwrap();
        assert_eq!((u.bucket(), u.prefix(), u.to_string().as_str()), ("bucket", "", "s3://bucket"));
        for bad in ["", "/p", "Bucket/p", "b/a//c", "b/../c", "b/./c"] {
            assert!(S3Url::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
