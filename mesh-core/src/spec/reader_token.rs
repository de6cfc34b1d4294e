//! `readerToken` in the mesh file: how long the credentials inside remote secrets live.
//!
//! Absent, every remote secret carries the legacy, never-expiring token of a
//! `kubernetes.io/service-account-token` Secret, as `istioctl create-remote-secret` makes it.
//! With a `ttl`, each remote secret carries its own bound token from the TokenRequest API
//! (`expirationSeconds` = the ttl), refreshed once it expires within `refreshBefore`:
//!
//! ```yaml
//! readerToken:
//!   ttl: 720h            # at least 10m (the API server refuses shorter), at most 2^32 s
//!   refreshBefore: 240h  # below the ttl; default a third of it
//! ```
//!
//! ```
//! use std::time::Duration;
//! use mesh_core::spec::MeshSpec;
//! let spec = MeshSpec::from_yaml(
//!     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nreaderToken: {ttl: 720h}\nclusters: [{name: a, network: n, context: a}]\n",
//!     std::path::Path::new("."), "mesh.yaml")?;
//! let token = spec.reader_token.unwrap();
//! assert_eq!(token.expiration_seconds(), 2_592_000);
//! assert_eq!(token.refresh_before, Duration::from_secs(240 * 3600));
//! # Ok::<(), mesh_core::spec::SpecError>(())
//! ```

use std::time::Duration;

use super::file::{ReaderTokenFile, S, Scalar};
use super::validate::{Issues, Pos};

/// The shortest `expirationSeconds` an API server accepts
/// (`pkg/apis/authentication/validation`: "may not specify a duration less than 10 minutes").
pub const MIN_TTL: Duration = Duration::from_secs(600);
/// The longest `expirationSeconds` an API server accepts ("may not specify a duration larger
/// than 2^32 seconds").
pub const MAX_TTL: Duration = Duration::from_secs(1 << 32);

/// `readerToken`: the lifetime of the bound tokens in remote secrets.
///
/// ```
/// use std::time::Duration;
/// let t = mesh_core::spec::ReaderTokenSpec { ttl: Duration::from_secs(3600), refresh_before: Duration::from_secs(1200) };
/// assert_eq!(t.expiration_seconds(), 3600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderTokenSpec {
    /// `ttl`: what each TokenRequest asks for (`spec.expirationSeconds`).
    pub ttl: Duration,
    /// `refreshBefore`: a token that expires within this is replaced by `apply` and
    /// `rotate tokens`; one that lives longer is left alone.
    pub refresh_before: Duration,
}

impl ReaderTokenSpec {
    /// The ttl in whole seconds, as a TokenRequest takes it.
    pub fn expiration_seconds(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

pub(super) fn validate_reader_token(
    f: Option<&S<ReaderTokenFile>>,
    issues: &mut Issues,
) -> Option<ReaderTokenSpec> {
    let f = f?;
    let Some(ttl_field) = &f.value.ttl else {
        issues.at(
            "readerToken.ttl",
            f.referenced,
            "required: the lifetime of each bound token, e.g. ttl: 720h (leave readerToken out for istioctl's long-lived tokens)",
        );
        return None;
    };
    let ttl = duration(ttl_field, "readerToken.ttl", issues)?;
    let pos = Pos::from(ttl_field.referenced);
    if ttl < MIN_TTL {
        issues.at(
            "readerToken.ttl",
            pos,
            format!(
                "{} is shorter than the API server allows: a TokenRequest may not ask for less than 10m",
                crate::duration::exact(ttl)
            ),
        );
        return None;
    }
    if ttl > MAX_TTL {
        issues.at(
            "readerToken.ttl",
            pos,
            "longer than the API server allows: a TokenRequest may not ask for more than 2^32 seconds (about 136 years)",
        );
        return None;
    }
    if ttl.subsec_nanos() != 0 {
        issues.at(
            "readerToken.ttl",
            pos,
            "must be whole seconds: expirationSeconds is a number of seconds",
        );
        return None;
    }
    let refresh_before = match &f.value.refresh_before {
        None => Duration::from_secs(ttl.as_secs() / 3),
        Some(field) => {
            let refresh = duration(field, "readerToken.refreshBefore", issues)?;
            if refresh.is_zero() || refresh >= ttl {
                issues.at(
                    "readerToken.refreshBefore",
                    field.referenced,
                    format!(
                        "must be more than zero and less than the ttl ({}), or every run would replace every token",
                        crate::duration::exact(ttl)
                    ),
                );
                return None;
            }
            refresh
        }
    };
    Some(ReaderTokenSpec {
        ttl,
        refresh_before,
    })
}

fn duration(field: &S<Scalar>, path: &str, issues: &mut Issues) -> Option<Duration> {
    let text = match &field.value {
        Scalar::Text(t) => t,
        Scalar::Number(n) => {
            issues.at(
                path,
                field.referenced,
                format!("{n} has no unit: write a duration such as {n}s, 720h or 30d"),
            );
            return None;
        }
        Scalar::Other => {
            issues.at(
                path,
                field.referenced,
                "expected a duration such as 720h or 30d",
            );
            return None;
        }
    };
    match crate::duration::parse(text) {
        Ok(d) => Some(d),
        Err(why) => {
            issues.at(path, field.referenced, why);
            None
        }
    }
}
