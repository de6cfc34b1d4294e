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
//!
//! ```
//! use std::collections::BTreeMap;
//! use mesh_core::{pki::CaDir, render, spec::MeshSpec};
//!
//! let dir = tempfile::tempdir()?;
//! let yaml = r#"
//! apiVersion: meshboot/v1alpha1
//! kind: Mesh
//! meshID: mesh1
//! ca: {dir: ./pki, key: ecdsa-p256}
//! clusters:
//!   - {name: eu, network: network3, context: eu, apiServer: "https://203.0.113.10:6443"}
//!   - {name: ap, network: network1, context: ap, apiServer: "https://198.51.100.7:6443"}
//! "#;
//! let spec = MeshSpec::from_yaml(yaml, dir.path(), "mesh.yaml")?;
//! // Root + one intermediate per cluster, created once, reused on every later run.
//! let names = spec.cluster_names();
//! let bundles = CaDir::open(&spec.ca.dir).ensure(&spec.ca_options(), &names)?;
//! let bundles: BTreeMap<_, _> = bundles.into_iter().map(|b| (b.cluster.clone(), b)).collect();
//! // Every object each cluster needs, in apply order.
//! for cluster in render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())? {
//!     assert_eq!(cluster.objects[0].object["kind"], "Namespace");
//! }
//! // Remote secrets go to every other cluster, never to the cluster itself.
//! assert_eq!(spec.remote_secret_pairs().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod cluster;
pub mod duration;
pub mod error;
pub mod execute;
pub mod files;
pub mod helm;
pub mod karmada;
pub mod phase;
pub mod pki;
pub mod plan;
pub mod remote_secret;
pub mod render;
pub mod rotate;
pub mod spec;
pub mod tokens;
pub mod verify;

pub use error::{Error, Result};

// The README's library example is compiled with the doctests so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
