//! # mesh_core
//!
//! The library behind `meshboot`: everything needed to bootstrap an Istio multicluster mesh.
//!
//! The shape is a pure core and one door to the clusters:
//!
//! ```text
//! mesh.yaml ─► spec::MeshSpec ─► pki (root + intermediates) ─► render (objects per cluster)
//!                                                   ─► plan (phases × clusters) ─► execute (kube-rs)
//! ```
//!
//! Everything above [`execute`] is deterministic and works without a cluster.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod error;
pub mod execute;
pub mod pki;
pub mod plan;
pub mod remote_secret;
pub mod render;
pub mod spec;
pub mod verify;

pub use error::{Error, Result};
