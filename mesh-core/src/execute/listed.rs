//! The remote secrets already in each destination: one list per destination instead of a read
//! per pair, each item judged or trimmed as it is decoded.
//!
//! The lists run in a task of their own so that they can start as soon as the clusters are
//! known: `apply` starts them beside preflight, since at 100 clusters they are some 30 MB of
//! Secrets to send and decode, which would otherwise come after the probes, the CA, the plan
//! and the access reviews. Only the pairs write remote secrets, and each pair waits for its
//! destination's list, so a list is still current when it is used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cluster::{ClusterOps, TokenData, is_converged, normalize_secret};
use crate::remote_secret::multicluster_selector;

/// Remote-secret lists in flight. Each is decoded as it arrives, one item held at a time, so
/// this bounds the servers sending at once (a list of 99 remote secrets is some 300 KiB) more
/// than memory; at 16, the lists of 100 destinations take about seven round trips, all done
/// while preflight and the plan go on.
const LISTS_IN_FLIGHT: usize = 16;

/// `istio-remote-secret-<source>`.
pub(super) const REMOTE_SECRET_PREFIX: &str = "istio-remote-secret-";

/// A SHA-256 digest, as [`digest_data`] spells it in hex.
pub(super) type Digest = [u8; 32];

/// A destination's remote secrets. At 200 clusters a converged run lists 39,800 of them, so
/// the ones of mesh sources are kept as digests in a vector by source, not by name.
#[derive(Default)]
struct Listed {
    /// By the source's place in [`ListJob::order`]; `None` when absent or taken.
    judged: Vec<Option<Live>>,
    /// The rest, by name: bound-token sources' secrets, and those of clusters not in the mesh.
    kept: BTreeMap<String, Live>,
}

/// What a destination's list said about one of its remote secrets.
#[derive(Clone)]
pub(super) enum Live {
    /// The remote secret of a source with a long-lived token: the digest of the kubeconfig
    /// with which it is what meshboot applies (its own kubeconfig's when all the rest is), or
    /// `None` when it must be applied whatever the kubeconfig. A 100-cluster mesh lists 9,900
    /// of them, so each is kept as a few bytes rather than as the Secret.
    Judged { unchanged_with: Option<Digest> },
    /// The Secret as [`essentials`] keeps it: the pairs of bound tokens judge the token by its
    /// expiry, and a secret of a cluster no longer in the mesh is what prune looks at.
    Kept(Value),
}

impl Live {
    /// Compares a listed secret ([`essentials`], data digested) with `skeleton`, the desired
    /// one of `source` digested and built with a placeholder token, as if its kubeconfig were
    /// the live one: when that is converged, so is every desired secret with the same
    /// kubeconfig digest. Only the kubeconfig depends on the token.
    fn judge(skeleton: &Value, source: &str, live: &Value) -> Live {
        let kubeconfig = live
            .get("data")
            .and_then(|d| d.get(source))
            .and_then(Value::as_str);
        let unchanged_with = kubeconfig.filter(|kubeconfig| {
            let mut desired = skeleton.clone();
            if let Some(data) = desired.get_mut("data").and_then(Value::as_object_mut) {
                data.insert(source.to_string(), Value::String(kubeconfig.to_string()));
            }
            is_converged(&desired, live)
        });
        Live::Judged {
            unchanged_with: unchanged_with.and_then(digest_of),
        }
    }

    pub(super) fn into_kept(self) -> Option<Value> {
        match self {
            Live::Kept(value) => Some(value),
            Live::Judged { .. } => None,
        }
    }
}

/// What to list and how to keep each item.
pub(crate) struct ListJob {
    namespace: String,
    destinations: BTreeSet<String>,
    /// Sources whose pairs judge the token by its expiry: their secrets keep the data.
    bound: BTreeSet<String>,
    /// The sources with a long-lived token, each with its place in [`Listed::judged`].
    order: BTreeMap<String, usize>,
    /// What each listed secret of those sources is judged against ([`Live::judge`]), by place.
    skeletons: Vec<Value>,
}

