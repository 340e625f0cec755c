#!/usr/bin/env python3
"""Keeps writing to a DynamoDB table and logs every write: for the consistent-export test only.

    consistent_writer.py ENDPOINT TABLE KEYS LOG STOP_FILE [SEED]

Until STOP_FILE exists, puts (inserting or replacing) and deletes items `pk = k<0..KEYS-1>` at
random, as fast as the server answers. Each write is logged to LOG as one JSON line, after it
returned: {"t0": <epoch s before the request>, "t1": <after the answer>, "op": "put"|"delete",
"pk": ..., "item": {...typed...} (for put)}. Prints "ready" once it has written once.
Needs boto3 (the moto venv has it).
"""

import json
import os
import random
import sys
import time

import boto3


def main():
    endpoint, table, keys, log_path, stop_file = sys.argv[1:6]
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    rng = random.Random(seed)
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="ddbexporttest",
        aws_secret_access_key="ddbexporttestsecret",
    )
    version = 0
    with open(log_path, "w") as log:
        announced = False
        while not os.path.exists(stop_file):
            pk = f"k{rng.randrange(int(keys))}"
            version += 1
            if rng.random() < 0.25:
                t0 = time.time()
                client.delete_item(TableName=table, Key={"pk": {"S": pk}})
                t1 = time.time()
                entry = {"t0": t0, "t1": t1, "op": "delete", "pk": pk}
            else:
                item = {"pk": {"S": pk}, "version": {"N": str(version)}, "note": {"S": f"write {version}"}}
                t0 = time.time()
                client.put_item(TableName=table, Item=item)
                t1 = time.time()
                entry = {"t0": t0, "t1": t1, "op": "put", "pk": pk, "item": item}
            log.write(json.dumps(entry) + "\n")
            log.flush()
            if not announced:
                print("ready", flush=True)
                announced = True


if __name__ == "__main__":
    main()
