//! Head sampling: `--tracing-sampling-strategy` and `--tracing-sampling-rate`,
//! or `OTEL_TRACES_SAMPLER(_ARG)` when the flags are unset.

use std::str::FromStr;

use opentelemetry_sdk::trace::Sampler;

use super::TelemetryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingStrategy {
    /// Every trace, whatever the caller decided.
    Always,
    Never,
    /// A fraction of traces, by trace id.
    Probability,
    /// Follow the caller's sampled flag; sample every root.
    ParentAlways,
    /// Follow the caller's sampled flag; sample no root.
    ParentNever,
    /// Follow the caller's sampled flag; sample a fraction of roots.
    ParentProbability,
}

const ACCEPTED: &str = "always, never, probability, parent-always, parent-never, parent-probability \
     (or always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)";

/// A sampling strategy that is neither ours nor OpenTelemetry's name of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not one of {ACCEPTED}")]
pub struct UnknownSamplingStrategy(pub String);

impl FromStr for SamplingStrategy {
    type Err = UnknownSamplingStrategy;
    fn from_str(value: &str) -> Result<Self, UnknownSamplingStrategy> {
        use SamplingStrategy::*;
        match value {
            "always" | "always_on" => Ok(Always),
            "never" | "always_off" => Ok(Never),
            "probability" | "traceidratio" => Ok(Probability),
            "parent-always" | "parentbased_always_on" => Ok(ParentAlways),
            "parent-never" | "parentbased_always_off" => Ok(ParentNever),
            "parent-probability" | "parentbased_traceidratio" => Ok(ParentProbability),
            _ => Err(UnknownSamplingStrategy(value.to_string())),
        }
    }
}

impl SamplingStrategy {
    pub fn parse_flag(value: &str) -> Result<SamplingStrategy, UnknownSamplingStrategy> {
        value.parse()
    }

    fn sampler(self, rate: f64) -> Sampler {
        use SamplingStrategy::*;
        match self {
            Always => Sampler::AlwaysOn,
            Never => Sampler::AlwaysOff,
            Probability => Sampler::TraceIdRatioBased(rate),
            ParentAlways => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            ParentNever => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            ParentProbability => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(rate))),
        }
    }
}

/// The sampler the flags ask for; where a flag is unset, the OTel variable
/// decides, and then the defaults (`always`, 1.0). A bad variable is an
/// error naming it, never a silent default.
pub fn sampler(
    strategy: Option<SamplingStrategy>,
    rate: Option<f64>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Sampler, TelemetryError> {
    let strategy = match strategy {
        Some(strategy) => strategy,
        None => match env("OTEL_TRACES_SAMPLER") {
            Some(value) => value.parse().map_err(|message| TelemetryError::env("OTEL_TRACES_SAMPLER", message))?,
            None => SamplingStrategy::Always,
        },
    };
    let rate = match rate {
        Some(rate) => rate,
        None => match env("OTEL_TRACES_SAMPLER_ARG") {
            Some(value) => super::config::parse_sampling_rate(&value)
                .map_err(|message| TelemetryError::env("OTEL_TRACES_SAMPLER_ARG", message))?,
            None => 1.0,
        },
    };
    Ok(strategy.sampler(rate))
}

#[cfg(test)]
mod tests {
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
    use rand::Rng;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn decide(sampler: &Sampler, parent: Option<&Context>) -> bool {
        let trace_id = match parent {
            Some(cx) => cx.span().span_context().trace_id(),
            None => TraceId::from_bytes(rand::rng().random::<[u8; 16]>()),
        };
        let result = sampler.should_sample(parent, trace_id, "GET /api/v1/info", &SpanKind::Server, &[], &[]);
        result.decision == SamplingDecision::RecordAndSample
    }

    fn remote_parent(sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let span = SpanContext::new(
            TraceId::from_bytes(rand::rng().random::<[u8; 16]>()),
            SpanId::from_bytes(rand::rng().random::<[u8; 8]>()),
            flags,
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn both_spellings_of_each_strategy_are_accepted() {
        for (ours, otel) in [
            ("always", "always_on"),
            ("never", "always_off"),
            ("probability", "traceidratio"),
            ("parent-always", "parentbased_always_on"),
            ("parent-never", "parentbased_always_off"),
            ("parent-probability", "parentbased_traceidratio"),
        ] {
            assert_eq!(ours.parse::<SamplingStrategy>(), otel.parse::<SamplingStrategy>());
        }
        let message = "sometimes".parse::<SamplingStrategy>().unwrap_err().to_string();
        assert!(message.contains("parent-probability") && message.contains("traceidratio"), "{message}");
    }

    #[test]
    fn probability_samples_its_rate_of_root_traces() {
        let sampler = sampler(Some(SamplingStrategy::Probability), Some(0.25), no_env).unwrap();
        let sampled = (0..20_000).filter(|_| decide(&sampler, None)).count();
        let fraction = sampled as f64 / 20_000.0;
        assert!((0.23..=0.27).contains(&fraction), "sampled {fraction}");
    }

    #[test]
    fn never_samples_nothing_and_always_everything_whatever_the_parent_says() {
        let never = sampler(Some(SamplingStrategy::Never), None, no_env).unwrap();
        let always = sampler(Some(SamplingStrategy::Always), None, no_env).unwrap();
        for parent in [None, Some(remote_parent(true)), Some(remote_parent(false))] {
            assert!(!decide(&never, parent.as_ref()));
            assert!(decide(&always, parent.as_ref()));
        }
    }

    #[test]
    fn parent_based_strategies_follow_the_callers_flag_both_ways() {
        for strategy in
            [SamplingStrategy::ParentAlways, SamplingStrategy::ParentNever, SamplingStrategy::ParentProbability]
        {
            let sampler = sampler(Some(strategy), Some(0.0), no_env).unwrap();
            assert!(decide(&sampler, Some(&remote_parent(true))), "{strategy:?} drops a sampled parent");
            assert!(!decide(&sampler, Some(&remote_parent(false))), "{strategy:?} keeps an unsampled parent");
        }
        let roots = |strategy| {
            let sampler = sampler(Some(strategy), Some(0.0), no_env).unwrap();
            decide(&sampler, None)
        };
        assert!(roots(SamplingStrategy::ParentAlways));
        assert!(!roots(SamplingStrategy::ParentNever));
        assert!(!roots(SamplingStrategy::ParentProbability));
    }

    #[test]
    fn otel_variables_apply_only_where_flags_are_unset() {
        let env = |name: &str| match name {
            "OTEL_TRACES_SAMPLER" => Some("always_off".to_string()),
            "OTEL_TRACES_SAMPLER_ARG" => Some("0.5".to_string()),
            _ => None,
        };
        assert!(!decide(&sampler(None, None, env).unwrap(), None));
        assert!(decide(&sampler(Some(SamplingStrategy::Always), None, env).unwrap(), None));

        let bad = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "jaeger_remote".to_string());
        let message = sampler(None, None, bad).unwrap_err().to_string();
        assert!(message.contains("OTEL_TRACES_SAMPLER") && message.contains("always_on"), "{message}");
        let bad_rate = |name: &str| (name == "OTEL_TRACES_SAMPLER_ARG").then(|| "5".to_string());
        assert!(sampler(None, None, bad_rate).unwrap_err().to_string().contains("OTEL_TRACES_SAMPLER_ARG"));
    }
}
