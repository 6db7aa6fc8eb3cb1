// One side of bench/etcd-clients: the local-ipam etcd client (src/cluster/etcd.ts, JSON gateway over node:https).
// Bundled by run.sh and started by run.ts, under Node or Bun:
//   jsongw-child.mjs cold|warm|idle <endpoint> <ca> <cert> <key> [count]
// cold: one create-if-absent txn, prints "committed", exits. warm: 50 unmeasured txns, then `count` timed ones,
// prints {"ms": [...]}. idle: one txn, a GC if exposed, prints "ready", then holds the connection until killed.
import { EtcdClient, readTlsFiles } from "../../src/cluster/etcd.js";

const [mode, endpoint, ca, cert, key, countArg] = process.argv.slice(2);
const client = new EtcdClient({ endpoints: [endpoint!], tls: readTlsFiles({ ca, cert, key }) });
const tag = `${process.pid}-${Date.now()}`;
let n = 0;
const claim = async () => {
  const k = `bench/jsongw/${tag}/${n++}`;
  const r = await client.txn({
    compare: [{ key: k, createRevision: 0 }],
    success: [{ put: k, value: tag }],
    failure: [{ get: k }],
  });
  if (!r.succeeded) throw new Error(`lost ${k}`);
};

await claim();
if (mode === "cold") {
  process.stdout.write("committed\n");
  client.close();
} else if (mode === "warm") {
  for (let i = 0; i < 50; i++) await claim();
  const ms: number[] = [];
  for (let i = 0; i < Number(countArg ?? 500); i++) {
    const t = performance.now();
    await claim();
    ms.push(performance.now() - t);
  }
  process.stdout.write(JSON.stringify({ ms }) + "\n");
  client.close();
} else {
  (globalThis as { gc?: () => void }).gc?.();
  process.stdout.write("ready\n");
  setInterval(() => {}, 1 << 30);
}
