// Runs the `exporter` component (wit/world.wit) in a second, independent component runtime:
// jco (https://github.com/bytecodealliance/jco) transpiles it to JavaScript + core wasm, and
// Node's V8 runs it, with @bytecodealliance/preview2-shim for WASI, our own JS
// `ddb-export:core/logging@0.1.0`, and `ddb-export:core/compression@0.1.0` from the
// `compressor` component (compression/), which jco runs too. Tests feed it the inputs the wasmtime host uses and compare
// the bytes; both npm packages live in tests/standins/node_modules (scripts/install-standins).
//
//   node tests/second_runtime/run_component.mjs SCENARIO.json
//
// SCENARIO.json holds jco's JavaScript shapes of the WIT values: record fields in camelCase,
// enums as their WIT case name ("dynamodb-json"), variants as {"tag": case, "val": payload}
// ({"tag": "on-demand"} without payload), options as the value or null (or absent), u64s as
// JSON numbers or decimal strings (turned into BigInts here):
//
//   {
//     "component": "/abs/path/component.wasm",
//     "compressor": "/abs/path/ddb_export_compression.wasm",   // serves ddb-export:core/compression
//     "workDir": "/abs/dir",            // receives the transpiled JS and core wasm
//     "table": {                        // types.table-description
//       "tableName": "t", "tableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/t",
//       "tableId": null,                // option<string>
//       "itemCount": 0, "tableSizeBytes": 0,                      // u64
//       "billing": {"tag": "on-demand"} // or {"tag": "provisioned", "val": 5}
//     },
//     "request": {                      // snapshot.export-request
//       "s3Bucket": "b", "s3Prefix": null, "s3BucketOwner": null,  // prefix, owner: option<string>
//       "s3SseAlgorithm": "aes256",     // or "kms"
//       "s3SseKmsKeyId": null,          // option<string>
//       "exportFormat": "dynamodb-json",// or "ion"
//       "clientToken": "token",         // string, not an option
//       "startTimeMs": 1700000000000,   // u64
//       "region": "us-east-1",
//       "incremental": null             // or {"exportFromTimeMs", "exportToTimeMs" (u64),
//                                       //     "exportViewType": "new-image" | "new-and-old-images"}
//                                       // (the write encoder refuses an incremental snapshot)
//     },
//     "planRequest": {"segments": null, "parallelism": 4},   // segments: option<u32>
//     "encoderOptions": {"shardId": 0, "targetFileBytes": 0, "compressionLevel": 6,
//                        "firstSequence": 0},                // targetFileBytes: u64
//     "pages": ["<base64 of a page packed as wit/page-format.md says>", ...],
//     "endTimeMs": 1700000001000        // u64, export-totals.end-time-ms
//   }
//
// It calls snapshot.create, shard-plan.create, one write encoder (open, encode-page for every
// page, finish), then write.manifests with each data file as the host would list it (md5 and a
// single-part etag computed here from the bytes, item counts summed, billed size 0), and prints
// one JSON document on stdout, u64s as decimal strings, list<u8>s as base64, `none` as null:
//
//   {"snapshot": <export-snapshot>, "plan": <plan>,
//    "files": [{"key", "itemCount", "md5", "sizeBytes",   // from the encoder's file-finished
//               "bytes": <base64 of the file's bytes events, concatenated>}],
//    "manifests": [{"key", "body": <base64>}]}
//
// An `err` result, a trap or a broken output sequence: a message on stderr and exit code 1.
// The component's log records go to stderr, and so does anything it writes to its stdout.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

// The npm packages are installed in tests/standins, which is not an ancestor of this script.
const standins = createRequire(new URL("../standins/package.json", import.meta.url));
const { transpile } = await import(pathToFileURL(standins.resolve("@bytecodealliance/jco")));
const { WASIShim } = await import(
  pathToFileURL(standins.resolve("@bytecodealliance/preview2-shim/instantiation"))
);

const u64 = (value) => BigInt(value); // JSON number or decimal string

/** The scenario's values in the shapes jco lowers (BigInt for every u64). */
function readScenario(path) {
  const s = JSON.parse(readFileSync(path, "utf8"));
  const { billing } = s.table;
  const table = {
    ...s.table,
    itemCount: u64(s.table.itemCount),
    tableSizeBytes: u64(s.table.tableSizeBytes),
    billing: billing.tag === "provisioned" ? { tag: billing.tag, val: u64(billing.val) } : billing,
  };
  const { incremental } = s.request;
  const request = {
    ...s.request,
    startTimeMs: u64(s.request.startTimeMs),
    incremental: incremental && {
      ...incremental,
      exportFromTimeMs: u64(incremental.exportFromTimeMs),
      exportToTimeMs: u64(incremental.exportToTimeMs),
    },
  };
  const encoderOptions = { ...s.encoderOptions, targetFileBytes: u64(s.encoderOptions.targetFileBytes) };
  const pages = s.pages.map((page) => new Uint8Array(Buffer.from(page, "base64")));
  return { ...s, table, request, encoderOptions, pages, endTimeMs: u64(s.endTimeMs) };
}

/** Transpiles a component into `workDir/name` and instantiates it with WASI as our host grants
 * it (no files, environment, arguments or network) and `extra` imports; resolves to its exports. */