impl ListJob {
    /// The lists of `destinations` in `namespace`. `sources` are the sources of the pairs with
    /// the server written into their remote secrets; `bound` the ones whose pairs carry bound
    /// tokens.
    pub(crate) fn new<'s>(
        namespace: &str,
        destinations: impl IntoIterator<Item = String>,
        sources: impl IntoIterator<Item = (&'s str, &'s str)>,
        bound: BTreeSet<String>,
    ) -> ListJob {
        let mut order = BTreeMap::new();
        let mut skeletons = Vec::new();
        for (source, server) in sources {
            if bound.contains(source) || order.contains_key(source) {
                continue;
            }
            if let Some(skeleton) = skeleton(source, namespace, server) {
                order.insert(source.to_string(), skeletons.len());
                skeletons.push(skeleton);
            }
        }
        ListJob {
            namespace: namespace.to_string(),
            destinations: destinations.into_iter().collect(),
            bound,
            order,
            skeletons,
        }
    }

    /// The place in [`Listed::judged`] of the remote secret `name`, if of a judged source.
    fn place<'n>(&self, name: &'n str) -> Option<(&'n str, usize)> {
        let source = name.strip_prefix(REMOTE_SECRET_PREFIX)?;
        self.order.get(source).map(|place| (source, *place))
    }

    /// Keeps one listed Secret in `listed`.
    fn keep(&self, item: Value, listed: &mut Listed) {
        let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        let name = name.to_string();
        let source = name.strip_prefix(REMOTE_SECRET_PREFIX);
        let digest = source.is_none_or(|source| !self.bound.contains(source));
        let kept = essentials(item, digest);
        match self.place(&name) {
            Some((source, place)) => {
                if listed.judged.len() < self.skeletons.len() {
                    listed.judged.resize(self.skeletons.len(), None);
                }
                if let (Some(slot), Some(skeleton)) =
                    (listed.judged.get_mut(place), self.skeletons.get(place))
                {
                    *slot = Some(Live::judge(skeleton, source, &kept));
                }
            }
            None => {
                listed.kept.insert(name, Live::Kept(kept));
            }
        }
    }
}

/// The remote secret meshboot applies for `source`, digested, its kubeconfig aside: built with
/// a placeholder token, which is not known before the source's reader chain.
fn skeleton(source: &str, namespace: &str, server: &str) -> Option<Value> {
    let placeholder = TokenData {
        token: "placeholder".into(),
        ca_crt: b"placeholder".to_vec(),
    };
    let object = super::remote_secret_object(source, namespace, server, &placeholder).ok()?;
    Some(digest_data(normalize_secret(object)))
}

