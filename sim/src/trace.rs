//! A small `tracing` subscriber for reading a run: with `STEAD_SIM_TRACE=<level>`
//! (`error`, `warn`, `info`, `debug`, `trace`), stead's own events at that level and above
//! go to stderr, each with the simulated time. Spans are
//! ignored. Off by default (a run logs nothing).

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

struct Print {
    level: Level,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Print {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level && metadata.target().starts_with("stead")
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let at = madsim::time::TimeHandle::try_current().map(|t| t.elapsed()).unwrap_or_default();
        eprintln!(
            "{:>12.6} {:>5} {}:{}",
            at.as_secs_f64(),
            event.metadata().level(),
            event.metadata().target(),
            fields.0
        );
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the subscriber when `STEAD_SIM_TRACE` names a level.
pub fn install_from_env() {
    let Ok(level) = std::env::var("STEAD_SIM_TRACE") else { return };
    let Ok(level) = level.parse::<Level>() else {
        eprintln!("STEAD_SIM_TRACE={level:?}: not a level (error, warn, info, debug, trace)");
        return;
    };
    let _ = tracing::subscriber::set_global_default(Print { level });
}
