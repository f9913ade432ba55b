// A minimal OCPP-J CSMS for benchmarks: it answers every CALL at once, from a table, and
// does nothing else, so that a fleetsim run against it measures the fleet, not the CSMS.
// Usage: node server.mjs [--port 0] [--heartbeat-interval 1]
// It prints "listening on 127.0.0.1:PORT" when ready, and its counts every second to stderr
// with --stats.
import http from "node:http";
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const port = Number(option("--port", "0"));
const interval = Number(option("--heartbeat-interval", "1"));
const stats = args.includes("--stats");

let now = new Date().toISOString();
setInterval(() => { now = new Date().toISOString(); }, 100).unref();
let transactionId = 0;

const accepted = { status: "Accepted" };
const answers16 = {
  BootNotification: () => ({ status: "Accepted", currentTime: now, interval }),
  Heartbeat: () => ({ currentTime: now }),
  Authorize: () => ({ idTagInfo: accepted }),
  StartTransaction: () => ({ transactionId: ++transactionId, idTagInfo: accepted }),
  StopTransaction: () => ({ idTagInfo: accepted }),
  DataTransfer: () => accepted,
};
const answers201 = {
  BootNotification: () => ({ status: "Accepted", currentTime: now, interval }),
  Heartbeat: () => ({ currentTime: now }),
  Authorize: () => ({ idTokenInfo: accepted }),
  TransactionEvent: () => ({}),
  DataTransfer: () => accepted,
};

let calls = 0;
let connections = 0;
const server = http.createServer((_, res) => { res.writeHead(426).end(); });
const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  handleProtocols: (protocols) =>
    protocols.has("ocpp1.6") ? "ocpp1.6" : protocols.has("ocpp2.0.1") ? "ocpp2.0.1" : false,
});
wss.on("connection", (ws) => {
  connections += 1;
  const answers = ws.protocol === "ocpp2.0.1" ? answers201 : answers16;
  ws.on("close", () => { connections -= 1; });
  ws.on("message", (data) => {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    if (!Array.isArray(frame) || frame[0] !== 2) return;
    calls += 1;
    const answer = answers[frame[2]];
    ws.send(JSON.stringify([3, frame[1], answer ? answer() : {}]));
  });
});
server.listen(port, "127.0.0.1", 8192, () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
if (stats) {
  setInterval(() => {
    process.stderr.write(`${connections} connections, ${calls} calls/s\n`);
    calls = 0;
  }, 1000).unref();
}
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