/// The lists of a run, in flight or done. Dropping it stops the lists still in flight.
pub(crate) struct Lists {
    /// One flag per destination listed, raised when its list is through (whether it answered
    /// or not); dropped unraised only if the task stopped.
    through: BTreeMap<String, watch::Receiver<bool>>,
    found: Arc<Mutex<BTreeMap<String, Listed>>>,
    /// Where each source's secret is kept in a [`Listed`].
    job: Option<Arc<ListJob>>,
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for Lists {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Lists {
    /// Starts the lists of `job` with `clients` (destinations without a client are not
    /// listed), [`LISTS_IN_FLIGHT`] at a time, in a task of their own.
    pub(crate) fn start<'c, C: ClusterOps>(
        job: ListJob,
        clients: impl IntoIterator<Item = (&'c str, &'c C)>,
    ) -> Lists {
        let work: Vec<(String, C)> = clients
            .into_iter()
            .filter(|(name, _)| job.destinations.contains(*name))
            .map(|(name, client)| (name.to_string(), client.clone()))
            .collect();
        if work.is_empty() {
            return Lists::none();
        }
        let mut flags = BTreeMap::new();
        let mut through = BTreeMap::new();
        for (name, _) in &work {
            let (tx, rx) = watch::channel(false);
            flags.insert(name.clone(), tx);
            through.insert(name.clone(), rx);
        }
        let found = Arc::new(Mutex::new(BTreeMap::new()));
        let job = Arc::new(job);
        let task = tokio::spawn(list_all(job.clone(), work, flags, found.clone()));
        Lists {
            through,
            found,
            job: Some(job),
            task: Some(task.abort_handle()),
        }
    }

    /// Nothing listed: every pair reads its own secret.
    pub(crate) fn none() -> Lists {
        Lists {
            through: BTreeMap::new(),
            found: Arc::default(),
            job: None,
            task: None,
        }
    }

    fn found(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Listed>> {
        self.found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `destination`'s list said of the Secret `name`, once the list is through: `None`
    /// when the destination was not listed (or its list failed), `Some(None)` when listed and
    /// absent. The entry is taken: each pair asks once, and a converged 100-cluster run would
    /// otherwise hold all 9,900 to the end (the secret is then desired, so never stale).
    pub(super) async fn take(&self, destination: &str, name: &str) -> Option<Option<Live>> {
        let mut flag = self.through.get(destination)?.clone();
        // An error is the task gone without raising the flag: nothing was listed.
        flag.wait_for(|through| *through).await.ok()?;
        let mut found = self.found();
        let listed = found.get_mut(destination)?;
        Some(match self.job.as_ref().and_then(|job| job.place(name)) {
            Some((_, place)) => listed.judged.get_mut(place).and_then(Option::take),
            None => listed.kept.remove(name),
        })
    }

    /// Every listed Secret of `destination` kept whole ([`Live::Kept`]) and not taken by a
    /// pair, when its list is through and answered: the secrets of clusters no longer in the
    /// mesh are among them.
    pub(super) fn kept(&self, destination: &str) -> Option<Vec<Value>> {
        if !self.through.get(destination).is_some_and(|f| *f.borrow()) {
            return None;
        }
        let found = self.found();
        let listed = found.get(destination)?;
        Some(
            listed
                .kept
                .values()
                .filter_map(|live| live.clone().into_kept())
                .collect(),
        )
    }
}

async fn list_all<C: ClusterOps>(
    job: Arc<ListJob>,
    work: Vec<(String, C)>,
    flags: BTreeMap<String, watch::Sender<bool>>,
    found: Arc<Mutex<BTreeMap<String, Listed>>>,
) {
    let selector = multicluster_selector();
    let (job, selector, flags, found) = (&*job, selector.as_str(), &flags, &found);
    stream::iter(work)
        .map(|(destination, client)| async move {
            let mut by_name = Listed::default();
            let listed = client
                .list_each(
                    "v1",
                    "Secret",
                    Some(&job.namespace),
                    Some(selector),
                    |item| job.keep(item, &mut by_name),
                )
                .await;
            if listed.is_ok() {
                found
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(destination.clone(), by_name);
            }
            if let Some(flag) = flags.get(&destination) {
                flag.send_replace(true);
            }
        })
        .buffer_unordered(LISTS_IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// The part of a listed remote secret that a desired one is compared with: its content and
/// meshboot's own `managedFields` entry (to notice a field meshboot no longer sets). The rest
/// is dropped at once: a 100-cluster mesh lists 9,900 of them. With `digest`, each `data`
/// value is kept as its SHA-256 only ([`digest_data`]): a kubeconfig is some 3 KiB, its
/// digest 71 bytes, and equal values have equal digests.
fn essentials(mut secret: Value, digest: bool) -> Value {
    let owned = crate::cluster::meshboot_entry(&secret).cloned();
    let mut take = |pointer: &str| {
        secret
            .pointer_mut(pointer)
            .map(Value::take)
            .unwrap_or(Value::Null)
    };
    let mut kept = json!({
        "apiVersion": take("/apiVersion"),
        "kind": take("/kind"),
        "type": take("/type"),
        "metadata": {
            "name": take("/metadata/name"),
            "namespace": take("/metadata/namespace"),
            "uid": take("/metadata/uid"),
            "labels": take("/metadata/labels"),
            "annotations": take("/metadata/annotations"),
        },
        "data": take("/data"),
    });
    if let Some(owned) = owned {
        kept["metadata"]["managedFields"] = json!([owned]);
    }
    if digest {
        kept = digest_data(kept);
    }
    kept
}

/// The 32 bytes of a `sha256:<hex>` digest made by [`digest_data`].
pub(super) fn digest_of(text: &str) -> Option<Digest> {
    let hex = text.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(digest)
}

/// The Secret with each `data` value replaced by `sha256:<hex>` of it: what a listed remote
/// secret keeps, and what a desired one is turned into to be compared with it.
pub(super) fn digest_data(mut secret: Value) -> Value {
    if let Some(data) = secret.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            if let Some(text) = value.as_str() {
                let sum = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
                let hex: String = sum.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                *value = Value::String(format!("sha256:{hex}"));
            }
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> TokenData {
        TokenData {
            token: t.into(),
            ca_crt: b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
        }
    }

    /// The remote secret of `eu` as the API server lists it after meshboot applied it with
    /// `t`: meshboot's managedFields entry naming what it set, and what the server adds.
    fn listed(t: &str, extra_owned_label: bool) -> Value {
        let mut secret = normalize_secret(
            super::super::remote_secret_object("eu", "istio-system", "https://eu:6443", &token(t))
                .unwrap_or_default(),
        );
        let mut labels = json!({"f:istio/multiCluster": {}});
        if extra_owned_label {
            secret["metadata"]["labels"]["team"] = json!("mesh");
            labels["f:team"] = json!({});
        }
        secret["type"] = json!("Opaque");
        secret["metadata"]["uid"] = json!("u-1");
        secret["metadata"]["resourceVersion"] = json!("7");
        secret["metadata"]["managedFields"] = json!([{
            "manager": "meshboot", "operation": "Apply", "apiVersion": "v1",
            "time": "2026-12-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:eu": {}}, "f:metadata": {
                "f:annotations": {"f:networking.istio.io/cluster": {}}, "f:labels": labels}}}]);
        essentials(secret, true)
    }

    fn skeleton() -> Value {
        let placeholder = token("placeholder");
        digest_data(normalize_secret(
            super::super::remote_secret_object(
                "eu",
                "istio-system",
                "https://eu:6443",
                &placeholder,
            )
            .unwrap_or_default(),
        ))
    }

    fn desired_digest(t: &str) -> Option<Digest> {
        let object =
            super::super::remote_secret_object("eu", "istio-system", "https://eu:6443", &token(t))
                .unwrap_or_default();
        digest_data(normalize_secret(object))["data"]["eu"]
            .as_str()
            .and_then(digest_of)
    }

    #[test]
    fn a_digest_is_kept_as_its_32_bytes_and_anything_else_is_none() {
        let spelled = digest_data(json!({"data": {"k": "abc"}}))["data"]["k"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_default();
        let sum = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc");
        assert_eq!(
            digest_of(&spelled).as_ref().map(|d| &d[..]),
            Some(sum.as_ref())
        );
        for not in [
            "abc",
            "sha256:",
            "sha256:zz",
            &spelled[..spelled.len() - 1],
            &format!("{spelled}0"),
        ] {
            assert_eq!(digest_of(not), None, "{not}");
        }
    }

    #[test]
    fn a_listed_remote_secret_is_unchanged_only_with_the_same_kubeconfig() {
        let Live::Judged { unchanged_with } = Live::judge(&skeleton(), "eu", &listed("t1", false))
        else {
            panic!("a remote secret of a mesh cluster is judged");
        };
        assert!(unchanged_with.is_some());
        assert_eq!(unchanged_with, desired_digest("t1"));
        assert_ne!(
            unchanged_with,
            desired_digest("t2"),
            "a new token is a change"
        );
    }

    #[test]
    fn a_field_meshboot_set_and_no_longer_sets_makes_it_changed_whatever_the_kubeconfig() {
        let Live::Judged { unchanged_with } = Live::judge(&skeleton(), "eu", &listed("t1", true))
        else {
            panic!("a remote secret of a mesh cluster is judged");
        };
        assert_eq!(
            unchanged_with, None,
            "the label must be removed by an apply"
        );
    }

    #[test]
    fn a_remote_secret_without_its_kubeconfig_or_with_another_annotation_is_changed() {
        let mut no_data = listed("t1", false);
        no_data["data"] = json!({});
        let mut moved = listed("t1", false);
        moved["metadata"]["annotations"]["networking.istio.io/cluster"] = json!("us");
        for live in [no_data, moved] {
            let Live::Judged { unchanged_with } = Live::judge(&skeleton(), "eu", &live) else {
                panic!("judged");
            };
            assert_eq!(unchanged_with, None, "{live}");
        }
    }
}
