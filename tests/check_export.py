#!/usr/bin/env python3
"""An independent check of an export (full or incremental) against ../shared/FORMAT.md (AWS's "Export to S3").

Written apart from the Rust code on purpose: it shares no code with the exporter, so the two
agreeing means something. Standard library only for DYNAMODB_JSON exports; an ION export is read
with Amazon's own Ion reader, the `amazon.ion` package from PyPI (imported only then;
`scripts/install-standins` puts it in the venv `.standins/moto`, so run this with
`.standins/moto/bin/python` for ION).

    check_export.py BUCKET_DIR SUMMARY_KEY [--bucket NAME] [--part-size BYTES] [--dump-items FILE]

BUCKET_DIR is a directory holding the bucket's objects as files (an s3s-fs bucket, or a
`ddb-export --to DIR` directory); SUMMARY_KEY is the key of manifest-summary.json in it.
Exits 0 when every rule holds, else 1 with the first broken rule on stderr. --dump-items writes
every exported item as one JSON line of typed AttributeValue JSON (sets sorted), for comparison
with the table, whatever the export's format; for an incremental export, every change record
instead, as `{"Metadata":{"WriteTimestampMicros":{"N":…}},"Keys":…,"NewImage":…,"OldImage":…}`
(the images it has), typed the same way.

Numbers in the dump: a DYNAMODB_JSON export's `N` is dumped exactly as written. An ION export's
numbers are Ion decimals, which keep a number's digits and exponent but not its spelling (`1E+2`,
`100` and `1.0E2` differ in text only), so they are dumped in DynamoDB's own spelling: plain
digits, no exponent, no leading or trailing zeros, no `-` on zero (`1.50` -> `1.5`, `6d2` ->
`600`). For a table read from DynamoDB, which spells numbers so (as dynalite does), the two dumps
are equal; otherwise an ION dump compares with the table by value, not by text.
"""

import argparse
import base64
import datetime
import binascii
import gzip
import hashlib
import json
import os
import re
import sys

SUMMARY_KEYS = [
    "version", "exportArn", "startTime", "endTime", "tableArn", "tableId", "exportTime",
    "s3Bucket", "s3Prefix", "s3SseAlgorithm", "s3SseKmsKeyId", "manifestFilesS3Key",
    "billedSizeBytes", "itemCount", "outputFormat",
]
INCREMENTAL_SUMMARY_KEYS = [
    "version", "exportArn", "startTime", "endTime", "tableArn", "tableId", "exportFromTime", "exportToTime",
    "s3Bucket", "s3Prefix", "s3SseAlgorithm", "s3SseKmsKeyId", "manifestFilesS3Key",
    "billedSizeBytes", "itemCount", "outputFormat", "outputView", "exportType",
]
CHANGE_FIELDS = ["Metadata", "Keys", "NewImage", "OldImage"]
FILE_KEYS = ["itemCount", "md5Checksum", "etag", "dataFileS3Key"]
EXPORT_ID = re.compile(r"^\d{14}-[0-9a-f]{8}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TABLE_ARN = re.compile(r"^arn:[a-z-]+:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}$")
DATA_NAME = {"DYNAMODB_JSON": re.compile(r"^[a-z2-7]{26}\.json\.gz$"), "ION": re.compile(r"^[a-z2-7]{26}\.ion\.gz$")}
NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
MAX_DIGITS = 38


