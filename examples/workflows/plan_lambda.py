"""AWS Lambda handler that runs `ddb-export plan` for step-functions.asl.json.

Step Functions cannot read a container's stdout, but it gets a Lambda function's return value:
this handler runs `ddb-export plan` and returns the plan JSON it printed. Package it as a Lambda
container image holding the ddb-export binary, e.g.:

    FROM public.ecr.aws/lambda/python:3.12
    COPY ddb-export /usr/local/bin/ddb-export
    COPY plan_lambda.py ${LAMBDA_TASK_ROOT}/
    CMD ["plan_lambda.handler"]

Give the function a timeout of a few minutes (planning reads no data) and a role allowed to
DescribeTable the table and read/write/list the destination bucket.

Event: {"table": "...", "destination": "s3://bucket/prefix", "clientToken": "...",
        "segments": 64 (optional), "extraArgs": ["--encoder", "/opt/csv.wasm"] (optional)}
Returns: the plan, {"planVersion", "exportArn", "exportId", "exportLocation", "tableArn",
        "shards", "exportStatus"}.
"""

import json
import os
import subprocess
import sys


class PlanFailed(Exception):
    """`ddb-export plan` exited non-zero; the message holds the end of its log."""


def handler(event, context):
    cmd = [
        os.environ.get("DDB_EXPORT_BIN", "ddb-export"),
        "plan",
        "--table", event["table"],
        "--to", event["destination"],
        "--client-token", event["clientToken"],
    ]
    if event.get("segments") is not None:
        cmd += ["--segments", str(event["segments"])]
    cmd += [str(arg) for arg in event.get("extraArgs") or []]

    # Lambda's file system is read-only except /tmp: keep the compiled-component cache there.
    env = dict(os.environ, DDB_EXPORT_CACHE_DIR="/tmp/ddb-export-cache")
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    sys.stderr.write(proc.stderr)  # the tool's log, into CloudWatch Logs
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        raise PlanFailed(f"ddb-export plan exited with {proc.returncode}:\n{tail}")
    return json.loads(proc.stdout)
