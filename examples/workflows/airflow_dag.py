"""ddb-export fan-out on Airflow 3 (its `airflow.sdk` API; Airflow 2.4+ also loads it): plan -> one
mapped task per shard -> finalize. Run by Airflow 3.3.2 in the tests (`tests/e2e/workflows.rs`).

The workers need the `ddb-export` binary (on PATH, or named by $DDB_EXPORT_BIN) and AWS
credentials and region from the usual places (AWS_REGION, an instance or pod role, ...).
Trigger it with the table and destination as params, e.g.

    airflow dags trigger ddb_export_fanout \
        --conf '{"table": "orders", "destination": "s3://my-bucket/exports", "segments": 64}'

Clearing a run and running it again is safe: its client token (from the DAG id and run id) gets
the same plan back, finished shards are not read again, and finalize is idempotent. A new run
is a new export.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import shlex
import subprocess
import threading
from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.4 to 2.11
    from airflow.decorators import dag, task
    from airflow.models.param import Param

log = logging.getLogger("airflow.task")

# Run-shard tasks at once, across all runs of this DAG (max_active_runs=1 below).
MAX_WORKERS = 8
# The read capacity (RCU per second) the whole export may use. Each run-shard process applies
# its own --max-rcu, so each gets an equal share: TABLE_RCU_BUDGET / MAX_WORKERS.
TABLE_RCU_BUDGET = 2000
# Flags every step must repeat identically when the export uses an encoder plugin or another
# component, e.g. ["--encoder", "/opt/ddb-export/csv.wasm", "--encoder-arg", "columns=pk,sk"].
COMPONENT_FLAGS: list[str] = []
# How long a failed task waits before its retry (run-shard's doubles each time). Overridable
# for tests and for impatient operators.
RETRY_DELAY = timedelta(seconds=float(os.environ.get("DDB_EXPORT_RETRY_DELAY_SECS", "60")))


def _ddb_export(*args: str) -> dict:
    """Runs `ddb-export ARGS...`, streams its log (stderr) into the task log as it comes, and
    returns the JSON it printed on stdout. Raises CalledProcessError, with the end of the log in
    its message, when it exits non-zero.

    Not `subprocess.run(..., check=True)`: a shard can run for hours, and its progress belongs
    in the task log while it runs, not only at the end."""
    cmd = [os.environ.get("DDB_EXPORT_BIN", "ddb-export"), *args]
    log.info("running %s", shlex.join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=20)

    def pump(stream) -> None:
        for line in stream:
            line = line.rstrip("\n")
            log.info("%s", line)
            tail.append(line)

    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        # stderr on its own thread while this one reads stdout: neither pipe can fill and block.
        pumping = threading.Thread(target=pump, args=(proc.stderr,), daemon=True)
        pumping.start()
        try:
            stdout = proc.stdout.read()
            code = proc.wait()
        except BaseException:  # the task was killed or timed out: do not leave the process behind
            proc.kill()
            raise
        pumping.join()
    if code != 0:
        last = "\n".join(tail)
        error = subprocess.CalledProcessError(code, cmd, output=stdout)
        raise RuntimeError(f"ddb-export {args[0]} failed with exit code {code}; its log ended:\n{last}") from error
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"ddb-export {args[0]} printed no JSON on stdout: {stdout[:500]!r}") from e


def _client_token(dag_id: str, run_id: str) -> str:
    """One token per DAG run. A client token is scoped to the bucket and 1 to 64 characters, so
    the run id alone (the same `scheduled__<date>` in every scheduled DAG) will not do."""
    return "airflow-" + hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:40]


@dag(
    dag_id="ddb_export_fanout",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # One export at a time: concurrent runs would each read at TABLE_RCU_BUDGET.
    max_active_runs=1,
    params={
        "table": Param("orders", type="string", description="Table name or ARN"),
        "destination": Param("s3://my-bucket/exports", type="string", pattern="^s3://"),
        "segments": Param(64, type="integer", minimum=1, description="Scan segments = shards"),
    },
    tags=["ddb-export"],
)
def ddb_export_fanout():
    @task(retries=3, retry_delay=RETRY_DELAY)
    def plan(**context) -> dict:
        """Step 1: fix the export's identity and shard plan at the destination (no data is
        read). A retry, with the same client token, prints the same plan again."""
        params = context["params"]
        result = _ddb_export(
            "plan",
            "--table", params["table"],
            "--to", params["destination"],
            "--segments", str(params["segments"]),
            "--client-token", _client_token(context["dag"].dag_id, context["run_id"]),
            *COMPONENT_FLAGS,
        )
        log.info("export %s: %d shards (%s)", result["exportArn"], len(result["shards"]), result["exportStatus"])
        return {"exportLocation": result["exportLocation"], "shards": result["shards"]}

    @task(
        retries=5,
        retry_delay=RETRY_DELAY,
        retry_exponential_backoff=True,
        max_active_tis_per_dag=MAX_WORKERS,
        execution_timeout=timedelta(hours=12),
    )
    def run_shard(planned: dict, shard: int) -> dict:
        """Step 2, once per shard. Retry-safe: resumes from the shard's checkpoint, and a shard
        that already finished is not read again (status ALREADY_COMPLETED)."""
        return _ddb_export(
            "run-shard",
            "--plan", planned["exportLocation"],
            "--shard", str(shard),
            "--max-rcu", f"{TABLE_RCU_BUDGET / MAX_WORKERS:g}",
            *COMPONENT_FLAGS,
        )

    @task(retries=2, retry_delay=RETRY_DELAY)
    def finalize(planned: dict) -> dict:
        """Step 3 (runs only when every shard task succeeded): checks every shard finished and
        the data files are there, writes the manifests, and returns the ExportDescription.
        Refuses, naming the unfinished shards, otherwise. Idempotent."""
        description = _ddb_export("finalize", "--plan", planned["exportLocation"], *COMPONENT_FLAGS)
        log.info("export status: %s", description["ExportDescription"]["ExportStatus"])
        return description

    @task
    def shard_ids(planned: dict) -> list[int]:
        """The shards to map over: Airflow maps only over a task's whole return value."""
        return planned["shards"]

    planned = plan()
    # One mapped task instance per shard id (Airflow's max_map_length, 1024 by default, caps it).
    shards = run_shard.partial(planned=planned).expand(shard=shard_ids(planned))
    shards >> finalize(planned)


ddb_export_fanout()
