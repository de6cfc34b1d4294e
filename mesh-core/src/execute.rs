//! Runs a plan against clusters (being built).
