//! The pipeline graph as SVG, laid out as Concourse does: left to right in
//! columns, a job one column right of every job its `passed` constraints
//! name, each input resource just left of the first job that takes it
//! without `passed`, output-only resources right of their job. Nodes sit on
//! a grid, so no two boxes can overlap; an edge that spans columns passes
//! through a slot of its own in each column between, never through a box.

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};

use super::locator::PipelineLocator;
use super::model::{Job, Resource};

const NODE_WIDTH: i64 = 190;
const NODE_HEIGHT: i64 = 36;
const COLUMN_GAP: i64 = 70;
const ROW_GAP: i64 = 14;
const MARGIN: i64 = 10;
/// Longest name shown in a box; the full name is its tooltip and label.
const MAX_LABEL: usize = 22;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum NodeId {
    Resource(String),
    Job(String),
    /// Where edge number `.0` crosses column `.1`.
    Bend(usize, usize),
}

struct Node {
    id: NodeId,
    column: usize,
    row: usize,
}

/// An edge as the nodes it passes, and whether a new version along it
/// triggers the job (Concourse dashes the others).
struct Edge {
    path: Vec<NodeId>,
    trigger: bool,
}

/// Where every node goes, and the edges between them.
struct Layout {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// How many `passed` hops each job is from a job without them; a cycle
/// (which validation refuses) cannot loop forever: depth stops growing at
/// the number of jobs.
fn job_depths(jobs: &[&Job]) -> BTreeMap<String, usize> {
    let names: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let mut depth: BTreeMap<String, usize> = jobs.iter().map(|j| (j.name.clone(), 0)).collect();
    for _ in 0..jobs.len() {
        let mut changed = false;
        for job in jobs {
            let wanted = job
                .inputs
                .iter()
                .flat_map(|input| &input.passed)
                .filter(|name| names.contains(name.as_str()))
                .map(|name| depth[name.as_str()] + 1)
                .max()
                .unwrap_or(0)
                .min(jobs.len());
            if wanted > depth[&job.name] {
                depth.insert(job.name.clone(), wanted);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

fn layout(jobs: &[&Job], resources: &[&Resource]) -> Layout {
    let depth = job_depths(jobs);
    let job_names: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let mut column: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut edges: BTreeMap<(NodeId, NodeId), bool> = BTreeMap::new();
    for job in jobs {
        column.insert(NodeId::Job(job.name.clone()), 2 * depth[&job.name] + 1);
    }
    for resource in resources {
        let id = NodeId::Resource(resource.name.clone());
        let direct_consumers =
            jobs.iter().filter(|j| j.inputs.iter().any(|i| i.resource == resource.name && i.passed.is_empty()));
        let producers = jobs.iter().filter(|j| j.outputs.iter().any(|o| o.resource == resource.name));
        let placed = direct_consumers
            .map(|j| 2 * depth[&j.name])
            .min()
            .or_else(|| producers.map(|j| 2 * depth[&j.name] + 2).max())
            .unwrap_or(0);
        column.insert(id, placed);
    }
    for job in jobs {
        let to = NodeId::Job(job.name.clone());
        for input in &job.inputs {
            let upstream: Vec<&String> = input.passed.iter().filter(|p| job_names.contains(p.as_str())).collect();
            let sources: Vec<NodeId> = if upstream.is_empty() {
                vec![NodeId::Resource(input.resource.clone())]
            } else {
                upstream.into_iter().map(|p| NodeId::Job(p.clone())).collect()
            };
            for from in sources {
                *edges.entry((from, to.clone())).or_default() |= input.trigger;
            }
        }
        for output in &job.outputs {
            let resource = NodeId::Resource(output.resource.clone());
            // Drawn only rightwards: a put to a resource that feeds jobs is
            // shown by that resource's own edges.
            if column.get(&resource).is_some_and(|c| *c > column[&to]) {
                edges.insert((to.clone(), resource), true);
            }
        }
    }
    edges.retain(|(from, to), _| column.contains_key(from) && column.contains_key(to) && column[from] < column[to]);

    // Columns without nodes (no resources between two jobs) close up.
    let used: BTreeSet<usize> = column.values().copied().collect();
    let compact: BTreeMap<usize, usize> = used.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut columns: Vec<Vec<NodeId>> = vec![Vec::new(); used.len()];
    for (id, c) in &column {
        columns[compact[c]].push(id.clone());
    }
    let edges: Vec<Edge> = edges
        .into_iter()
        .enumerate()
        .map(|(index, ((from, to), trigger))| {
            let (start, end) = (compact[&column[&from]], compact[&column[&to]]);
            let mut path = vec![from];
            for (between, nodes) in columns.iter_mut().enumerate().take(end).skip(start + 1) {
                nodes.push(NodeId::Bend(index, between));
                path.push(NodeId::Bend(index, between));
            }
            path.push(to);
            Edge { path, trigger }
        })
        .collect();
    let sources: BTreeMap<&NodeId, Vec<&NodeId>> =
        edges.iter().flat_map(|e| e.path.windows(2)).fold(BTreeMap::new(), |mut sources, pair| {
            sources.entry(&pair[1]).or_default().push(&pair[0]);
            sources
        });
    // Each column ordered by where its nodes' sources sit, so edges cross less.
    let mut row_of: BTreeMap<NodeId, usize> = BTreeMap::new();
    for nodes in &mut columns {
        let weight = |id: &NodeId| -> f64 {
            let rows: Vec<usize> =
                sources.get(id).into_iter().flatten().filter_map(|from| row_of.get(*from).copied()).collect();
            if rows.is_empty() { f64::MAX } else { rows.iter().sum::<usize>() as f64 / rows.len() as f64 }
        };
        nodes.sort_by(|a, b| weight(a).total_cmp(&weight(b)).then_with(|| a.cmp(b)));
        for (row, id) in nodes.iter().enumerate() {
            row_of.insert(id.clone(), row);
        }
    }
    let nodes = columns
        .into_iter()
        .enumerate()
        .flat_map(|(column, ids)| ids.into_iter().enumerate().map(move |(row, id)| Node { id, column, row }))
        .collect();
    Layout { nodes, edges }
}

fn position(node: &Node) -> (i64, i64) {
    (MARGIN + node.column as i64 * (NODE_WIDTH + COLUMN_GAP), MARGIN + node.row as i64 * (NODE_HEIGHT + ROW_GAP))
}

fn label(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL {
        return name.to_string();
    }
    let kept: String = name.chars().take(MAX_LABEL - 1).collect();
    format!("{kept}…")
}

/// An edge as SVG path data: a curve between columns, straight across
/// the slots it passes.
fn edge_path(path: &[NodeId], place: &BTreeMap<&NodeId, (i64, i64)>) -> String {
    let mut data = String::new();
    for (i, pair) in path.windows(2).enumerate() {
        let ((x1, y1), (x2, y2)) = (place[&pair[0]], place[&pair[1]]);
        let (sx, sy, ex, ey) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, x2, y2 + NODE_HEIGHT / 2);
        if i == 0 {
            data.push_str(&format!("M{sx},{sy}"));
        }
        let bend = (ex - sx) / 2;
        data.push_str(&format!(" C{},{sy} {},{ey} {ex},{ey}", sx + bend, ex - bend));
        if matches!(pair[1], NodeId::Bend(..)) {
            data.push_str(&format!(" L{},{ey}", ex + NODE_WIDTH));
        }
    }
    data
}

/// The graph of `jobs` and `resources` (one group's, or all).
pub fn svg(pipeline: &PipelineLocator, jobs: &[&Job], resources: &[&Resource]) -> Markup {
    let layout = layout(jobs, resources);
    let place: BTreeMap<&NodeId, (i64, i64)> = layout.nodes.iter().map(|n| (&n.id, position(n))).collect();
    let width = place.values().map(|(x, _)| x + NODE_WIDTH + MARGIN).max().unwrap_or(0);
    let height = place.values().map(|(_, y)| y + NODE_HEIGHT + MARGIN).max().unwrap_or(0);
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) }
            aria-label={ "Graph of pipeline " (pipeline.title()) } {
            g.edges aria-hidden="true" {
                @for edge in &layout.edges {
                    path.no-trigger[!edge.trigger] d=(edge_path(&edge.path, &place)) {}
                }
            }
            @for node in &layout.nodes {
                @let (x, y) = place[&node.id];
                @match &node.id {
                    NodeId::Bend(..) => {}
                    NodeId::Job(name) => {
                        @let job = jobs.iter().find(|j| &j.name == name);
                        @let status = job.map_or("pending", |j| j.status());
                        @let running = job.is_some_and(|j| j.running());
                        a class={ "node job status-" (status) @if running { " running" } }
                            href=(pipeline.job_page(name, "")) aria-label={ "job " (name) ", " (status) @if running { ", running" } } {
                            title { (name) }
                            rect x=(x) y=(y) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="2" {}
                            text x=(x + 10) y=(y + NODE_HEIGHT / 2 + 5) { (label(name)) }
                        }
                    }
                    NodeId::Resource(name) => {
                        @let resource = resources.iter().find(|r| &r.name == name);
                        @let pinned = resource.is_some_and(|r| r.pinned_version.is_some());
                        @let unchecked = resource.is_some_and(|r| r.last_checked == 0);
                        @let check = resource.and_then(|r| r.build.as_ref()).map_or("", |b| b.status.as_str());
                        @let failing = matches!(check, "failed" | "errored");
                        a.node.resource.pinned[pinned].unchecked[unchecked].failing[failing]
                            href=(pipeline.resource_page(name))
                            aria-label={ "resource " (name) @if pinned { ", pinned" } @if unchecked { ", not checked yet" } @if failing { ", check " (check) } } {
                            title { (name) }
                            rect x=(x) y=(y) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="2" {}
                            text x=(x + 10) y=(y + NODE_HEIGHT / 2 + 5) { @if pinned { "📌 " } (label(name)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::{JobInput, JobOutput};

    fn job(name: &str, inputs: &[(&str, &[&str])], outputs: &[&str]) -> Job {
        Job {
            id: 0,
            name: name.into(),
            team_name: "main".into(),
            pipeline_id: 1,
            paused: false,
            disable_manual_trigger: false,
            next_build: None,
            finished_build: None,
            inputs: inputs
                .iter()
                .map(|(resource, passed)| JobInput {
                    resource: resource.to_string(),
                    trigger: true,
                    passed: passed.iter().map(|p| p.to_string()).collect(),
                })
                .collect(),
            outputs: outputs.iter().map(|r| JobOutput { resource: r.to_string() }).collect(),
        }
    }

    fn resource(name: &str) -> Resource {
        Resource {
            name: name.into(),
            type_: "mock".into(),
            last_checked: 1,
            pinned_version: None,
            pinned_in_config: false,
            pin_comment: String::new(),
            build: None,
        }
    }

    #[test]
    fn jobs_go_right_of_the_jobs_they_pass_and_no_two_nodes_share_a_place() {
        let jobs = [
            job("unit", &[("repo", &[])], &[]),
            job("build", &[("repo", &["unit"])], &["image"]),
            job("deploy", &[("repo", &["build", "unit"]), ("env", &[])], &[]),
        ];
        let resources = [resource("repo"), resource("image"), resource("env")];
        let layout = layout(&jobs.iter().collect::<Vec<_>>(), &resources.iter().collect::<Vec<_>>());
        let column = |id: NodeId| layout.nodes.iter().find(|n| n.id == id).unwrap().column;
        let job = |name: &str| column(NodeId::Job(name.into()));
        let res = |name: &str| column(NodeId::Resource(name.into()));
        assert!(res("repo") < job("unit") && job("unit") < job("build") && job("build") < job("deploy"));
        assert!(res("env") < job("deploy") && res("env") > job("build"), "env sits just left of deploy");
        assert!(res("image") > job("build"));
        let places: BTreeSet<(usize, usize)> = layout.nodes.iter().map(|n| (n.column, n.row)).collect();
        assert_eq!(places.len(), layout.nodes.len());
        let ends: BTreeSet<(&NodeId, &NodeId)> =
            layout.edges.iter().map(|e| (&e.path[0], e.path.last().unwrap())).collect();
        assert!(ends.contains(&(&NodeId::Job("unit".into()), &NodeId::Job("deploy".into()))));
        assert!(ends.contains(&(&NodeId::Job("build".into()), &NodeId::Resource("image".into()))));
        // unit → deploy passes the columns of build and of env and image, in slots of its own.
        let long = layout.edges.iter().find(|e| e.path[0] == NodeId::Job("unit".into()) && e.path.len() > 2).unwrap();
        assert_eq!(long.path.len(), 4);
    }

    #[test]
    fn a_passed_cycle_does_not_hang_the_layout() {
        let jobs = [job("a", &[("r", &["b"])], &[]), job("b", &[("r", &["a"])], &[])];
        let depths = job_depths(&jobs.iter().collect::<Vec<_>>());
        assert!(depths.values().all(|d| *d <= 2));
    }
}
