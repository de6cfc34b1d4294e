//! Decoding a list answer item by item as its body arrives: [`Splitter`] cuts each item out
//! of the chunks, and serde decodes it, so a list is never held whole: a destination's remote
//! secrets are some 300 KiB of JSON in a 100-cluster mesh, and only the item being read
//! (about 4 KiB) is kept.

/// Cuts the items of a `{"items": [...], ...}` document out of its bytes as they arrive, each
/// handed on whole (to be decoded by serde), every other field skipped. Only JSON's structure
/// is followed here (strings, escapes, nesting); each item is then decoded strictly, and
/// [`Splitter::finish`] refuses a body that stopped short.
#[derive(Default)]
pub(super) struct Splitter {
    /// Objects and arrays open around the current byte.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The last string read at the top level: the key, when a `:` follows.
    text: Vec<u8>,
    /// The top-level key whose value comes next.
    key: Vec<u8>,
    /// Just after `"items":`, before its value.
    items_value: bool,
    /// Inside the `items` array.
    in_items: bool,
    /// The item being read, when one is open.
    item: Option<Vec<u8>>,
    /// The top-level object was opened, and closed.
    opened: bool,
    closed: bool,
}

impl Splitter {
    /// Reads `chunk`, calling `each` with every item it completes.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        for &b in chunk {
            self.byte(b, each)?;
        }
        Ok(())
    }

    /// Checks that the whole document was read.
    pub(super) fn finish(&self) -> Result<(), String> {
        if self.closed {
            Ok(())
        } else {
            Err("the list ended early".into())
        }
    }

    fn byte(
        &mut self,
        b: u8,
        each: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.in_string {
            if let Some(item) = &mut self.item {
                item.push(b);
            } else if self.depth == 1 && (self.escaped || b != b'"') {
                self.text.push(b);
            }
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return Ok(());
        }
        if b.is_ascii_whitespace() {
            if let Some(item) = &mut self.item {
                item.push(b);
            }
            return Ok(());
        }
        if self.closed {
            return Err("more after the end of the list".into());
        }
        if self.depth == 0 && b != b'{' {
            return Err("the answer is not a list object".into());
        }
        if self.items_value {
            // `items: null` is an empty list, as the API server sends for no match.
            self.items_value = false;
            if b != b'[' && b != b'n' {
                return Err("items is not a list".into());
            }
        }
        // An item starts at the first byte of a value inside the items array.
        if self.in_items && self.depth == 2 && self.item.is_none() && b != b',' && b != b']' {
            self.item = Some(Vec::with_capacity(4096));
        }
        // A scalar item (never sent by an API server, decoded all the same) ends at the
        // separator after it.
        if self.in_items
            && self.depth == 2
            && (b == b',' || b == b']')
            && let Some(item) = self.item.take()
        {
            each(&item)?;
        }
        if let Some(item) = &mut self.item {
            item.push(b);
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 {
                    self.text.clear();
                }
            }
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth == 1 {
                    self.opened = true;
                }
                if self.depth == 2 && b == b'[' && self.key == b"items" {
                    self.in_items = true;
                }
            }
            b'}' | b']' => {
                self.depth = self
                    .depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced brackets in the list".to_string())?;
                if self.in_items && self.depth == 2 {
                    if let Some(item) = self.item.take() {
                        each(&item)?;
                    }
                } else if self.in_items && self.depth == 1 {
                    self.in_items = false;
                } else if self.depth == 0 && self.opened {
                    self.closed = true;
                }
            }
            b':' if self.depth == 1 => {
                self.key = std::mem::take(&mut self.text);
                self.items_value = self.key == b"items";
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every item [`Splitter`] cuts out of `body` fed in pieces of `size` bytes, by name.
    fn split(body: &str, size: usize) -> Result<Vec<String>, String> {
        let mut seen = Vec::new();
        let mut splitter = Splitter::default();
        let mut each = |item: &[u8]| {
            let v: Value = serde_json::from_slice(item).map_err(|e| e.to_string())?;
            seen.push(v["metadata"]["name"].as_str().unwrap_or("?").to_string());
            Ok(())
        };
        for chunk in body.as_bytes().chunks(size.max(1)) {
            splitter.feed(chunk, &mut each)?;
        }
        splitter.finish()?;
        Ok(seen)
    }

    #[test]
    fn items_are_handed_on_in_order_and_other_fields_skipped_wherever_the_chunks_break() {
        let body = r#"{"kind": "SecretList", "metadata": {"resourceVersion": "7", "items": ["no"]},
            "extra": {"items": [{"metadata": {"name": "not-this"}}]},
            "items": [ {"metadata": {"name": "a", "annotations": {"k": "a \"quoted\" ]}, [ value"}},
              "data": {"a": "e30=", "items": "x"}}, {"metadata": {"name": "b"}, "list": [[1, 2], {}]} ,
              {"metadata": {"name": "c\\"}}], "tail": "}"}"#;
        let whole = Ok(vec!["a".to_string(), "b".to_string(), "c\\".to_string()]);
        assert_eq!(split(body, body.len()), whole);
        for size in 1..=body.len() {
            assert_eq!(split(body, size), whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn null_or_missing_items_are_no_items_and_junk_or_a_cut_off_body_is_an_error() {
        assert_eq!(split(r#"{"items": null}"#, 3), Ok(vec![]));
        assert_eq!(split(r#"{"kind": "SecretList"}"#, 3), Ok(vec![]));
        assert_eq!(split(r#"{"items": []}"#, 1), Ok(vec![]));
        for junk in [
            r#"{"items": 3}"#,
            "[1]",
            r#"{"items": [{"metadata": {"name": "a"}}"#,
            r#"{"items": [{"metadata": {"name": "a"}]}"#,
            r#"{"items": []} {}"#,
            "",
        ] {
            assert!(split(junk, 4).is_err(), "{junk:?} was taken for a list");
        }
    }
}
