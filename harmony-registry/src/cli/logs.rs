//! `-v` and `RUST_LOG`: what a run did, span by span (app, pass, step,
//! verification, API request), on stderr, so a failed deploy can be
//! replayed in detail. Spans carry names, paths and counts, never values.

use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The crates whose spans `-v` shows.
const OURS: [&str; 3] = ["harmony", "harmony_k8s", "harmony_registry"];

/// Start logging to stderr: `-v` shows each span as it closes (with its
/// duration), `-vv` also every API request; `RUST_LOG` (`target=level,…`)
/// chooses instead. Nothing is logged without either.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match text.parse::<Targets>() {
            Ok(targets) => Some(targets),
            Err(e) => {
                eprintln!("warning: `RUST_LOG` is ignored: {e} (write it as `target=level,…`, e.g. `harmony_k8s=debug`)");
                None
            }
        },
        _ => None,
    };
    let filter = filter.or_else(|| {
        let level = match verbose {
            0 => return None,
            1 => Level::INFO,
            _ => Level::DEBUG,
        };
        Some(OURS.iter().fold(Targets::new(), |t, target| t.with_target(*target, level)))
    });
    let Some(filter) = filter else { return };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
