//! Log lines on stderr: the human format (the default), or with `--log json`
//! one JSON object per line that always carries the `host` and the `shard`
//! it was written on, so an operator's log pipeline can filter by either.
//!
//! A JSON line looks like
//! `{"timestamp":"…","level":"INFO","host":"a","shard":0,"thread":"shard-0",
//! "target":"mudshard::server","message":"…",…the event's fields}`.
//! `shard` is the shard whose thread wrote the line, or `null` for the
//! threads beside the shards (main, store, hasher), which belong to none.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

thread_local! {
    /// The shard this thread runs, set once when a shard thread starts.
    static SHARD: Cell<Option<u16>> = const { Cell::new(None) };
}

/// The host id every JSON line carries, set by [`init`].
static HOST: OnceLock<String> = OnceLock::new();

/// Marks the calling thread as shard `k`'s: its log lines say so.
pub fn set_thread_shard(k: u16) {
    SHARD.with(|s| s.set(Some(k)));
}

/// Installs the process's logger: `RUST_LOG` filters (default `info`),
/// stderr, human text or JSON lines.
pub fn init(json: bool, host_id: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = HOST.set(host_id.to_string());
        builder.event_format(JsonLines).init();
    } else {
        builder.init();
    }
}

/// The JSON line format (see the module's documentation).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert(
            "host".into(),
            HOST.get().map_or(Value::Null, |h| Value::String(h.clone())),
        );
        line.insert(
            "shard".into(),
            SHARD.with(Cell::get).map_or(Value::Null, Value::from),
        );
        if let Some(name) = std::thread::current().name() {
            line.insert("thread".into(), Value::String(name.to_string()));
        }
        line.insert("target".into(), Value::String(meta.target().to_string()));
        event.record(&mut Fields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields into the line. A field named like one of the
/// line's own keys fills it when the line has none (a line of the main
/// thread about shard 2 says `"shard":2`), is dropped when it says the same,
/// and is kept as `field.NAME` when it differs, so nothing is overwritten.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        match self.0.get(name) {
            None | Some(Value::Null) => {
                self.0.insert(name.to_string(), value);
            }
            Some(same) if *same == value => {}
            Some(_) => {
                self.0.insert(format!("field.{name}"), value);
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}
