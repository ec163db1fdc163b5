//! The policy blocks of jobs and groups: `update`, `migrate`, `restart`, `reschedule`,
//! `disconnect`. Fields are `Option` where Nomad distinguishes "not given" (merged with the
//! defaults by `Job::canonicalize`) from an explicit zero; after canonicalization all are `Some`.

use serde::{Deserialize, Serialize};

use super::common::{Extra, string_enum};
use super::duration::Nanos;

string_enum!(
    /// `update.health_check` / `migrate.health_check`.
    HealthCheckMode {
        Checks = "checks",
        TaskStates = "task_states",
        Manual = "manual",
    }
);

string_enum!(
    /// `restart.mode`.
    RestartMode {
        Fail = "fail",
        Delay = "delay",
    }
);

string_enum!(
    /// `reschedule.delay_function`.
    DelayFunction {
        Constant = "constant",
        Exponential = "exponential",
        Fibonacci = "fibonacci",
    }
);

/// `update` block (`UpdateStrategy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UpdateStrategy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub stagger: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_parallel: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub health_check: Option<HealthCheckMode>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub min_healthy_time: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub healthy_deadline: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub progress_deadline: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub canary: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub auto_revert: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub auto_promote: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `migrate` block (`MigrateStrategy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MigrateStrategy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_parallel: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub health_check: Option<HealthCheckMode>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub min_healthy_time: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub healthy_deadline: Option<Nanos>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `restart` block (`RestartPolicy`): client-side restarts in place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attempts: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub interval: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub delay: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub mode: Option<RestartMode>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub render_templates: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `reschedule` block (`ReschedulePolicy`): server-side replacement of failed allocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ReschedulePolicy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attempts: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub interval: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub delay: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub delay_function: Option<DelayFunction>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_delay: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub unlimited: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Group `disconnect` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DisconnectStrategy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub lost_after: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub replace: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub stop_on_client_after: Option<Nanos>,
    /// `keep_original` | `keep_replacement` | `best_score` | `longest_running`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reconcile: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `disconnect.reconcile` accepts.
pub const DISCONNECT_RECONCILE_MODES: &[&str] = &["keep_original", "keep_replacement", "best_score", "longest_running"];

// Merging: a field given in `over` wins over `self`.
macro_rules! merge_options {
    ($self:ident, $over:ident, $($field:ident),+) => {
        $(if $over.$field.is_some() { $self.$field = $over.$field.clone(); })+
        for (k, v) in &$over.extra { $self.extra.insert(k.clone(), v.clone()); }
    };
}

impl UpdateStrategy {
    pub fn merge(&mut self, over: &UpdateStrategy) {
        merge_options!(
            self,
            over,
            stagger,
            max_parallel,
            health_check,
            min_healthy_time,
            healthy_deadline,
            progress_deadline,
            canary,
            auto_revert,
            auto_promote
        );
    }
    /// Nomad's defaults for the `update` block.
    pub fn defaults() -> UpdateStrategy {
        UpdateStrategy {
            stagger: Some(Nanos::from_secs(30)),
            max_parallel: Some(1),
            health_check: Some(HealthCheckMode::Checks),
            min_healthy_time: Some(Nanos::from_secs(10)),
            healthy_deadline: Some(Nanos::from_mins(5)),
            progress_deadline: Some(Nanos::from_mins(10)),
            canary: Some(0),
            auto_revert: Some(false),
            auto_promote: Some(false),
            extra: Extra::new(),
        }
    }
    /// True when no field is given (an empty `update {}` block).
    pub fn is_empty(&self) -> bool {
        *self == UpdateStrategy::default()
    }
    /// Max parallel 0 means "no deployment": updates are forced.
    pub fn is_rolling(&self) -> bool {
        self.max_parallel.unwrap_or(0) > 0
    }
}

impl MigrateStrategy {
    pub fn merge(&mut self, over: &MigrateStrategy) {
        merge_options!(self, over, max_parallel, health_check, min_healthy_time, healthy_deadline);
    }
    pub fn defaults() -> MigrateStrategy {
        MigrateStrategy {
            max_parallel: Some(1),
            health_check: Some(HealthCheckMode::Checks),
            min_healthy_time: Some(Nanos::from_secs(10)),
            healthy_deadline: Some(Nanos::from_mins(5)),
            extra: Extra::new(),
        }
    }
}

impl RestartPolicy {
    pub fn merge(&mut self, over: &RestartPolicy) {
        merge_options!(self, over, attempts, interval, delay, mode, render_templates);
    }
}

impl ReschedulePolicy {
    pub fn merge(&mut self, over: &ReschedulePolicy) {
        merge_options!(self, over, attempts, interval, delay, delay_function, max_delay, unlimited);
    }
}

impl DisconnectStrategy {
    pub fn merge(&mut self, over: &DisconnectStrategy) {
        merge_options!(self, over, lost_after, replace, stop_on_client_after, reconcile);
    }
}
