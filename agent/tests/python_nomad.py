"""python-nomad (PyPI `python-nomad`) against a stead dev agent.

Usage: python python_nomad.py <agent address, e.g. http://127.0.0.1:4646> <job JSON file>

Run by agent/tests/python_nomad.rs in its own virtualenv. Prints "ok" at the end; any
failed check raises, which exits non-zero with the traceback.
"""

import json
import sys

import nomad
from nomad.api import exceptions

address, job_file = sys.argv[1], sys.argv[2]
with open(job_file) as f:
    job = json.load(f)
job_id = job["Job"]["ID"]

n = nomad.Nomad(address=address, timeout=10)

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
assert n.job.get_allocations(job_id) == []
assert n.job.get_summary(job_id)["JobID"] == job_id

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
