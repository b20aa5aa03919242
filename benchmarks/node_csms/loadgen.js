"use strict";
// The Node load generator of benchmarks/csms_vs_node.py: raw `ws` clients, one per station,
// against either CSMS (ours or ocpp-ws-io), security profile 1 (Basic auth, plain ws).
//
//   node loadgen.js --url ws://127.0.0.1:9000/ocpp --password <p> --connections 50 \
//       --mode closed --warmup 3 --duration 15        # back-to-back: peak validated msg/s
//   node loadgen.js ... --connections 10000 --mode open --interval 10   # held connections
//   node loadgen.js ... --self-check                  # one valid and one invalid frame
//   node loadgen.js --print-frame 7 3 tx-1 2026-01-01T00:00:00.000Z 1007
//
// Closed loop: each connection sends its next CALL when the previous answer arrived. Open
// loop: each connection sends one CALL every --interval seconds, phases spread evenly.
// Lines on stdout: "CONNECTED <n>", "MEASURING", "MEASURED", then one JSON document; the
// parent samples the server's CPU time and RSS between MEASURING and MEASURED.

const WebSocket = require("ws");

const ANSWER_TIMEOUT_MS = 10_000;

function parseArgs(argv) {
  const args = {
    url: "", password: "", prefix: "LOAD-", connections: 50, mode: "closed", warmup: 3,
    duration: 15, interval: 10, connectRate: 1000, selfCheck: false, printFrame: null,
  };
  const numeric = { "--connections": "connections", "--warmup": "warmup", "--duration": "duration",
    "--interval": "interval", "--connect-rate": "connectRate" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag in numeric) args[numeric[flag]] = Number(argv[++i]);
    else if (flag === "--url") args.url = argv[++i];
    else if (flag === "--password") args.password = argv[++i];
    else if (flag === "--prefix") args.prefix = argv[++i];
    else if (flag === "--mode") args.mode = argv[++i];
    else if (flag === "--self-check") args.selfCheck = true;
    else if (flag === "--print-frame") args.printFrame = argv.slice(i + 1, i + 6);
    else continue;
  }
  if (!["closed", "open"].includes(args.mode)) throw new Error(`--mode closed|open, not ${args.mode}`);
  return args;
}

// The same text as benchmarks/csms_load.py's _frame (the parent checks it with --print-frame).
function frame(messageId, seq, tx, ts, importWh) {
  return (
    `[2,"${messageId}","TransactionEvent",{"eventType":"Updated","timestamp":"${ts}",` +
    `"triggerReason":"MeterValuePeriodic","seqNo":${seq},` +
    `"transactionInfo":{"transactionId":"${tx}","chargingState":"Charging"},` +
    `"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"${ts}","sampledValue":[` +
    `{"value":-7000,"measurand":"Power.Active.Import"},` +
    `{"value":${importWh},"measurand":"Energy.Active.Import.Register"},` +
    `{"value":${Math.floor(importWh / 2)},"measurand":"Energy.Active.Export.Register"},` +
    `{"value":55.5,"measurand":"SoC","location":"EV"}]}]}]`
  );
}

// seqNo as text: TypeConstraintViolation under the OCPP 2.1 schema (strict validation).
function invalidFrame(messageId, ts) {
  return frame(messageId, 1, "tx-invalid", ts, 1000).replace('"seqNo":1', '"seqNo":"one"');
}

const identity = (args, i) => `${args.prefix}${String(i).padStart(5, "0")}`;
const nowText = () => new Date().toISOString();

class Tally {
  constructor() {
    this.measuring = false;
    this.latenciesMs = [];
    this.errors = {};
    this.connected = 0;
  }
  error(kind) {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }
}

// One station: a ws connection with at most one CALL in flight.
class Station {
  constructor(ws) {
    this.ws = ws;
    this.pending = null; // { id, started, resolve, timer }
    ws.on("message", (data, isBinary) => this._onMessage(data, isBinary));
    ws.on("close", () => this._fail(new Error("connection closed")));
    ws.on("error", (err) => this._fail(err));
  }
  exchange(id, text) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this._settle(reject, new Error("timeout")), ANSWER_TIMEOUT_MS);
      this.pending = { id, started: performance.now(), resolve, reject, timer };
      this.ws.send(text);
    });
  }
  _onMessage(data) {
    const text = data.toString();
    if (text.startsWith("[2")) return; // a CALL from the CSMS, not our answer: left unanswered
    const pending = this.pending;
    if (pending === null) return;
    this._settle(pending.resolve, { text, elapsedMs: performance.now() - pending.started });
  }
  _fail(err) {
    if (this.pending !== null) this._settle(this.pending.reject, err);
  }
  _settle(fn, value) {
    clearTimeout(this.pending.timer);
    this.pending = null;
    fn(value);
  }
}

