//! atc's log level, set by `--log-level` and changeable while atc runs
//! (`PUT /api/v1/log-level`). The level is the process's: every server in
//! it logs through the one subscriber.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::{EnvFilter, Registry, reload};

/// The levels Concourse names (lager's, plus `warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// lager's most severe level; the nearest filter is `error`.
    Fatal,
}

impl LogLevel {
    pub fn parse(name: &str) -> Option<LogLevel> {
        Some(match name {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }

    /// The filter for this level; sqlx's statement logs stay at `warn`. The
    /// Vault client's own logs and spans are off: they report every path a
    /// lookup tries in vain as an error, and atc traces and logs its Vault
    /// requests itself. The AWS SDK's stay at `warn`: at debug it logs its
    /// requests and answers, which may hold a secret, and atc traces its
    /// AWS calls itself.
    fn filter(self) -> EnvFilter {
        let level = match self {
            LogLevel::Fatal => "error",
            other => other.name(),
        };
        let aws = AWS_SDK_TARGETS.map(|target| format!(",{target}=warn")).concat();
        EnvFilter::new(format!("{level},sqlx=warn,vaultrs=off,rustify=off{aws}"))
    }
}

/// The AWS SDK's crates that log.
const AWS_SDK_TARGETS: [&str; 8] = [
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_ssm",
    "aws_sdk_secretsmanager",
    "aws_sdk_sts",
];

/// The level in force, and the filter to change when it changes.
pub struct LogControl {
    /// `None` until a subscriber logs through [`LogControl::filter_layer`]
    /// (an embedding program or a test may have its own).
    handle: Mutex<Option<reload::Handle<EnvFilter, Registry>>>,
    level: Mutex<LogLevel>,
}

/// The subscriber whose filter [`LogControl`] changes is gone.
#[derive(Debug, thiserror::Error)]
#[error("cannot change the log level: {0}")]
pub struct CannotChangeLevel(#[from] reload::Error);

impl LogControl {
    pub fn new(level: LogLevel) -> LogControl {
        LogControl { handle: Mutex::new(None), level: Mutex::new(level) }
    }

    /// The filter layer of a subscriber whose level this controls: `RUST_LOG`
    /// when set, else `level`.
    pub fn filter_layer(&self, level: LogLevel) -> reload::Layer<EnvFilter, Registry> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| level.filter());
        let (layer, handle) = reload::Layer::new(filter);
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        *self.level.lock().unwrap_or_else(|e| e.into_inner()) = level;
        layer
    }

    pub fn level(&self) -> LogLevel {
        *self.level.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs at `level` from now on (replacing `RUST_LOG`'s finer filter).
    pub fn set_level(&self, level: LogLevel) -> Result<(), CannotChangeLevel> {
        if let Some(handle) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            handle.reload(level.filter())?;
        }
        *self.level.lock().unwrap_or_else(|e| e.into_inner()) = level;
        Ok(())
    }
}

/// This process's log control.
pub fn control() -> &'static LogControl {
    static CONTROL: OnceLock<LogControl> = OnceLock::new();
    CONTROL.get_or_init(|| LogControl::new(LogLevel::Info))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    /// Collects the messages of the events that pass the filter.
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collect {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.lock().unwrap().push(event.metadata().level().to_string());
        }
    }

    #[test]
    fn changing_the_level_changes_what_is_logged() {
        let control = LogControl::new(LogLevel::Info);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber =
            tracing_subscriber::registry().with(control.filter_layer(LogLevel::Info)).with(Collect(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("hidden");
            control.set_level(LogLevel::Debug).unwrap();
            tracing::debug!("shown");
            control.set_level(LogLevel::Fatal).unwrap();
            tracing::warn!("hidden");
            tracing::error!("shown");
        });
        assert_eq!(*seen.lock().unwrap(), ["DEBUG", "ERROR"]);
        assert_eq!(control.level(), LogLevel::Fatal);
    }

    #[test]
    fn names_round_trip() {
        for name in ["debug", "info", "warn", "error", "fatal"] {
            assert_eq!(LogLevel::parse(name).map(LogLevel::name), Some(name));
        }
        assert_eq!(LogLevel::parse("loud"), None);
    }
}
