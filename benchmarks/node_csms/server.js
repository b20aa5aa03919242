"use strict";
// The Node OCPP 2.1 CSMS that benchmarks/csms_vs_node.py measures ours against: ocpp-ws-io
// with strict OCA-schema validation (ajv) on, security profile 1 (Basic auth over plain ws,
// each password checked against an in-memory table of salted HMAC-SHA256 digests, the scheme
// our fleet registry stores), answering BootNotification, Heartbeat, StatusNotification and
// TransactionEvent. Per message it keeps an in-memory station record (status, last meter
// values), the in-memory half of what our CSMS does; it writes nothing to a database.
//
//   node server.js --port 9000 --stations 50 --password <p> [--prefix LOAD-] [--no-strict]
//
// Prints "LISTENING <port>" on stdout once it accepts connections.

const crypto = require("node:crypto");
const { OCPPServer, SecurityProfile } = require("ocpp-ws-io");

function parseArgs(argv) {
  const args = { port: 0, stations: 50, password: "", prefix: "LOAD-", strict: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--no-strict") args.strict = false;
    else if (flag === "--port") args.port = Number(argv[++i]);
    else if (flag === "--stations") args.stations = Number(argv[++i]);
    else if (flag === "--password") args.password = argv[++i];
    else if (flag === "--prefix") args.prefix = argv[++i];
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!args.password) throw new Error("--password is required");
  return args;
}

function digest(password, salt) {
  return crypto.createHmac("sha256", salt).update(password).digest();
}

// identity -> { salt, digest }: every station its own salt, as our registry stores them.
function credentialTable(args) {
  const table = new Map();
  for (let i = 0; i < args.stations; i++) {
    const salt = crypto.randomBytes(16);
    const identity = `${args.prefix}${String(i).padStart(5, "0")}`;
    table.set(identity, { salt, digest: digest(args.password, salt) });
  }
  return table;
}

function passwordMatches(entry, password) {
  if (!entry || !password) return false;
  return crypto.timingSafeEqual(digest(password, entry.salt), entry.digest);
}

// The in-memory fleet record a TransactionEvent / StatusNotification updates.
function recordMeterValues(station, params) {
  const tx = (station.transaction ??= { id: params.transactionInfo.transactionId });
  tx.seqNo = params.seqNo;
  tx.chargingState = params.transactionInfo.chargingState;
  for (const meterValue of params.meterValue ?? []) {
    for (const sampled of meterValue.sampledValue) {
      tx[sampled.measurand ?? "Energy.Active.Import.Register"] = sampled.value;
    }
  }
}

function handleStation(client, fleet) {
  const station = { identity: client.identity, lastSeen: 0, connectors: new Map() };
  fleet.set(client.identity, station);
  const now = () => new Date().toISOString();
  client.handle("ocpp2.1", "BootNotification", ({ params }) => {
    station.lastSeen = Date.now();
    station.model = params.chargingStation.model;
    return { currentTime: now(), interval: 300, status: "Accepted" };
  });
  client.handle("ocpp2.1", "Heartbeat", () => {
    station.lastSeen = Date.now();
    return { currentTime: now() };
  });
  client.handle("ocpp2.1", "StatusNotification", ({ params }) => {
    station.lastSeen = Date.now();
    station.connectors.set(`${params.evseId}/${params.connectorId}`, params.connectorStatus);
    return {};
  });
  client.handle("ocpp2.1", "TransactionEvent", ({ params }) => {
    station.lastSeen = Date.now();
    recordMeterValues(station, params);
    return {};
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const credentials = credentialTable(args);
  const options = {
    protocols: ["ocpp2.1"],
    securityProfile: SecurityProfile.BASIC_AUTH,
    logging: false, // its logger (voltlog-io) is not installed: see package.json
  };
  if (args.strict) options.strictMode = true;
  const server = new OCPPServer(options);
  server.auth((ctx) => {
    const { identity, password } = ctx.handshake;
    if (!passwordMatches(credentials.get(identity), password)) ctx.reject(401, "Unauthorized");
    ctx.accept({ protocol: "ocpp2.1" });
  });
  const fleet = new Map();
  server.on("client", (client) => handleStation(client, fleet));
  const listening = await server.listen(args.port, "127.0.0.1");
  process.stdout.write(`LISTENING ${listening.address().port}\n`);
  const stop = () => server.close({ force: true }).finally(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
