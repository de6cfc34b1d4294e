//! `-v`/`-vv`/`-vvv` and `RUST_LOG`: what meshboot and mesh-core are doing, on stderr.
//!
//! `-v` shows decisions (a root created, a reader chosen), `-vv` adds every request to a
//! cluster with its status and every retry, `-vvv` everything mesh-core traces. `RUST_LOG`
//! (tracing's env-filter syntax, e.g. `RUST_LOG=mesh_core=debug,kube_client=debug`) replaces
//! the level chosen by `-v`. Nothing logged carries a key or a token: mesh-core never puts one
//! into an event, and logs a request's method, URL and status, never its headers or body.
//! HTTP and TLS internals (hyper, rustls) stay silent unless `RUST_LOG` names them.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter for `-v` given `count` times.
fn directives(count: u8) -> &'static str {
    match count {
        0 => "meshboot=warn,mesh_core=warn",
        1 => "meshboot=info,mesh_core=info,kube_client=warn",
        2 => "meshboot=debug,mesh_core=debug,kube_client=debug",
        _ => "meshboot=trace,mesh_core=trace,kube_client=debug,kube_runtime=debug",
    }
}

/// Installs the stderr subscriber. A `RUST_LOG` that does not parse is reported and ignored.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => filter,
            Err(err) => {
                eprintln!("warn: RUST_LOG={value:?} is not a valid filter ({err}); using -v");
                EnvFilter::new(directives(verbose))
            }
        },
        _ => EnvFilter::new(directives(verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verbosity_is_a_valid_filter_and_never_enables_http_internals() {
        for count in 0..5 {
            let text = directives(count);
            assert!(EnvFilter::try_new(text).is_ok(), "{text}");
            assert!(
                !text.contains("hyper") && !text.contains("rustls"),
                "{text}"
            );
        }
    }
}
