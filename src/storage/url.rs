//! `s3://bucket/prefix` as typed on the command line or in a job file.
//!
//! Takes the text of `--data`; gives an [`S3Url`]: a bucket name S3 accepts and a prefix of
//! `/`-separated segments (no empty, `.` or `..` segment, no control character), so every key
//! the run reads is the prefix joined with a listed name and no input can point outside it.

use std::fmt;

/// What `--data` starts with when the inputs are in an object store.
pub const SCHEME: &str = "s3://";

/// A bucket and a prefix inside it (empty: the bucket's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// `/`-separated, without a leading or trailing `/`.
    pub prefix: String,
}

impl S3Url {
    /// Whether `text` names an object store location rather than a local folder.
    pub fn is_s3(text: &str) -> bool {
        text.get(..SCHEME.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(SCHEME))
    }

    /// Parses `s3://bucket[/prefix[/]]`.
    pub fn parse(text: &str) -> Result<S3Url, String> {
        if !S3Url::is_s3(text) {
            return Err(format!(
                "`{}` does not start with `{SCHEME}`",
                escaped(text)
            ));
        }
        let rest = &text[SCHEME.len()..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            for segment in prefix.split('/') {
                check_segment(segment)
                    .map_err(|problem| format!("the prefix of `{}` {problem}", escaped(text)))?;
            }
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The key of `name` (a `/`-separated path relative to the prefix).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The URL of `name` below the prefix.
    pub fn join(&self, name: &str) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            prefix: self.key(name),
        }
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{SCHEME}{}", self.bucket)
        } else {
            write!(f, "{SCHEME}{}/{}", self.bucket, self.prefix)
        }
    }
}

/// S3's bucket naming rules: 3 to 63 lowercase letters, digits, `.` and `-`, starting and
/// ending with a letter or digit.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let bytes = bucket.as_bytes();
    if (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| allowed(b))
        && edge(bytes.first().copied())
        && edge(bytes.last().copied())
    {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a bucket name; expected 3 to 63 lowercase letters, digits, `.` or `-`",
            escaped(bucket)
        ))
    }
}

fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err(format!(
            "has an empty, `.` or `..` segment (`{}`); expected plain names between `/`",
            escaped(segment)
        ));
    }
    if segment.chars().any(char::is_control) {
        return Err("holds a control character".into());
    }
    Ok(())
}

fn escaped(text: &str) -> String {
    crate::text::shown(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_and_prefix_are_split_and_trailing_slashes_dropped() {
        let url = S3Url::parse("s3://ccc-logs/tenant-7/2026/").unwrap();
        assert_eq!(url.bucket, "ccc-logs");
        assert_eq!(url.prefix, "tenant-7/2026");
        assert_eq!(url.key("calls/a.parquet"), "tenant-7/2026/calls/a.parquet");
        assert_eq!(url.to_string(), "s3://ccc-logs/tenant-7/2026");
        let root = S3Url::parse("s3://ccc-logs").unwrap();
        assert_eq!(root.key("billing.csv"), "billing.csv");
        assert_eq!(root.join("calls").to_string(), "s3://ccc-logs/calls");
    }

    #[test]
    fn a_bad_bucket_or_a_segment_that_climbs_is_refused() {
        for bad in [
            "s3://",
            "s3://AB",
            "s3://-logs",
            "s3://logs_x/p",
            "s3://logs/../other",
            "s3://logs/a//b",
            "s3://logs/a/\u{1b}[31m",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(S3Url::is_s3("S3://logs"));
        assert!(!S3Url::is_s3("data/s3"));
    }
}
