// The other side of bench/etcd-clients: the npm package etcd3 (gRPC through @grpc/grpc-js). run.sh installs it
// into a temporary directory outside the repository and copies this file next to its node_modules.
// Same arguments, same txn and same output as jsongw-child.ts.
import { readFileSync } from "node:fs";
import { Etcd3 } from "etcd3";

const [mode, endpoint, ca, cert, key, countArg] = process.argv.slice(2);
const client = new Etcd3({
  hosts: endpoint,
  credentials: { rootCertificate: readFileSync(ca), certChain: readFileSync(cert), privateKey: readFileSync(key) },
});
const tag = `${process.pid}-${Date.now()}`;
let n = 0;
const claim = async () => {
  const k = `bench/etcd3/${tag}/${n++}`;
  const r = await client.if(k, "Create", "==", 0).then(client.put(k).value(tag)).else(client.get(k)).commit();
  if (!r.succeeded) throw new Error(`lost ${k}`);
};

await claim();
if (mode === "cold") {
  process.stdout.write("committed\n");
  client.close();
} else if (mode === "warm") {
  for (let i = 0; i < 50; i++) await claim();
  const ms = [];
  for (let i = 0; i < Number(countArg ?? 500); i++) {
    const t = performance.now();
    await claim();
    ms.push(performance.now() - t);
  }
  process.stdout.write(JSON.stringify({ ms }) + "\n");
  client.close();
} else {
  globalThis.gc?.();
  process.stdout.write("ready\n");
  setInterval(() => {}, 1 << 30);
}
