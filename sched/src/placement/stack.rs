//! One task group's placement run: candidates, feasibility memoized per computed class,
//! ranking, and the limited scan that picks a node.

use std::collections::{BTreeMap, BTreeSet};

use stead_model::{
    AllocMetric, AllocatedCpuResources, AllocatedMemoryResources, AllocatedPortMapping, AllocatedResources,
    AllocatedSharedResources, AllocatedTaskResources, Constraint, Job, JobType, NetworkResource, NodeId, NodeScoreMeta,
    TaskGroup,
};

use super::cluster::{AllocEntry, Ask, ClusterView, NodeView, Taken, is_candidate, job_pool};
use super::constraint::{RegexCache, check_operator, resolve_target, target_is_unique};
use super::rng::SplitMix64;

/// How nodes are scored for fit (Nomad's `SchedulerAlgorithm`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Prefer fuller nodes (Google's "best fit v3").
    #[default]
    Binpack,
    /// Prefer emptier nodes.
    Spread,
}

/// Cluster-wide knobs of the placement core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceConfig {
    pub algorithm: Algorithm,
    /// Scan floor for groups with affinities or spreads (Nomad's
    /// `node_limit_for_feasibility_checks`, 100): scoring a preference needs a wider look
    /// than the power of two choices, but an unbounded scan made such jobs quadratic.
    pub node_limit_with_preferences: usize,
}

impl Default for PlaceConfig {
    fn default() -> Self {
        Self { algorithm: Algorithm::Binpack, node_limit_with_preferences: 100 }
    }
}

/// Options scoring at or below this are set aside (up to [`SKIP_MAX`]) in the hope of better
/// ones, as Nomad's limit iterator does for penalised nodes.
const SKIP_SCORE_THRESHOLD: f64 = 0.0;
const SKIP_MAX: usize = 3;
/// Nomad's best-fit score range is [0, 18].
const FITNESS_MAX: f64 = 18.0;
/// How many of the best-scored nodes a metric lists.
const SCORE_META_MAX: usize = 5;

/// Filter reasons recorded in `AllocMetric::constraint_filtered`.
pub const FILTER_DRIVERS: &str = "missing drivers";
pub const FILTER_DEVICES: &str = "missing devices";
pub const FILTER_DISTINCT_HOSTS: &str = "distinct_hosts";
pub const FILTER_HOST_VOLUMES: &str = "missing compatible host volumes";

/// Score names in `NodeScoreMeta::scores`.
pub const SCORE_BINPACK: &str = "binpack";
pub const SCORE_ANTI_AFFINITY: &str = "job-anti-affinity";
pub const SCORE_RESCHEDULE_PENALTY: &str = "node-reschedule-penalty";
pub const SCORE_AFFINITY: &str = "node-affinity";
pub const SCORE_SPREAD: &str = "allocation-spread";

/// One allocation placed on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node_id: NodeId,
    pub node_name: String,
    /// CPU, memory, disk, cores and ports (dynamic ones assigned) the allocation was given.
    pub resources: AllocatedResources,
    /// The normalized score of the chosen node.
    pub score: f64,
    pub metric: AllocMetric,
}

/// Which allocations a `distinct_*` constraint counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Job,
    Group,
}

