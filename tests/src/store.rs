//! The object store of one emulated cluster: objects keyed by resource, namespace and name, with
//! the server-owned metadata (uid, resourceVersion, creationTimestamp, generation).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group ("" for core).
    pub group: String,
    /// Resource plural.
    pub plural: String,
    /// Namespace, "" for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl Key {
    /// Builds a key; `namespace` is ignored (stored as "") for cluster-scoped kinds by callers.
    pub fn new(group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Self {
        Key {
            group: group.to_string(),
            plural: plural.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        }
    }
}

/// All objects of one cluster and its resourceVersion counter.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    last_rv: u64,
}

impl Store {
    /// The stored object at `key`.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, optionally limited to a namespace, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v)
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The current resourceVersion (of the last write), used for list metadata.
    pub fn current_rv(&self) -> String {
        self.last_rv.to_string()
    }

    /// The resourceVersion of the last write, as a number.
    pub fn last_rv(&self) -> u64 {
        self.last_rv
    }

    /// Stores `obj` under `key`, stamping a fresh resourceVersion; returns the stored copy.
    pub fn put(&mut self, key: Key, mut obj: Value) -> Value {
        self.last_rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.last_rv.to_string());
        self.objects.insert(key, obj.clone());
        obj
    }

    /// Removes and returns the object at `key`.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let removed = self.objects.remove(key);
        if removed.is_some() {
            self.last_rv += 1;
        }
        removed
    }

    /// Keys of every object in `namespace` (for namespace deletion).
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<Key> {
        self.objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect()
    }
}

/// A random RFC 4122 version-4 UUID string, as the API server assigns to `metadata.uid`.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The current time as the API server writes timestamps (`2026-11-26T22:00:00Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bumps_resource_version_and_list_filters_namespace() {
        let mut s = Store::default();
        let a = s.put(
            Key::new("", "secrets", Some("a"), "x"),
            json!({"metadata": {"name": "x"}}),
        );
        let b = s.put(
            Key::new("", "secrets", Some("b"), "x"),
            json!({"metadata": {"name": "x"}}),
        );
        assert_ne!(
            a["metadata"]["resourceVersion"],
            b["metadata"]["resourceVersion"]
        );
        assert_eq!(s.list("", "secrets", Some("a")).count(), 1);
        assert_eq!(s.list("", "secrets", None).count(), 2);
        assert_eq!(s.list("", "configmaps", None).count(), 0);
    }

    #[test]
    fn uid_is_v4_shaped() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