def significant_digits(number):
    mantissa = re.split(r"[eE]", number.lstrip("-"))[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


class Broken(Exception):
    pass


def need(condition, message):
    if not condition:
        raise Broken(message)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def strict_b64(text, where):
    need(isinstance(text, str), f"{where}: binary is not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise Broken(f"{where}: invalid base64 ({e})")
    need(base64.b64encode(raw).decode() == text, f"{where}: base64 is not canonical with padding")
    return raw


def check_value(value, where, depth=1):
    need(isinstance(value, dict) and len(value) == 1, f"{where}: an AttributeValue has exactly one type key")
    need(depth <= 33, f"{where}: nested deeper than DynamoDB allows")
    (kind, body), = value.items()
    if kind == "S":
        need(isinstance(body, str), f"{where}: S is not a string")
    elif kind == "N":
        need(isinstance(body, str) and NUMBER.match(body), f"{where}: N {body!r} is not a number string")
        need(significant_digits(body) <= MAX_DIGITS, f"{where}: N {body!r} has more than {MAX_DIGITS} significant digits")
    elif kind == "B":
        strict_b64(body, where)
    elif kind == "BOOL":
        need(isinstance(body, bool), f"{where}: BOOL is not a boolean")
    elif kind == "NULL":
        need(body is True, f"{where}: NULL is not true")
    elif kind in ("SS", "NS", "BS"):
        need(isinstance(body, list) and body, f"{where}: {kind} is not a non-empty list")
        need(len(set(body)) == len(body), f"{where}: {kind} holds duplicates")
        for i, element in enumerate(body):
            check_value({kind[0]: element}, f"{where}.{kind}[{i}]", depth)
        return {kind: sorted(body)}
    elif kind == "L":
        need(isinstance(body, list), f"{where}: L is not a list")
        return {"L": [check_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(body)]}
    elif kind == "M":
        need(isinstance(body, dict), f"{where}: M is not an object")
        return {"M": {k: check_value(v, f"{where}.{k}", depth + 1) for k, v in body.items()}}
    else:
        raise Broken(f"{where}: unknown AttributeValue type {kind!r}")
    return value


ION_SETS = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}
ION_LINE_START = "$ion_1_0 "


def ion_reader():
    """amazon.ion's simpleion and IonType, or a clear refusal when it is not installed."""
    try:
        from amazon.ion import simpleion
        from amazon.ion.core import IonType
    except ImportError:
        raise Broken(
            "reading an ION export needs Amazon's Ion reader, the amazon.ion package (PyPI): "
            "run scripts/install-standins and this checker with .standins/moto/bin/python, "
            f"or pip install amazon.ion (this is {sys.executable})")
    return simpleion, IonType


def decimal_to_n(number, where):
    """An Ion decimal as DynamoDB spells the number: plain digits, no exponent, no leading or
    trailing zeros, no sign on zero."""
    sign, digits, exponent = number.as_tuple()
    need(isinstance(exponent, int), f"{where}: decimal {number!r} is not a finite number")
    text = "".join(map(str, digits)).lstrip("0")
    if not text:
        return "0"
    stripped = text.rstrip("0")
    exponent += len(text) - len(stripped)
    text = stripped
    if exponent >= 0:
        text += "0" * exponent
    elif -exponent < len(text):
        text = f"{text[:exponent]}.{text[exponent:]}"
    else:
        text = "0." + "0" * (-exponent - len(text)) + text
    return ("-" if sign else "") + text


def ion_to_typed(value, where, IonType):
    """One Ion value of an item as typed AttributeValue JSON (FORMAT.md's ION mapping, read
    backwards), refusing every Ion type and annotation the mapping does not produce."""
    need(value is not None and hasattr(value, "ion_type"), f"{where}: {value!r} is not an Ion value")
    annotations = [getattr(a, "text", a) for a in value.ion_annotations]
    kind = IonType(value.ion_type)
    if type(value).__name__ == "IonPyNull":
        need(kind == IonType.NULL and not annotations, f"{where}: null.{kind.name.lower()} is not the untyped null")
        return {"NULL": True}
    if kind == IonType.LIST and annotations:
        need(len(annotations) == 1 and annotations[0] in ION_SETS,
             f"{where}: a list annotated {annotations} is not a $dynamodb_SS/NS/BS set")
        set_kind = ION_SETS[annotations[0]]
        element_type = {"SS": IonType.STRING, "NS": IonType.DECIMAL, "BS": IonType.BLOB}[set_kind]
        elements = []
        for i, element in enumerate(value):
            typed = ion_to_typed(element, f"{where}.{set_kind}[{i}]", IonType)
            need(IonType(element.ion_type) == element_type and set_kind[0] in typed,
                 f"{where}.{set_kind}[{i}]: a {set_kind} element is Ion {IonType(element.ion_type).name}")
            elements.append(typed[set_kind[0]])
        return {set_kind: elements}
    need(not annotations, f"{where}: Ion {kind.name} carries annotations {annotations}")
    if kind == IonType.STRING:
        return {"S": str(value)}
    if kind == IonType.DECIMAL:
        return {"N": decimal_to_n(value, where)}
    if kind == IonType.BLOB:
        return {"B": base64.b64encode(bytes(value)).decode()}
    if kind == IonType.BOOL:
        return {"BOOL": bool(value)}
    if kind == IonType.LIST:
        return {"L": [ion_to_typed(v, f"{where}[{i}]", IonType) for i, v in enumerate(value)]}
    if kind == IonType.STRUCT:
        return {"M": ion_struct(value, where, IonType)}
    raise Broken(f"{where}: Ion {kind.name} is not in the ION mapping (a number must be a decimal, never an "
                 "int or a float; text a string, not a symbol; binary a blob, not a clob)")


def ion_struct(struct, where, IonType):
    fields = struct.items()  # every field, a repeated name included
    names = [name for name, _ in fields]
    need(len(set(names)) == len(names), f"{where}: a struct holds a name twice")
    return {name: ion_to_typed(v, f"{where}.{name}", IonType) for name, v in fields}


def ion_record(text, where, ion):
    """The one struct of an ION line, `$ion_1_0 ` first."""
    simpleion, IonType = ion
    need(text.startswith(ION_LINE_START), f"{where}: does not start with {ION_LINE_START!r}")
    try:
        values = simpleion.loads(text, single_value=False, text_buffer_size_limit=len(text.encode()) + 64)
    except Exception as e:  # amazon.ion raises IonException and others for malformed text
        raise Broken(f"{where}: not Ion text ({type(e).__name__}: {e})")
    need(len(values) == 1, f"{where}: {len(values)} Ion values, not one")
    record = values[0]
    need(IonType(record.ion_type) == IonType.STRUCT and not record.ion_annotations, f"{where}: not an Ion struct")
    return record


def check_change(record, names, where, view):
    """A change record's shape, given as typed maps: fields in AWS's order, the Metadata, the images
    the view allows, keys that agree with the images. Returns it, sets sorted."""
    need(names[:2] == ["Metadata", "Keys"] and names == [f for f in CHANGE_FIELDS if f in names],
         f"{where}: fields {names} are not Metadata, Keys[, NewImage][, OldImage]")
    need(len(set(names)) == len(names), f"{where}: a field twice")
    micros = record["Metadata"]
    need(list(micros) == ["WriteTimestampMicros"] and list(micros["WriteTimestampMicros"]) == ["N"]
         and re.match(r"^[0-9]+$", micros["WriteTimestampMicros"]["N"]),
         f"{where}: Metadata is not {{WriteTimestampMicros: <integer N>}}: {micros}")
    out = {"Metadata": micros}
    for field in names[1:]:
        need(isinstance(record[field], dict) and record[field], f"{where}: {field} is not a non-empty map")
        out[field] = {k: check_value(v, f"{where}: {field}.{k}") for k, v in record[field].items()}
    need(view == "NEW_AND_OLD_IMAGES" or "OldImage" not in out, f"{where}: an OldImage in a {view} export")
    for image in ("NewImage", "OldImage"):
        if image in out:
            for k, v in out["Keys"].items():
                need(out[image].get(k) == v, f"{where}: {image}.{k} is not the key's {v}")
    return out


def ion_item(text, where, ion):
    """The item of one ION line: `$ion_1_0 ` and one struct with the one field `Item`."""
    _, IonType = ion
    record = ion_record(text, where, ion)
    need([name for name, _ in record.items()] == ["Item"], f"{where}: not a {{Item:…}} line")
    item = record["Item"]
    need(IonType(item.ion_type) == IonType.STRUCT and not item.ion_annotations, f"{where}: Item is not a struct")
    return ion_struct(item, where, IonType)


def multipart_etag(data, part_size):
    digests = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def check(bucket_dir, summary_key, part_size, dump, bucket=None):
    def read(key):
        path = os.path.join(bucket_dir, key)
        need(os.path.isfile(path), f"object {key} is missing")
        with open(path, "rb") as f:
            return f.read()

    m = re.match(r"^(?:(.+)/)?AWSDynamoDB/([^/]+)/manifest-summary\.json$", summary_key)
    need(m, f"{summary_key} is not <prefix>/AWSDynamoDB/<export-id>/manifest-summary.json")
    prefix, export_id = m.group(1), m.group(2)
    need(EXPORT_ID.match(export_id), f"export id {export_id} is not <14 digits>-<8 hex>")
    root = summary_key[: -len("/manifest-summary.json")]

    need(read(f"{root}/_started") == b"", "_started is not an empty object")

    summary_bytes = read(summary_key)
    summary = json.loads(summary_bytes)
    incremental = summary.get("exportType") == "INCREMENTAL_EXPORT"
    keys = INCREMENTAL_SUMMARY_KEYS if incremental else SUMMARY_KEYS
    need(list(summary) == keys, f"summary keys are {list(summary)}, expected {keys}")
    need(compact(summary).encode() == summary_bytes, "manifest-summary.json is not one line of compact JSON")
    need(read(f"{root}/manifest-summary.md5").decode() == md5_b64(summary_bytes), "manifest-summary.md5 is wrong")
    need(summary["version"] == ("2023-08-01" if incremental else "2020-06-30"), f"version {summary['version']} is wrong")
    need(TABLE_ARN.match(summary["tableArn"]), f"tableArn {summary['tableArn']} is malformed")
    need(summary["exportArn"] == f"{summary['tableArn']}/export/{export_id}", "exportArn is not <tableArn>/export/<id>")
    times = ("startTime", "endTime") + (("exportFromTime", "exportToTime") if incremental else ("exportTime",))
    for field in times:
        need(TIME.match(summary[field]), f"{field} {summary[field]} is not ISO-8601 with milliseconds and Z")
    if incremental:
        need(summary["exportFromTime"] < summary["exportToTime"] <= summary["startTime"] <= summary["endTime"],
             "not exportFromTime < exportToTime <= startTime <= endTime")
        need(summary["outputView"] in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"), f"outputView {summary['outputView']!r}")
    else:
        need(summary["startTime"] <= summary["exportTime"] <= summary["endTime"],
             "not startTime <= exportTime <= endTime")
    started_ms = int(export_id[:14])
    started = datetime.datetime.fromtimestamp(started_ms / 1000, datetime.timezone.utc)
    need(started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started_ms % 1000:03d}Z" == summary["startTime"],
         f"the export id's time {export_id[:14]} is not startTime {summary['startTime']}")
    if bucket is not None:
        need(summary["s3Bucket"] == bucket, f"s3Bucket {summary['s3Bucket']!r} is not {bucket!r}")
    need(isinstance(summary["s3Bucket"], str) and summary["s3Bucket"], "s3Bucket is empty")
    need(UUID.match(summary["tableId"]), f"tableId {summary['tableId']} is not a UUID")
    need(summary["s3Prefix"] == prefix, f"s3Prefix {summary['s3Prefix']!r} does not match the key's prefix {prefix!r}")
    need(summary["s3SseAlgorithm"] in ("AES256", "KMS"), "s3SseAlgorithm is not AES256 or KMS")
    kms = summary["s3SseAlgorithm"] == "KMS"
    need((summary["s3SseKmsKeyId"] is not None) == kms, "s3SseKmsKeyId must be a key id exactly when s3SseAlgorithm is KMS")
    need(summary["s3SseKmsKeyId"] is None or isinstance(summary["s3SseKmsKeyId"], str), "s3SseKmsKeyId is not a string")
    need(summary["manifestFilesS3Key"] == f"{root}/manifest-files.json", "manifestFilesS3Key is not the full key")
    need(isinstance(summary["billedSizeBytes"], int), "billedSizeBytes is not an integer")
    output_format = summary["outputFormat"]
    need(output_format in DATA_NAME, f"outputFormat {output_format!r} is not DYNAMODB_JSON or ION")
    ion = ion_reader() if output_format == "ION" else None

    listing = read(f"{root}/manifest-files.json")
    need(read(f"{root}/manifest-files.md5").decode() == md5_b64(listing), "manifest-files.md5 is wrong")
    # An incremental export's data files are in the folder all of them under the prefix share.
    data_folder = (f"{prefix}/AWSDynamoDB/data/" if prefix else "AWSDynamoDB/data/") if incremental else f"{root}/data/"
    listed = set()
    total = 0
    items = []
    changed_keys = set()
    for number, line in enumerate(listing.decode().splitlines(), 1):
        entry = json.loads(line)
        need(list(entry) == FILE_KEYS, f"manifest-files.json line {number}: keys {list(entry)}, expected {FILE_KEYS}")
        need(compact(entry) == line, f"manifest-files.json line {number} is not compact")
        key = entry["dataFileS3Key"]
        need(key.startswith(data_folder) and DATA_NAME[output_format].match(key[len(data_folder):]),
             f"data file key {key} is malformed for {output_format} (not {data_folder}<26 base32>.<ext>)")
        need(key not in listed, f"{key} is listed twice")
        listed.add(key)
        data = read(key)
        need(entry["md5Checksum"] == md5_b64(data), f"{key}: md5Checksum does not match the object")
        etag = entry["etag"]
        if not kms:  # with SSE-KMS, S3's ETags are not MD5s
            expected_etag = hashlib.md5(data).hexdigest() if "-" not in etag else multipart_etag(data, part_size)
            need(etag == expected_etag, f"{key}: etag {etag} should be {expected_etag}")
        lines = gzip.decompress(data).decode("utf-8").split("\n")
        need(lines[-1] == "", f"{key}: the last line does not end with a newline")
        lines = lines[:-1]
        need(len(lines) == entry["itemCount"], f"{key}: {len(lines)} lines but itemCount {entry['itemCount']}")
        for i, text in enumerate(lines):
            where = f"{key} line {i + 1}"
            if incremental:
                if ion:
                    simpleion, IonType = ion
                    record = ion_record(text, where, ion)
                    names = [name for name, _ in record.items()]
                    need(len(set(names)) == len(names), f"{where}: a field twice")
                    metadata = record["Metadata"] if "Metadata" in names else None
                    need(metadata is not None and IonType(metadata.ion_type) == IonType.STRUCT,
                         f"{where}: Metadata is not a struct")
                    need([n for n, _ in metadata.items()] == ["WriteTimestampMicros"], f"{where}: Metadata's fields")
                    stamp = metadata["WriteTimestampMicros"]
                    need(IonType(stamp.ion_type) == IonType.DECIMAL, f"{where}: WriteTimestampMicros is not a decimal")
                    typed = {"Metadata": {"WriteTimestampMicros": {"N": decimal_to_n(stamp, where)}}}
                    for name in names[1:]:
                        value = record[name]
                        need(IonType(value.ion_type) == IonType.STRUCT and not value.ion_annotations,
                             f"{where}: {name} is not a struct")
                        typed[name] = ion_struct(value, f"{where}: {name}", IonType)
                    record = typed
                else:
                    record = json.loads(text)
                    need(isinstance(record, dict), f"{where}: not a JSON object")
                    need(compact(record) == text, f"{where}: not compact JSON as the DynamoDB API writes it")
                    names = list(record)
                change = check_change(record, names, where, summary["outputView"])
                identity = json.dumps(change["Keys"], sort_keys=True)
                need(identity not in changed_keys, f"{where}: a second change record for {identity}")
                changed_keys.add(identity)
                items.append(change)
                continue
            if ion:
                item = ion_item(text, where, ion)
            else:
                record = json.loads(text)
                need(list(record) == ["Item"], f"{where}: not a {{\"Item\":…}} line")
                need(compact(record) == text, f"{where}: not compact JSON as the DynamoDB API writes it")
                item = record["Item"]
            need(isinstance(item, dict) and item, f"{where}: Item is not a non-empty map")
            items.append({k: check_value(v, f"{where}: {k}") for k, v in item.items()})
        total += entry["itemCount"]
    need(total == summary["itemCount"], f"the data files hold {total} items, the summary says {summary['itemCount']}")

    data_dir = os.path.join(bucket_dir, root, "data")
    if not incremental and os.path.isdir(data_dir):
        for name in os.listdir(data_dir):
            need(f"{root}/data/{name}" in listed, f"data/{name} is not listed in manifest-files.json")

    if dump:
        with open(dump, "w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n")
    return summary, len(listed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bucket_dir")
    parser.add_argument("summary_key")
    parser.add_argument("--bucket", help="the s3Bucket the summary must name")
    parser.add_argument("--part-size", type=int, default=8 * 1024 * 1024,
                        help="size of multipart parts, for ETags of files under 8 GB (ddb-export's first 1000 parts)")
    parser.add_argument("--dump-items")
    args = parser.parse_args()
    try:
        summary, files = check(args.bucket_dir, args.summary_key, args.part_size, args.dump_items, args.bucket)
    except (Broken, ValueError, KeyError, OSError) as e:
        print(f"export check failed: {e}", file=sys.stderr)
        return 1
    print(f"export ok: {summary['itemCount']} items in {files} data files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