#[derive(Debug)]
struct DistinctProperty {
    key: String,
    target: String,
    limit: u64,
    scope: Scope,
    /// Allocations per property value.
    used: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct SpreadInfo {
    attribute: String,
    weight: f64,
    /// Desired allocations per value; `*` for the rest when targets sum below 100 %.
    desired: BTreeMap<String, f64>,
    /// Allocations of this group per value.
    used: BTreeMap<String, u64>,
}

/// The scores of one node, by name (at most one of each kind: five).
#[derive(Debug, Clone, Copy, Default)]
struct Scores {
    items: [(&'static str, f64); 5],
    len: usize,
}

impl Scores {
    fn push(&mut self, score: (&'static str, f64)) {
        self.items[self.len] = score;
        self.len += 1;
    }

    fn as_slice(&self) -> &[(&'static str, f64)] {
        &self.items[..self.len]
    }
}

/// A feasible node with its scores.
struct Scored {
    index: usize,
    norm: f64,
    scores: Scores,
}

#[derive(Debug, Clone)]
enum Verdict {
    Feasible,
    Filtered(String),
}

/// The placement state of one task group: build once per evaluation attempt, then call
/// [`place_one`](Self::place_one) per allocation. The candidate order and the scan cursor
/// carry over between placements, so successive allocations look at different nodes first.
///
/// Counts that preferences need (spread values, distinct properties) are read from the view
/// when the placer is built and kept up to date by its own placements: stop or remove
/// allocations in the view before building the placer.
#[derive(Debug)]
pub struct GroupPlacer<'j> {
    job: &'j Job,
    group: &'j TaskGroup,
    ask: Ask,
    config: PlaceConfig,
    rng: SplitMix64,
    candidates: Vec<usize>,
    /// `candidates[..shuffled]` are in their shuffled order; the rest are not drawn yet.
    shuffled: usize,
    cursor: usize,
    limit: usize,
    /// Job constraints first, then group and task constraints.
    class_constraints: Vec<&'j Constraint>,
    /// How many of `class_constraints` are the job's.
    job_class_constraints: usize,
    node_constraints: Vec<&'j Constraint>,
    drivers: BTreeSet<&'j str>,
    asks_devices: bool,
    /// Sources of the group's `host` volumes: the node must offer each.
    host_volumes: BTreeSet<&'j str>,
    distinct_hosts: Option<Scope>,
    distinct_properties: Vec<DistinctProperty>,
    affinities: Vec<(&'j str, &'j str, &'j str, f64)>,
    affinity_weight_sum: f64,
    /// Matched affinity weight per computed class; `None` when an affinity names a unique
    /// target and must be evaluated per node.
    affinity_memo: Option<BTreeMap<u64, f64>>,
    spreads: Vec<SpreadInfo>,
    spread_weight_sum: f64,
    class_memo: BTreeMap<u64, Verdict>,
    regexes: RegexCache,
    base_metric: AllocMetric,
    /// Nodes where the allocation being replaced failed: scored −1 (Nomad's rescheduling
    /// penalty). Set before `place_one`.
    pub penalty_nodes: BTreeSet<NodeId>,
}

fn ceil_log2(n: usize) -> usize {
    if n <= 1 { 0 } else { (usize::BITS - (n - 1).leading_zeros()) as usize }
}

fn check_constraint(c: &Constraint, nv: &NodeView, regexes: &mut RegexCache) -> bool {
    let l = resolve_target(&c.l_target, &nv.node);
    let r = resolve_target(&c.r_target, &nv.node);
    check_operator(&c.operand, l, r, regexes)
}

fn constraint_key(c: &Constraint) -> String {
    format!("{} {} {}", c.l_target, c.operand, c.r_target)
}

impl<'j> GroupPlacer<'j> {
    pub fn new(job: &'j Job, group: &'j TaskGroup, view: &ClusterView, seed: u64, config: PlaceConfig) -> Self {
        let rng = SplitMix64::new(seed);
        let pool = job_pool(&job.node_pool);
        let star = ["*".to_owned()];
        let datacenters: &[String] = if job.datacenters.is_empty() { &star } else { &job.datacenters };
        let memo = view.candidates(pool, datacenters);
        let base_metric = AllocMetric {
            node_pool: pool.to_owned(),
            nodes_in_pool: memo.nodes_in_pool,
            nodes_available: memo.nodes_available.clone(),
            ..AllocMetric::default()
        };
        // Shuffled lazily (Fisher–Yates as the scan goes): a placement run looks at a few
        // thousand of a hundred thousand candidates, not at all of them.
        let candidates = memo.indexes.clone();

        let mut class_constraints = Vec::new();
        let mut node_constraints = Vec::new();
        let mut job_class_constraints = 0;
        let mut distinct_hosts = None;
        let mut distinct_properties = Vec::new();
        let scoped = job
            .constraints
            .iter()
            .map(|c| (c, Scope::Job))
            .chain(group.constraints.iter().map(|c| (c, Scope::Group)))
            .chain(group.tasks.iter().flat_map(|t| t.constraints.iter().map(|c| (c, Scope::Group))));
        for (c, scope) in scoped {
            match c.operand.as_str() {
                "distinct_hosts" => {
                    // `distinct_hosts = false` switches it off.
                    if c.r_target.trim() != "false" {
                        distinct_hosts = Some(match distinct_hosts {
                            Some(Scope::Job) => Scope::Job,
                            _ => scope,
                        });
                    }
                }
                "distinct_property" => distinct_properties.push(DistinctProperty {
                    key: constraint_key(c),
                    target: c.l_target.clone(),
                    limit: c.r_target.trim().parse::<u64>().ok().filter(|&n| n > 0).unwrap_or(1),
                    scope,
                    used: BTreeMap::new(),
                }),
                _ if target_is_unique(&c.l_target) || target_is_unique(&c.r_target) => node_constraints.push(c),
                _ => {
                    job_class_constraints += usize::from(scope == Scope::Job);
                    class_constraints.push(c);
                }
            }
        }

        let affinities: Vec<_> = job
            .affinities
            .iter()
            .chain(&group.affinities)
            .chain(group.tasks.iter().flat_map(|t| t.affinities.iter()))
            .map(|a| (a.l_target.as_str(), a.operand.as_str(), a.r_target.as_str(), f64::from(a.weight.unwrap_or(50))))
            .collect();
        let affinity_weight_sum = affinities.iter().map(|a| a.3.abs()).sum();
        let affinities_unique = affinities.iter().any(|a| target_is_unique(a.0) || target_is_unique(a.2));

        let desired_total = f64::from(group.desired_count().max(1));
        let spreads: Vec<SpreadInfo> = job
            .spreads
            .iter()
            .chain(&group.spreads)
            .map(|s| {
                let mut desired = BTreeMap::new();
                let mut percent_sum = 0;
                for t in &s.spread_target {
                    percent_sum += t.percent;
                    desired.insert(t.value.clone(), f64::from(t.percent) / 100.0 * desired_total);
                }
                if !s.spread_target.is_empty() && percent_sum < 100 {
                    desired.insert("*".to_owned(), f64::from(100 - percent_sum) / 100.0 * desired_total);
                }
                SpreadInfo {
                    attribute: s.attribute.clone(),
                    weight: f64::from(s.weight.unwrap_or(50).max(0)),
                    desired,
                    used: BTreeMap::new(),
                }
            })
            .collect();
        let spread_weight_sum = spreads.iter().map(|s| s.weight).sum();

        let limit = if !affinities.is_empty() || !spreads.is_empty() {
            (group.desired_count().max(0) as usize).max(config.node_limit_with_preferences)
        } else if job.kind() == JobType::Batch {
            2
        } else {
            ceil_log2(candidates.len()).max(2)
        };

        let mut placer = Self {
            job,
            group,
            ask: Ask::of_group(group),
            config,
            rng,
            candidates,
            shuffled: 0,
            cursor: 0,
            limit,
            class_constraints,
            job_class_constraints,
            node_constraints,
            drivers: group.tasks.iter().map(|t| t.driver.as_str()).filter(|d| !d.is_empty()).collect(),
            asks_devices: group.tasks.iter().any(|t| t.resources.as_ref().is_some_and(|r| !r.devices.is_empty())),
            host_volumes: group
                .volumes
                .values()
                .filter(|v| v.volume_type == "host")
                .map(|v| v.source.as_str())
                .collect(),
            distinct_hosts,
            distinct_properties,
            affinities,
            affinity_weight_sum,
            affinity_memo: (!affinities_unique).then(BTreeMap::new),
            spreads,
            spread_weight_sum,
            class_memo: BTreeMap::new(),
            regexes: RegexCache::default(),
            base_metric,
            penalty_nodes: BTreeSet::new(),
        };
        if !placer.distinct_properties.is_empty() || !placer.spreads.is_empty() {
            for nv in view.iter() {
                for a in &nv.allocs {
                    placer.count_alloc(nv, a);
                }
            }
        }
        placer
    }

    /// The number of scored options a placement looks at.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The resources one allocation of the group asks for.
    pub fn ask(&self) -> &Ask {
        &self.ask
    }

    fn is_this_job(&self, a: &AllocEntry) -> bool {
        a.namespace == self.job.namespace && a.job_id == self.job.id
    }

    fn count_alloc(&mut self, nv: &NodeView, a: &AllocEntry) {
        if (self.distinct_properties.is_empty() && self.spreads.is_empty()) || !self.is_this_job(a) {
            return;
        }
        let same_group = a.task_group == self.group.name;
        for dp in &mut self.distinct_properties {
            if (dp.scope == Scope::Job || same_group)
                && let Some(v) = resolve_target(&dp.target, &nv.node)
            {
                *dp.used.entry(v.to_owned()).or_default() += 1;
            }
        }
        if same_group {
            for s in &mut self.spreads {
                if let Some(v) = resolve_target(&s.attribute, &nv.node) {
                    *s.used.entry(v.to_owned()).or_default() += 1;
                }
            }
        }
    }

    fn class_verdict(&mut self, nv: &NodeView) -> Verdict {
        if let Some(v) = self.class_memo.get(&nv.class) {
            return v.clone();
        }
        let verdict = self.compute_class_verdict(nv);
        self.class_memo.insert(nv.class, verdict.clone());
        verdict
    }

    fn compute_class_verdict(&mut self, nv: &NodeView) -> Verdict {
        // Nomad's order: job constraints, drivers, group and task constraints, devices.
        let job_count = self.job_class_constraints;
        for (i, c) in self.class_constraints.iter().enumerate() {
            if i == job_count && !self.drivers_ok(nv) {
                return Verdict::Filtered(FILTER_DRIVERS.to_owned());
            }
            if !check_constraint(c, nv, &mut self.regexes) {
                return Verdict::Filtered(constraint_key(c));
            }
        }
        if job_count == self.class_constraints.len() && !self.drivers_ok(nv) {
            return Verdict::Filtered(FILTER_DRIVERS.to_owned());
        }
        if !self.host_volumes.iter().all(|v| nv.node.host_volumes.contains_key(*v)) {
            return Verdict::Filtered(FILTER_HOST_VOLUMES.to_owned());
        }
        if self.asks_devices {
            // Device scheduling is not modelled yet: no node offers a requested device.
            return Verdict::Filtered(FILTER_DEVICES.to_owned());
        }
        Verdict::Feasible
    }

    fn drivers_ok(&self, nv: &NodeView) -> bool {
        self.drivers.iter().all(|d| match nv.node.drivers.get(*d) {
            Some(info) => info.detected && info.healthy,
            // Older clients report drivers only as `driver.<name>` attributes.
            None => nv
                .node
                .attributes
                .get(&format!("driver.{d}"))
                .is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true")),
        })
    }

    fn node_verdict(&mut self, nv: &NodeView) -> Verdict {
        if let Verdict::Filtered(reason) = self.class_verdict(nv) {
            return Verdict::Filtered(reason);
        }
        for c in &self.node_constraints {
            if !check_constraint(c, nv, &mut self.regexes) {
                return Verdict::Filtered(constraint_key(c));
            }
        }
        if let Some(scope) = self.distinct_hosts {
            let group = (scope == Scope::Group).then_some(self.group.name.as_str());
            if nv.count_job(&self.job.namespace, &self.job.id, group) > 0 {
                return Verdict::Filtered(FILTER_DISTINCT_HOSTS.to_owned());
            }
        }
        for dp in &self.distinct_properties {
            let ok =
                resolve_target(&dp.target, &nv.node).is_some_and(|v| dp.used.get(v).copied().unwrap_or(0) < dp.limit);
            if !ok {
                return Verdict::Filtered(dp.key.clone());
            }
        }
        Verdict::Feasible
    }

    /// Scores of placing the ask on `nv`, by name, and their average.
    fn score(&mut self, nv: &NodeView) -> (Scores, f64) {
        let mut scores = Scores::default();
        let cap = &nv.capacity;
        let free = |used: i64, cap: i64| if cap > 0 { 1.0 - used as f64 / cap as f64 } else { 0.0 };
        let free_cpu = free(nv.usage.cpu_mhz + nv.cpu_of(&self.ask), cap.cpu_mhz);
        let free_mem = free(nv.usage.memory_mb + self.ask.memory_mb, cap.memory_mb);
        let total = 10f64.powf(free_cpu) + 10f64.powf(free_mem);
        let fitness = match self.config.algorithm {
            Algorithm::Binpack => 20.0 - total,
            Algorithm::Spread => total - 2.0,
        };
        scores.push((SCORE_BINPACK, fitness.clamp(0.0, FITNESS_MAX) / FITNESS_MAX));

        let collisions = nv.count_job(&self.job.namespace, &self.job.id, Some(&self.group.name));
        if collisions > 0 {
            let desired = f64::from(self.group.desired_count().max(1));
            scores.push((SCORE_ANTI_AFFINITY, -((collisions + 1) as f64) / desired));
        }
        if self.penalty_nodes.contains(&nv.node.id) {
            scores.push((SCORE_RESCHEDULE_PENALTY, -1.0));
        }
        if self.affinity_weight_sum > 0.0 {
            let total = match self.affinity_memo.as_ref().and_then(|m| m.get(&nv.class)) {
                Some(&total) => total,
                None => {
                    let mut total = 0.0;
                    for &(l, op, r, weight) in &self.affinities {
                        let (lv, rv) = (resolve_target(l, &nv.node), resolve_target(r, &nv.node));
                        if check_operator(op, lv, rv, &mut self.regexes) {
                            total += weight;
                        }
                    }
                    if let Some(memo) = self.affinity_memo.as_mut() {
                        memo.insert(nv.class, total);
                    }
                    total
                }
            };
            if total != 0.0 {
                scores.push((SCORE_AFFINITY, total / self.affinity_weight_sum));
            }
        }
        if !self.spreads.is_empty() {
            let total = self.spread_score(nv);
            if total != 0.0 {
                scores.push((SCORE_SPREAD, total));
            }
        }
        let norm = scores.as_slice().iter().map(|s| s.1).sum::<f64>() / scores.len as f64;
        (scores, norm)
    }

    fn spread_score(&self, nv: &NodeView) -> f64 {
        let mut total = 0.0;
        for s in &self.spreads {
            let weight = if self.spread_weight_sum > 0.0 { s.weight / self.spread_weight_sum } else { 0.0 };
            let Some(value) = resolve_target(&s.attribute, &nv.node) else {
                // The node lacks the attribute: the largest penalty.
                total -= 1.0;
                continue;
            };
            if s.desired.is_empty() {
                total += even_spread_boost(&s.used, value) * weight;
                continue;
            }
            let desired = s.desired.get(value).or_else(|| s.desired.get("*")).copied().unwrap_or(0.0);
            if desired <= 0.0 {
                total -= 1.0;
                continue;
            }
            // Count this placement too.
            let used = s.used.get(value).copied().unwrap_or(0) as f64 + 1.0;
            total += (desired - used) / desired * weight;
        }
        total
    }

    fn record_filter(metric: &mut AllocMetric, nv: &NodeView, reason: String) {
        metric.nodes_filtered += 1;
        if !nv.node.node_class.is_empty() {
            *metric.class_filtered.entry(nv.node.node_class.clone()).or_default() += 1;
        }
        *metric.constraint_filtered.entry(reason).or_default() += 1;
    }

    /// Place one allocation: scan the shuffled candidates from the cursor until `limit`
    /// feasible nodes were scored (setting aside up to three that score ≤ 0), choose the best
    /// (the first of equals), take its resources in `view`, and return the placement, or the
    /// metric saying why no node fits.
    pub fn place_one(&mut self, view: &mut ClusterView) -> Result<Placement, Box<AllocMetric>> {
        let mut metric = self.base_metric.clone();
        let n = self.candidates.len();
        let mut seen: Vec<Scored> = Vec::new();
        let mut skipped: Vec<Scored> = Vec::new();
        let mut visited = 0;
        while visited < n && seen.len() < self.limit {
            if self.cursor == self.shuffled && self.shuffled < n {
                let j = self.shuffled + self.rng.below((n - self.shuffled) as u64) as usize;
                self.candidates.swap(self.shuffled, j);
                self.shuffled += 1;
            }
            let index = self.candidates[self.cursor];
            self.cursor = (self.cursor + 1) % n;
            visited += 1;
            let Some(option) = self.evaluate(view, index, &mut metric) else {
                continue;
            };
            if option.norm <= SKIP_SCORE_THRESHOLD && skipped.len() < SKIP_MAX {
                skipped.push(option);
            } else {
                seen.push(option);
            }
        }
        // Set-aside options count only when the candidates ran out before the limit.
        let room = self.limit.saturating_sub(seen.len());
        seen.extend(skipped.into_iter().take(room));

        let mut best: Option<usize> = None;
        for (i, s) in seen.iter().enumerate() {
            if best.is_none_or(|b| s.norm > seen[b].norm) {
                best = Some(i);
            }
        }
        Self::record_scores(&mut metric, view, &seen);
        let Some(best) = best else {
            return Err(Box::new(metric));
        };
        let Scored { index, norm, .. } = seen.swap_remove(best);
        Ok(self.commit(view, index, norm, metric))
    }

    /// Place one allocation on a given node (system jobs, sticky or in-place placements):
    /// the node must be a candidate (ready, eligible, in the job's datacenters and pool),
    /// feasible and have room; the metric says why not otherwise.
    pub fn place_on(&mut self, view: &mut ClusterView, node_id: &NodeId) -> Result<Placement, Box<AllocMetric>> {
        let mut metric = self.base_metric.clone();
        let pool = job_pool(&self.job.node_pool);
        let star = ["*".to_owned()];
        let datacenters: &[String] = if self.job.datacenters.is_empty() { &star } else { &self.job.datacenters };
        let Some(index) = view.index_of(node_id).filter(|&i| is_candidate(&view.node_at(i).node, pool, datacenters))
        else {
            return Err(Box::new(metric));
        };
        let Some(option) = self.evaluate(view, index, &mut metric) else {
            return Err(Box::new(metric));
        };
        let norm = option.norm;
        Self::record_scores(&mut metric, view, std::slice::from_ref(&option));
        Ok(self.commit(view, index, norm, metric))
    }

    /// Feasibility, fit and score of one node, counted in `metric`.
    fn evaluate(&mut self, view: &ClusterView, index: usize, metric: &mut AllocMetric) -> Option<Scored> {
        metric.nodes_evaluated += 1;
        let nv = view.node_at(index);
        if let Verdict::Filtered(reason) = self.node_verdict(nv) {
            Self::record_filter(metric, nv, reason);
            return None;
        }
        if let Err(dim) = nv.fits(&self.ask) {
            metric.nodes_exhausted += 1;
            *metric.dimension_exhausted.entry(dim.to_owned()).or_default() += 1;
            if !nv.node.node_class.is_empty() {
                *metric.class_exhausted.entry(nv.node.node_class.clone()).or_default() += 1;
            }
            return None;
        }
        let (scores, norm) = self.score(nv);
        Some(Scored { index, norm, scores })
    }

    fn record_scores(metric: &mut AllocMetric, view: &ClusterView, seen: &[Scored]) {
        let mut top: Vec<&Scored> = seen.iter().collect();
        top.sort_by(|a, b| b.norm.total_cmp(&a.norm));
        metric.score_meta_data = top
            .iter()
            .take(SCORE_META_MAX)
            .map(|s| NodeScoreMeta {
                node_id: view.node_at(s.index).node.id.clone(),
                scores: s.scores.as_slice().iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                norm_score: s.norm,
                ..NodeScoreMeta::default()
            })
            .collect();
    }

    /// Take the ask on the chosen node and remember the new allocation.
    fn commit(&mut self, view: &mut ClusterView, index: usize, norm: f64, metric: AllocMetric) -> Placement {
        let nv = view.node_at_mut(index);
        let taken = nv.take(&self.ask, &mut self.rng);
        let resources = self.allocated_resources(nv, &taken);
        let entry = AllocEntry {
            alloc_id: None,
            namespace: self.job.namespace.clone(),
            job_id: self.job.id.clone(),
            task_group: self.group.name.clone(),
            usage: taken.usage,
        };
        nv.allocs.push(entry);
        let nv = view.node_at(index);
        self.count_alloc(nv, nv.allocs.last().expect("just pushed"));
        Placement { node_id: nv.node.id.clone(), node_name: nv.node.name.clone(), resources, score: norm, metric }
    }

    fn allocated_resources(&self, nv: &NodeView, taken: &Taken) -> AllocatedResources {
        let host_ip = nv
            .node
            .node_resources
            .as_ref()
            .and_then(|r| r.networks.iter().map(|n| n.ip.clone()).find(|ip| !ip.is_empty()))
            .unwrap_or_default();
        let mut dynamic = taken.dynamic_ports.iter().map(|(_, p)| i32::from(*p));
        // Same order as `Ask::of_group`: group networks, then task networks; in each, the
        // reserved ports without a value, then the dynamic ports.
        let mut fill = |net: &NetworkResource| -> NetworkResource {
            let mut net = net.clone();
            for p in net.reserved_ports.iter_mut().filter(|p| u16::try_from(p.value).ok().is_none_or(|v| v == 0)) {
                p.value = dynamic.next().unwrap_or(0);
            }
            for p in &mut net.dynamic_ports {
                p.value = dynamic.next().unwrap_or(0);
            }
            for p in net.reserved_ports.iter_mut().chain(net.dynamic_ports.iter_mut()) {
                if p.to == -1 {
                    p.to = p.value;
                }
            }
            net
        };
        let shared_networks: Vec<NetworkResource> = self.group.networks.iter().map(&mut fill).collect();
        let mut cores = taken.cores.iter().copied();
        let mut tasks = BTreeMap::new();
        let mut task_lifecycles = BTreeMap::new();
        for t in &self.group.tasks {
            let r = t.resources.as_ref();
            let task_cores = r.and_then(|r| r.cores).unwrap_or(0).max(0) as usize;
            let reserved_cores: Vec<u16> = cores.by_ref().take(task_cores).collect();
            let cpu_shares = if task_cores > 0 {
                task_cores as i64 * nv.capacity.mhz_per_core
            } else {
                r.and_then(|r| r.cpu).map_or(100, i64::from).max(0)
            };
            let memory_mb = r.and_then(|r| r.memory_mb).map_or(300, i64::from).max(0);
            tasks.insert(
                t.name.clone(),
                AllocatedTaskResources {
                    cpu: AllocatedCpuResources { cpu_shares, reserved_cores, ..Default::default() },
                    memory: AllocatedMemoryResources {
                        memory_mb,
                        memory_max_mb: r.and_then(|r| r.memory_max_mb).map_or(0, i64::from),
                        ..Default::default()
                    },
                    networks: r.map(|r| r.networks.iter().map(&mut fill).collect()).unwrap_or_default(),
                    ..Default::default()
                },
            );
            task_lifecycles.insert(t.name.clone(), t.lifecycle.clone().filter(|l| !l.hook.is_unset()));
        }
        let ports = shared_networks
            .iter()
            .flat_map(|n| n.reserved_ports.iter().chain(&n.dynamic_ports))
            .map(|p| AllocatedPortMapping {
                label: p.label.clone(),
                value: p.value,
                to: p.to,
                host_ip: host_ip.clone(),
                ..Default::default()
            })
            .collect();
        AllocatedResources {
            tasks,
            task_lifecycles,
            shared: AllocatedSharedResources {
                networks: shared_networks,
                disk_mb: self.ask.disk_mb,
                ports,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// Even spread without targets: values below the least-used one are boosted, the least used
/// gets a boost by how far the most used is ahead, and an even distribution scores −1.
fn even_spread_boost(used: &BTreeMap<String, u64>, value: &str) -> f64 {
    let used_nonzero = || used.values().copied().filter(|&c| c > 0);
    let (Some(min), Some(max)) = (used_nonzero().min(), used_nonzero().max()) else {
        return 0.0; // Nothing placed yet.
    };
    let current = used.get(value).copied().unwrap_or(0);
    if current != min {
        (min as f64 - current as f64) / min as f64
    } else if min == max {
        -1.0
    } else {
        (max - min) as f64 / min as f64
    }
}

/// The result of placing `count` allocations of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPlacement {
    pub placed: Vec<Placement>,
    /// Why the rest could not be placed; `coalesced_failures` counts the unplaced
    /// allocations after the first (placing more of the same ask cannot succeed once one
    /// failed, since usage only grows).
    pub failure: Option<AllocMetric>,
}

/// Place `count` allocations of `group` one after the other on `view`, each seeing the
/// usage of those before it. Same inputs and seed, same result.
pub fn place_group(
    job: &Job,
    group: &TaskGroup,
    count: usize,
    view: &mut ClusterView,
    seed: u64,
    config: &PlaceConfig,
) -> GroupPlacement {
    let mut placer = GroupPlacer::new(job, group, view, seed, config.clone());
    let mut placed = Vec::with_capacity(count);
    for i in 0..count {
        match placer.place_one(view) {
            Ok(p) => placed.push(p),
            Err(mut metric) => {
                metric.coalesced_failures = i32::try_from(count - i - 1).unwrap_or(i32::MAX);
                return GroupPlacement { placed, failure: Some(*metric) };
            }
        }
    }
    GroupPlacement { placed, failure: None }
}