function open(args, i, tally) {
  const token = Buffer.from(`${identity(args, i)}:${args.password}`).toString("base64");
  const ws = new WebSocket(`${args.url}/${identity(args, i)}`, ["ocpp2.1"], {
    headers: { Authorization: `Basic ${token}` },
    perMessageDeflate: false,
    handshakeTimeout: 60_000,
  });
  return new Promise((resolve) => {
    ws.once("open", () => { tally.connected++; resolve(new Station(ws)); });
    ws.once("unexpected-response", (_req, res) => { tally.error(`connect:http-${res.statusCode}`); resolve(null); });
    ws.once("error", (err) => { tally.error(`connect:${err.code ?? err.message}`); resolve(null); });
  });
}

async function connectAll(args, tally) {
  const stations = [];
  const batch = Math.max(1, Math.floor(args.connectRate / 10));
  for (let start = 0; start < args.connections; start += batch) {
    const end = Math.min(args.connections, start + batch);
    const chunk = [];
    for (let i = start; i < end; i++) chunk.push(open(args, i, tally));
    stations.push(...(await Promise.all(chunk)));
    await new Promise((r) => setTimeout(r, 100));
  }
  return stations;
}

async function exchange(station, id, text, tally) {
  try {
    const answer = await station.exchange(id, text);
    if (!answer.text.startsWith(`[3,"${id}"`)) tally.error(answer.text.startsWith("[4") ? "callerror" : "bad-answer");
    else if (tally.measuring) tally.latenciesMs.push(answer.elapsedMs);
    return true;
  } catch (err) {
    tally.error(err.message === "timeout" ? "timeout" : "connection");
    return err.message === "timeout";
  }
}

async function closedLoop(station, index, tally, stopAt) {
  const tx = `tx-${index}`;
  const ts = nowText();
  for (let id = 1; performance.now() < stopAt; id++) {
    if (!(await exchange(station, String(id), frame(id, id, tx, ts, 1000 + id), tally))) return;
  }
}

async function openLoop(station, index, args, tally, stopAt) {
  const tx = `tx-${index}`;
  let nextAt = performance.now() + (index / args.connections) * args.interval * 1000;
  for (let id = 1; ; id++) {
    const delay = nextAt - performance.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (performance.now() >= stopAt) return;
    if (!(await exchange(station, String(id), frame(id, id, tx, nowText(), 1000 + id), tally))) return;
    nextAt += args.interval * 1000;
  }
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(args) {
  const tally = new Tally();
  const connectStarted = performance.now();
  const stations = await connectAll(args, tally);
  const connectS = (performance.now() - connectStarted) / 1000;
  process.stdout.write(`CONNECTED ${tally.connected}\n`);
  const stopAt = performance.now() + (args.warmup + args.duration) * 1000;
  const loops = stations.map((station, i) => station === null ? null
    : args.mode === "closed" ? closedLoop(station, i, tally, stopAt) : openLoop(station, i, args, tally, stopAt));
  await new Promise((r) => setTimeout(r, args.warmup * 1000));
  tally.measuring = true;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  process.stdout.write("MEASURING\n");
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - performance.now())));
  tally.measuring = false;
  const measuredS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write("MEASURED\n");
  await Promise.all(loops.filter((l) => l !== null));
  for (const station of stations) if (station !== null) station.ws.terminate();
  const sorted = Float64Array.from(tally.latenciesMs).sort();
  const round = (x, d = 2) => (x === null ? null : Number(x.toFixed(d)));
  return {
    mode: args.mode, connections: args.connections, connected: tally.connected,
    connect_s: round(connectS, 1), measured_s: round(measuredS, 2), messages: sorted.length,
    msg_per_s: round(sorted.length / measuredS, 1),
    latency_ms: { p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)),
      max: round(sorted.length ? sorted[sorted.length - 1] : null) },
    errors: Object.values(tally.errors).reduce((a, b) => a + b, 0), error_kinds: tally.errors,
    // Near 100 % would mean the generator, not the server, set the pace.
    generator_cpu_pct: round((100 * (cpu.user + cpu.system)) / 1e6 / measuredS, 1),
  };
}

// One connection: a valid frame must get a CALLRESULT, an invalid one a CALLERROR.
async function selfCheck(args) {
  const tally = new Tally();
  const station = await open(args, 0, tally);
  if (station === null) return { connected: false, errors: tally.errors };
  const ts = nowText();
  const valid = await station.exchange("1", frame(1, 1, "tx-0", ts, 1001));
  const invalid = await station.exchange("2", invalidFrame(2, ts));
  station.ws.terminate();
  return { connected: true, valid_answer: JSON.parse(valid.text), invalid_answer: JSON.parse(invalid.text) };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.printFrame !== null) {
    const [id, seq, tx, ts, importWh] = args.printFrame;
    process.stdout.write(`${frame(Number(id), Number(seq), tx, ts, Number(importWh))}\n`);
    return;
  }
  if (!args.url || !args.password) throw new Error("--url and --password are required");
  const result = args.selfCheck ? await selfCheck(args) : await measure(args);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
