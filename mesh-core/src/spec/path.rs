//! The field path (`clusters[2].name`) of the YAML node at a line and column, so that parse
//! errors, which serde-saphyr reports by position only, name the field like validation errors do.

use serde_saphyr::granit_parser::{Event, Parser};

enum Frame {
    Map { key: Option<String>, want_key: bool },
    Seq { index: usize },
}

fn render(stack: &[Frame], leaf_key: Option<&str>) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Map {
                key: Some(k),
                want_key: false,
            } => push_key(&mut out, k),
            Frame::Seq { index } => out.push_str(&format!("[{index}]")),
            Frame::Map { .. } => {}
        }
    }
    if let Some(k) = leaf_key {
        push_key(&mut out, k);
    }
    if out.is_empty() {
        "(document)".to_string()
    } else {
        out
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

/// Marks the value under the top frame as finished: a map then expects its next key, a sequence
/// moves to its next index.
fn finish_value(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { want_key, .. }) => *want_key = true,
        Some(Frame::Seq { index }) => *index += 1,
        None => {}
    }
}

/// The path of the node starting at `line`:`column` (both 1-based, as serde-saphyr reports
/// them), or `None` when no node starts there or the text does not parse that far.
///
/// A block mapping starts where its first key does; `prefer_key` picks the key (right for an
/// unknown-field error) over the mapping (right for a missing-field error).
pub(crate) fn path_at(text: &str, line: u64, column: u64, prefer_key: bool) -> Option<String> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut container: Option<String> = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let here = span.start.line() as u64 == line && span.start.col() as u64 + 1 == column;
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { key, want_key }) = stack.last_mut()
                    && *want_key
                {
                    if here {
                        let parent = &stack[..stack.len() - 1];
                        return Some(render(parent, Some(&value)));
                    }
                    *key = Some(value.into_owned());
                    *want_key = false;
                    continue;
                }
                if here {
                    return Some(render(&stack, None));
                }
                finish_value(&mut stack);
            }
            Event::Alias(_) => {
                if here {
                    return Some(render(&stack, None));
                }
                finish_value(&mut stack);
            }
            Event::MappingStart(..) => {
                if here {
                    if !prefer_key {
                        return Some(render(&stack, None));
                    }
                    container.get_or_insert_with(|| render(&stack, None));
                }
                stack.push(Frame::Map {
                    key: None,
                    want_key: true,
                });
            }
            Event::SequenceStart(..) => {
                if here {
                    if !prefer_key {
                        return Some(render(&stack, None));
                    }
                    container.get_or_insert_with(|| render(&stack, None));
                }
                stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                finish_value(&mut stack);
            }
            _ => {}
        }
    }
    container
}

#[cfg(test)]
mod tests {
    use super::path_at;

    const DOC: &str =
        "a: 1\nclusters:\n  - name: eu\n    netwrok: n\n  - {name: us, x: 2}\nca:\n  dir: p\n";

    #[test]
    fn names_keys_inside_list_entries() {
        assert_eq!(
            path_at(DOC, 4, 5, true).as_deref(),
            Some("clusters[0].netwrok")
        );
        assert_eq!(path_at(DOC, 5, 16, true).as_deref(), Some("clusters[1].x"));
        assert_eq!(path_at(DOC, 7, 3, true).as_deref(), Some("ca.dir"));
    }

    #[test]
    fn names_values() {
        assert_eq!(
            path_at(DOC, 3, 11, false).as_deref(),
            Some("clusters[0].name")
        );
        assert_eq!(path_at(DOC, 1, 4, false).as_deref(), Some("a"));
    }

    #[test]
    fn a_block_mapping_or_its_first_key() {
        assert_eq!(path_at(DOC, 7, 3, false).as_deref(), Some("ca"));
        assert_eq!(path_at(DOC, 3, 5, false).as_deref(), Some("clusters[0]"));
        assert_eq!(
            path_at(DOC, 3, 5, true).as_deref(),
            Some("clusters[0].name")
        );
    }

    #[test]
    fn nothing_at_a_blank_position() {
        assert_eq!(path_at(DOC, 40, 1, true), None);
    }
}
