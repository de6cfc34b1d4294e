//! Decoding a list answer item by item (serde's seed/visitor pair): the `items` array is
//! walked with each element handed on as soon as it is decoded, every other field skipped.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Decodes a `{"kind": "...List", "items": [...], ...}` document, calling the function on each
/// item.
pub(super) struct EachItem<'f, F>(pub &'f mut F);

impl<'de, F: FnMut(Value)> DeserializeSeed<'de> for EachItem<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Value)> Visitor<'de> for EachItem<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(Items(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Items<'f, F>(&'f mut F);

impl<'de, F: FnMut(Value)> DeserializeSeed<'de> for Items<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Value)> Visitor<'de> for Items<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    // `items: null` is an empty list, as the API server sends for no match.
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            (self.0)(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Result<Vec<String>, serde_json::Error> {
        let mut seen = Vec::new();
        let mut each = |v: Value| seen.push(v["metadata"]["name"].as_str().unwrap_or("?").into());
        let mut de = serde_json::Deserializer::from_str(body);
        EachItem(&mut each).deserialize(&mut de)?;
        de.end()?;
        Ok(seen)
    }

    #[test]
    fn items_are_handed_on_in_order_and_other_fields_skipped() {
        let body = r#"{"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}], "extra": [1, {"x": 2}]}"#;
        assert_eq!(
            names(body).ok(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn null_or_missing_items_are_no_items_and_junk_is_an_error() {
        assert_eq!(names(r#"{"items": null}"#).ok(), Some(vec![]));
        assert_eq!(names(r#"{"kind": "SecretList"}"#).ok(), Some(vec![]));
        assert!(names(r#"{"items": 3}"#).is_err());
        assert!(names("[1]").is_err());
    }
}
