//! Takes a failed request to the object store; gives an [`S3Error`] that names the action, the
//! URL and S3's status and error code, never the body of S3's answer (which can echo the
//! access key id), with the `hint:` for the user.

use super::url::S3Url;

/// What went wrong talking to the store, in the user's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3ErrorKind {
    /// 404: the bucket or the key does not exist (any more).
    NotFound,
    /// 401/403: the keys are wrong or may not read this.
    Denied,
    /// The object is no longer the version listed.
    Changed,
    /// No answer, after every retry.
    Unreachable,
    /// Anything else S3 answered.
    Other,
}

/// An S3 request that failed: what was asked of which URL, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} `{url}`: {reason}")]
pub struct S3Error {
    pub action: &'static str,
    pub url: String,
    pub reason: String,
    pub kind: S3ErrorKind,
}

impl S3Error {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self.kind {
            S3ErrorKind::NotFound if self.reason.contains("NoSuchBucket") => {
                "check the bucket in `--data` and the endpoint (`AWS_ENDPOINT_URL`, `[s3] endpoint`)"
            }
            S3ErrorKind::NotFound | S3ErrorKind::Changed => {
                "an object was deleted or replaced while the run read it; run again once whatever writes the bucket has finished"
            }
            S3ErrorKind::Denied => {
                "check `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), and that they may list and read this prefix"
            }
            S3ErrorKind::Unreachable => {
                "check the endpoint (`AWS_ENDPOINT_URL`), `AWS_ALLOW_HTTP` for a plain-HTTP server, and that the server is up"
            }
            S3ErrorKind::Other => "check the S3 settings (`AWS_*`, the job file's `[s3]`) and the server's logs",
        }
    }

    pub(super) fn new(action: &'static str, url: &S3Url, err: &object_store::Error) -> S3Error {
        let (kind, reason) = describe(err);
        S3Error {
            action,
            url: url.to_string(),
            reason,
            kind,
        }
    }

    pub(super) fn changed(action: &'static str, url: &S3Url) -> S3Error {
        S3Error {
            action,
            url: url.to_string(),
            reason:
                "it changed while the run read it (its ETag, size or time is not the one listed)"
                    .into(),
            kind: S3ErrorKind::Changed,
        }
    }
}

/// The kind of an error and a reason that holds S3's status and error code, but nothing of its
/// answer's body and no request header.
fn describe(err: &object_store::Error) -> (S3ErrorKind, String) {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = cause {
        text.push_str(&e.to_string());
        text.push('\n');
        cause = e.source();
    }
    let code = between(&text, "<Code>", "</Code>");
    let status = between(&text, "status code: ", " ")
        .and_then(|s| s.parse::<u16>().ok())
        .or(match err {
            object_store::Error::NotFound { .. } => Some(404),
            object_store::Error::PermissionDenied { .. } => Some(403),
            object_store::Error::Unauthenticated { .. } => Some(401),
            object_store::Error::Precondition { .. } => Some(412),
            _ => None,
        });
    let kind = match (status, err) {
        (Some(412), _) | (_, object_store::Error::Precondition { .. }) => S3ErrorKind::Changed,
        (Some(404), _) => S3ErrorKind::NotFound,
        (Some(401 | 403), _) => S3ErrorKind::Denied,
        (Some(_), _) => S3ErrorKind::Other,
        (None, _) => S3ErrorKind::Unreachable,
    };
    let reason = match (status, code) {
        (Some(status), Some(code)) => format!("S3 answered {status} {}", crate::text::shown(code)),
        (Some(404), None) => "S3 answered 404 NoSuchKey".to_string(),
        (Some(status), None) => format!("S3 answered {status}"),
        (None, _) => {
            // A transport failure: the innermost cause says what (refused, timed out).
            let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            let last: String = last
                .split('<')
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            format!(
                "no answer from the server: {}",
                crate::text::shown(last.trim())
            )
        }
    };
    (kind, reason)
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len]).filter(|s| !s.is_empty() && s.len() <= 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_says_the_status_and_code_but_not_the_body() {
        let body = "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIDSECRET</AWSAccessKeyId></Error>";
        let err = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: format!("Server returned non-2xx status code: 403 Forbidden: {body}").into(),
        };
        let (kind, reason) = describe(&err);
        assert_eq!(kind, S3ErrorKind::Denied);
        assert_eq!(reason, "S3 answered 403 SignatureDoesNotMatch");
        assert!(!reason.contains("AKID"));
    }
}
