//! YAML text for rendered objects and values: one document per object, `---` between them,
//! keys in the order the object was built (serde_json keeps insertion order here), so the same
//! objects always give the same bytes.

use serde_json::Value;

use super::RenderError;

/// One YAML document.
///
/// ```
/// let y = mesh_core::render::yaml::to_yaml(&serde_json::json!({"a": "true", "b": 1}))?;
/// assert_eq!(y, "a: \"true\"\nb: 1\n");
/// # Ok::<(), mesh_core::render::RenderError>(())
/// ```
pub fn to_yaml(value: &Value) -> Result<String, RenderError> {
    serde_saphyr::to_string(value).map_err(|e| RenderError::Yaml {
        message: e.to_string(),
    })
}

/// Several documents separated by `---`.
///
/// ```
/// use serde_json::json;
/// let y = mesh_core::render::yaml::to_yaml_documents(&[json!({"a": 1}), json!({"b": 2})])?;
/// assert_eq!(y, "a: 1\n---\nb: 2\n");
/// # Ok::<(), mesh_core::render::RenderError>(())
/// ```
pub fn to_yaml_documents<'a>(
    values: impl IntoIterator<Item = &'a Value>,
) -> Result<String, RenderError> {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(v)?);
    }
    Ok(out)
}
