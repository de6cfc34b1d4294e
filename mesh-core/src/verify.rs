//! Cross-cluster checks (being built).
