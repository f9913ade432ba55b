// A minimal OCPP-J CSMS for benchmarks: it answers every CALL at once, from a table, and
// does nothing else, so that a fleetsim run against it measures the fleet, not the CSMS.
// Usage: node server.mjs [--port 0] [--heartbeat-interval 1] [--password TEMPLATE]
//                        [--tls-cert PEM --tls-key PEM [--client-ca PEM]]
// OCPP security profiles: --password checks HTTP Basic auth (user = charger ID, "{id}" in
// the template stands for it; profile 1, or 2 with TLS), --tls-cert/--tls-key serve wss://
// (profile 2), --client-ca requires a client certificate whose CN is the charger ID
// (profile 3). A bad password or CN gets HTTP 401.
// It prints "listening on 127.0.0.1:PORT" when ready, and its counts every second to stderr
// with --stats.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const port = Number(option("--port", "0"));
const interval = Number(option("--heartbeat-interval", "1"));
const stats = args.includes("--stats");
const password = option("--password", null);
const tlsCert = option("--tls-cert", null);
const tlsKey = option("--tls-key", null);
const clientCa = option("--client-ca", null);

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
const refuse = (_, res) => { res.writeHead(426).end(); };
const server = tlsCert
  ? https.createServer({
    cert: readFileSync(tlsCert),
    key: readFileSync(tlsKey),
    minVersion: "TLSv1.2",
    ...(clientCa ? { ca: readFileSync(clientCa), requestCert: true, rejectUnauthorized: true }
      : {}),
  }, refuse)
  : http.createServer(refuse);
const chargerId = (url) => decodeURIComponent(url.split("?")[0].split("/").pop());
const authorized = (req) => {
  const id = chargerId(req.url);
  if (clientCa && req.socket.getPeerCertificate().subject?.CN !== id) return false;
  if (password === null) return true;
  const expected = Buffer.from(`${id}:${password.replaceAll("{id}", id)}`).toString("base64");
  return req.headers.authorization === `Basic ${expected}`;
};
const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  verifyClient: (info, done) => (authorized(info.req) ? done(true) : done(false, 401)),
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
