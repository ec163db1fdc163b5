//! The scheduler workers' metrics, registered in the agent's Prometheus registry.

pub use prometheus::Registry;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

/// Latency buckets from 1 ms to about 30 s (factor 1.5).
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 1.5, 26).expect("valid buckets")
}

/// Counters and histograms of the scheduler workers (names start with `stead_sched_`).
#[derive(Clone)]
pub struct SchedMetrics {
    /// Evaluations processed, by outcome (`complete`, `blocked`, `requeued`, `failed`,
    /// `lease_lost`, `error`).
    pub evals: IntCounterVec,
    /// Allocations placed by committed plans.
    pub placements: IntCounter,
    /// Allocations stopped by committed plans.
    pub stops: IntCounter,
    /// Placements a commit dropped because their node no longer fitted.
    pub dropped: IntCounter,
    /// Plan transactions that started over (conflicts and other retryable errors).
    pub conflicts: IntCounter,
    /// Scheduling attempts after an evaluation's first (a fresh snapshot after a partial
    /// commit or a job change).
    pub retries: IntCounter,
    /// Ready evaluations coalesced into the one claimed for their job.
    pub coalesced: IntCounter,
    /// Claims that lost their pick to another worker.
    pub claims_contended: IntCounter,
    /// Time to commit one plan (all its chunks).
    pub plan_seconds: Histogram,
    /// Time from claim to completion of an evaluation.
    pub eval_seconds: Histogram,
}

impl SchedMetrics {
    /// Metrics registered in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered();
        registry.register(Box::new(m.evals.clone()))?;
        for c in [&m.placements, &m.stops, &m.dropped, &m.conflicts, &m.retries, &m.coalesced, &m.claims_contended] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(m.plan_seconds.clone()))?;
        registry.register(Box::new(m.eval_seconds.clone()))?;
        Ok(m)
    }

    /// Metrics nobody exports (tests, benchmarks).
    pub fn unregistered() -> Self {
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid counter");
        let histogram = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(latency_buckets())).expect("valid histogram")
        };
        Self {
            evals: IntCounterVec::new(
                Opts::new("stead_sched_evals_total", "Evaluations processed, by outcome."),
                &["outcome"],
            )
            .expect("valid counter vec"),
            placements: counter("stead_sched_placements_total", "Allocations placed by committed plans."),
            stops: counter("stead_sched_stops_total", "Allocations stopped by committed plans."),
            dropped: counter(
                "stead_sched_dropped_placements_total",
                "Placements dropped at commit: the node no longer fitted.",
            ),
            conflicts: counter("stead_sched_plan_conflicts_total", "Plan transactions that started over."),
            retries: counter("stead_sched_retries_total", "Scheduling attempts after an evaluation's first."),
            coalesced: counter("stead_sched_coalesced_evals_total", "Evaluations coalesced into another of their job."),
            claims_contended: counter(
                "stead_sched_claims_contended_total",
                "Claims that lost their pick to another worker.",
            ),
            plan_seconds: histogram("stead_sched_plan_seconds", "Time to commit one plan."),
            eval_seconds: histogram("stead_sched_eval_seconds", "Time from claim to completion of an evaluation."),
        }
    }
}

/// The registry's metrics in Prometheus text format.
pub fn render(registry: &Registry) -> String {
    prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap_or_default()
}

/// The registry's metrics in Prometheus' text format (`/v1/metrics?format=prometheus`).
pub fn prometheus_text(registry: &Registry) -> String {
    let mut out = String::new();
    // Encoding gathered families into a String fails only on a malformed family, which
    // this registry's own metrics never are; what was encoded before it stays.
    let _ = prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut out);
    out
}

/// The registry's metrics in Nomad's JSON shape (`/v1/metrics`): `Counters`, `Gauges` and
/// `Samples` (histograms, with count, sum and mean), each with `Name` and `Labels`.
/// `timestamp`: when they were read, as Nomad formats it.
pub fn nomad_json(registry: &Registry, timestamp: &str) -> serde_json::Value {
    use prometheus::proto::MetricType;
    use serde_json::json;
    let (mut counters, mut gauges, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for family in registry.gather() {
        let name = family.name();
        for m in family.get_metric() {
            let labels: serde_json::Map<String, serde_json::Value> =
                m.get_label().iter().map(|l| (l.name().to_owned(), json!(l.value()))).collect();
            match family.get_field_type() {
                MetricType::COUNTER => {
                    let v = m.get_counter().get_value();
                    counters.push(json!({"Name": name, "Count": v, "Sum": v, "Labels": labels}));
                }
                MetricType::GAUGE => {
                    gauges.push(json!({"Name": name, "Value": m.get_gauge().get_value(), "Labels": labels}))
                }
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    let (count, sum) = (h.get_sample_count(), h.get_sample_sum());
                    let mean = if count > 0 { sum / count as f64 } else { 0.0 };
                    samples.push(json!({"Name": name, "Count": count, "Sum": sum, "Mean": mean, "Labels": labels}));
                }
                _ => {}
            }
        }
    }
    json!({"Timestamp": timestamp, "Counters": counters, "Gauges": gauges, "Samples": samples, "Points": []})
}