async function instantiate(componentPath, workDir, name, extra) {
  const dir = join(workDir, name);
  const { files } = await transpile(readFileSync(componentPath), {
    name,
    instantiation: "async", // an `instantiate(getCoreModule, imports)` function, no ESM imports
    emitTypescriptDeclarations: false, // what jco-transpile reads; jco's typed `noTypescript` is ignored
    quiet: true,
  });
  for (const [file, bytes] of Object.entries(files)) {
    // .mjs: the work dir has no package.json saying the .js is a module.
    const path = join(dir, file === `${name}.js` ? `${name}.mjs` : file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
  }
  const component = await import(pathToFileURL(join(dir, `${name}.mjs`)));
  const wasi = new WASIShim({ sandbox: { preopens: {}, env: {}, args: [], enableNetwork: false } });
  const imports = wasi.getImportObject(); // keyed without versions, as the generated code looks up
  imports["wasi:cli/stdout"] = { getStdout: imports["wasi:cli/stderr"].getStderr }; // keep stdout ours
  Object.assign(imports, extra);
  return component.instantiate((coreModule) => WebAssembly.compile(readFileSync(join(dir, coreModule))), imports);
}

/** The exporter component, its `compression` import served by the `compressor` component (the
 * same zlib-rs our host runs natively) and `logging` written here. */
async function instantiateExporter(scenario) {
  const { compression } = await instantiate(scenario.compressor, scenario.workDir, "compressor", {});
  return instantiate(scenario.component, scenario.workDir, "component", {
    "ddb-export:core/compression": compression,
    "ddb-export:core/logging": {
      log: (level, message) => process.stderr.write(`component ${level}: ${message}\n`),
    },
    "ddb-export:core/types": {}, // type definitions only
  });
}

/** Runs one export call; an `err` result (thrown by jco as `payload`) or a trap names the step. */
function call(step, fn) {
  try {
    return fn();
  } catch (error) {
    const payload = error?.payload;
    const reason =
      payload === undefined
        ? `${error instanceof WebAssembly.RuntimeError ? "trap: " : ""}${error?.message ?? error}`
        : payload.tag === undefined
          ? String(payload)
          : `${payload.tag}${payload.val === undefined ? "" : `: ${payload.val}`}`;
    throw new Error(`${step}: ${reason}`, { cause: error });
  }
}

/** Applies an encoder's output events to the data files, checking their order as the host does. */
function applyOutput(events, files, state) {
  for (const { tag, val } of events) {
    if (tag === "file-started" && !state.open) {
      state.open = { key: val, chunks: [] };
    } else if (tag === "bytes" && state.open) {
      state.open.chunks.push(val);
    } else if (tag === "file-finished" && state.open?.key === val.key) {
      const bytes = Buffer.concat(state.open.chunks);
      const md5 = createHash("md5").update(bytes).digest();
      if (md5.toString("base64") !== val.md5 || BigInt(bytes.length) !== val.sizeBytes) {
        throw new Error(`${val.key}: md5 or size-bytes does not match the bytes written`);
      }
      files.push({ ...val, bytes, etag: md5.toString("hex") });
      state.open = null;
    } else {
      throw new Error(`output event ${tag} out of sequence (open file: ${state.open?.key ?? "none"})`);
    }
  }
}

async function main() {
  const scenarioPath = process.argv[2];
  if (!scenarioPath) throw new Error("usage: node run_component.mjs SCENARIO.json");
  const scenario = readScenario(scenarioPath);
  const { snapshot: snapshots, shardPlan, write } = await instantiateExporter(scenario);

  const snapshot = call("snapshot.create", () => snapshots.create(scenario.table, scenario.request));
  const plan = call("shard-plan.create", () => shardPlan.create(scenario.table, scenario.planRequest));

  const encoder = call("write.encoder.open", () => write.Encoder.open(snapshot, scenario.encoderOptions));
  const files = [];
  const state = { open: null };
  scenario.pages.forEach((page, i) =>
    applyOutput(call(`write.encoder.encode-page (page ${i})`, () => encoder.encodePage(page)), files, state),
  );
  applyOutput(call("write.encoder.finish", () => encoder.finish()), files, state);
  if (state.open) throw new Error(`write.encoder.finish left ${state.open.key} open`);

  const entries = files.map((f) => ({
    dataFileS3Key: f.key,
    itemCount: f.itemCount,
    md5Checksum: f.md5,
    etag: f.etag,
  }));
  const totals = {
    endTimeMs: scenario.endTimeMs,
    itemCount: files.reduce((sum, f) => sum + f.itemCount, 0n),
    billedSizeBytes: 0n,
  };
  const manifests = call("write.manifests", () => write.manifests(snapshot, entries, totals));

  const result = {
    snapshot,
    plan,
    files: files.map(({ key, itemCount, md5, sizeBytes, bytes }) => ({
      key,
      itemCount,
      md5,
      sizeBytes,
      bytes: bytes.toString("base64"), // a Buffer: its toJSON would win over the replacer
    })),
    manifests,
  };
  process.stdout.write(`${JSON.stringify(result, toJson)}\n`);
}

/** JSON.stringify replacer: u64 -> decimal string, bytes -> base64, `none` -> null. */
function toJson(_key, value) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  return value === undefined ? null : value;
}

try {
  await main();
} catch (error) {
  process.stderr.write(`run_component: ${error.message}\n`);
  process.exitCode = 1;
}
