"""python-nomad (PyPI `python-nomad`) against a stead dev agent.

Usage: python python_nomad.py <agent address, e.g. http://127.0.0.1:4646> <job JSON file>

Run by agent/tests/python_nomad.rs in its own virtualenv. Prints "ok" at the end; any
failed check raises, which exits non-zero with the traceback.
"""

import json
import sys
import time

import nomad
import requests
from nomad.api import exceptions

address, job_file = sys.argv[1], sys.argv[2]
with open(job_file) as f:
    job = json.load(f)
job_id = job["Job"]["ID"]

n = nomad.Nomad(address=address, timeout=10)


def wait_for(what, check, timeout=60):
    """Polls `check` until it returns something truthy (python-nomad has no blocking
    queries for these calls)."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


# Register, then find it the ways python-nomad offers.
registered = n.jobs.register_job(job)
assert registered["EvalID"], registered
assert registered["JobModifyIndex"] > 0, registered
assert job_id in n.jobs
assert [j["ID"] for j in n.jobs.get_jobs()] == [job_id]
assert n.jobs.get_jobs(prefix="nothing-starts-like-this") == []
assert n.jobs[job_id]["Name"] == job_id

got = n.job.get_job(job_id)
assert got["ID"] == job_id and got["Version"] == 0, got

# Plan a change: the response carries what `job plan` shows.
changed = json.loads(json.dumps(job))
changed["Job"]["TaskGroups"][0]["Count"] = 3
plan = n.job.plan_job(job_id, changed, diff=True)
for key in ("Index", "Annotations", "FailedTGAllocs", "JobModifyIndex", "Diff", "Warnings"):
    assert key in plan, (key, plan)
assert plan["JobModifyIndex"] == registered["JobModifyIndex"], plan
assert plan["Diff"]["Type"] == "Edited", plan["Diff"]

# Register the change through the per-job path; versions list newest first.
n.job.register_job(job_id, changed)
versions = n.job.get_versions(job_id)
assert [v["Version"] for v in versions["Versions"]] == [1, 0], versions["Versions"]

evaluations = n.job.get_evaluations(job_id)
assert len(evaluations) >= 2, evaluations
assert any(e["ID"] == registered["EvalID"] for e in n.evaluations.get_evaluations())
assert n.evaluation.get_evaluation(registered["EvalID"])["JobID"] == job_id
assert n.job.get_summary(job_id)["JobID"] == job_id

# The dev agent's client runs the three allocations.
def running_allocs():
    allocs = [a for a in n.job.get_allocations(job_id) if a["ClientStatus"] == "running"]
    return allocs if len(allocs) == 3 else None


running = wait_for("three running allocations", running_allocs)
alloc_id = running[0]["ID"]
assert n.allocation.get_allocation(alloc_id)["ID"] == alloc_id
assert any(a["ID"] == alloc_id for a in n.allocations.get_allocations())
assert n.evaluation.get_allocations(registered["EvalID"]) is not None
task = list(running[0]["TaskStates"])[0]
logs = n.client.stream_logs.stream(alloc_id, task, "stdout", follow=False)
assert isinstance(logs, str), logs
stopped_alloc = n.allocation.stop_allocation(alloc_id)
assert stopped_alloc["EvalID"], stopped_alloc
wait_for("the stopped allocation's replacement", lambda: len(
    [a for a in n.job.get_allocations(job_id) if a["DesiredStatus"] == "run" and a["ID"] != alloc_id]) == 3)

# Deployments exist only as reads until the deployment watcher lands: none, and a 400
# for changing one.
assert n.deployments.get_deployments() == []
assert n.job.get_deployments(job_id) == []

# The node: read it, flip its eligibility, drain it with a spec and cancel the drain.
nodes = n.nodes.get_nodes()
assert len(nodes) == 1 and nodes[0]["Status"] == "ready", nodes
node_id = nodes[0]["ID"]
assert n.node.get_node(node_id)["ID"] == node_id
assert "SecretID" not in n.node.get_node(node_id) or n.node.get_node(node_id)["SecretID"] == ""
assert n.node.get_allocations(node_id)
n.node.eligible_node(node_id, ineligible=True)
assert n.node.get_node(node_id)["SchedulingEligibility"] == "ineligible"
n.node.eligible_node(node_id, eligible=True)
assert n.node.get_node(node_id)["SchedulingEligibility"] == "eligible"
drained = n.node.drain_node_with_spec(node_id, {"Deadline": 3600 * 10**9, "IgnoreSystemJobs": False})
assert "EvalIDs" in drained, drained
assert n.node.get_node(node_id)["DrainStrategy"] is not None
n.node.drain_node_with_spec(node_id, None, mark_eligible=True)
assert n.node.get_node(node_id)["DrainStrategy"] is None
assert n.node.get_node(node_id)["SchedulingEligibility"] == "eligible"

# Revert to version 0 (a new version 2 with the old spec), mark it stable.
reverted = n.job.revert_job(job_id, 0)
assert reverted["EvalID"], reverted
assert n.job.get_job(job_id)["Version"] == 2
assert "JobModifyIndex" in n.job.stable_job(job_id, 2, True)
assert n.job.get_job(job_id)["Stable"] is True

# The agent, metrics and the event stream (every line one JSON value).
assert n.agent.get_agent()["member"]["Name"]
assert "Counters" in n.metrics.get_metrics()
with requests.get(address + "/v1/event/stream?index=0&topic=Job", stream=True, timeout=10) as r:
    first = json.loads(next(r.iter_lines()))
    assert first["Index"] > 0 and all(e["Topic"] == "Job" for e in first["Events"]), first

parsed = n.jobs.parse('job "parsed" {\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n    }\n  }\n}\n', canonicalize=True)
assert parsed["ID"] == "parsed" and parsed["Priority"] == 50, parsed

# Bad input is a 400 python-nomad maps to its exception, with the reason in the body.
try:
    n.jobs.register_job({"Job": {"ID": "broken"}})
    raise AssertionError("an invalid job was accepted")
except exceptions.BadRequestNomadException as e:
    assert "TaskGroups" in e.nomad_resp.text, e.nomad_resp.text

# Deregister with purge (sent as purge=True): gone, and a 404 for python-nomad.
stopped = n.job.deregister_job(job_id, purge=True)
assert stopped["EvalID"], stopped
assert job_id not in n.jobs
try:
    n.job.get_job(job_id)
    raise AssertionError("a purged job is still readable")
except exceptions.URLNotFoundNomadException:
    pass

assert n.status.leader.get_leader(), "a leader address"
print("ok")
