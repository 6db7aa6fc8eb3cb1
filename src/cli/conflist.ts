// CNI config files for `install` and `migrate`: a conflist rendered from a template and the node's pod CIDRs,
// and the places in a config's text where an IPAM type is written (to change them in place, keeping the rest of
// the file byte for byte).
import { loadIpamConfig } from "../config/ipam.js";
import { CniError } from "../errors.js";
import { type Cidr, formatCIDR, networkOf, parseCIDR, sameAddr } from "../net/ip.js";
import { UsageError } from "./flags.js";

/** The conflist `install` writes when given no template: a bridge, local-ipam, portmap. */
export const DEFAULT_TEMPLATE = `{
  "cniVersion": "1.0.0",
  "name": "k8s-pod-network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": { "type": "local-ipam", "ranges": "{{ranges}}", "routes": "{{routes}}" }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
`;

/** The node's pod CIDRs, checked: network addresses, at most one per family (as Kubernetes assigns them). */
export function podCidrs(texts: string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const text of texts) {
    const c = parseCIDR(text);
    if (!c || c.maskBits !== (c.ip.v6 ? 128 : 32))
      throw new UsageError(`--pod-cidr: ${JSON.stringify(text)} is not a CIDR`);
    if (!sameAddr(networkOf(c.ip, c.prefix), c.ip)) throw new UsageError(`--pod-cidr: ${text} has host bits set`);
    if (out.some((o) => o.ip.v6 === c.ip.v6))
      throw new UsageError(`--pod-cidr: two ${c.ip.v6 ? "IPv6" : "IPv4"} CIDRs`);
    out.push(c);
  }
  return out;
}

/**
 * Fills a template: `"{{ranges}}"` (with its quotes) becomes one range set per pod CIDR, `"{{routes}}"` a default
 * route per family, `"{{podCIDRs}}"` the list of CIDRs; `{{podCIDR}}`, `{{podCIDRv4}}` and `{{podCIDRv6}}` inside
 * strings become the CIDR's text. The result must be a conflist whose local-ipam blocks load as the plugin would
 * load them: a template that cannot work is refused here, not at the node's next pod.
 */
export function renderConflist(template: string, cidrs: Cidr[]): string {
  const v4 = cidrs.find((c) => !c.ip.v6);
  const v6 = cidrs.find((c) => c.ip.v6);
  const text = (c: Cidr | undefined, token: string) => {
    if (!c) throw new UsageError(`the template uses ${token} but no such pod CIDR was given`);
    return formatCIDR(c);
  };
  let out = template
    .replaceAll('"{{ranges}}"', JSON.stringify(cidrs.map((c) => [{ subnet: formatCIDR(c) }])))
    .replaceAll('"{{routes}}"', JSON.stringify(cidrs.map((c) => ({ dst: c.ip.v6 ? "::/0" : "0.0.0.0/0" }))))
    .replaceAll('"{{podCIDRs}}"', JSON.stringify(cidrs.map(formatCIDR)));
  if (out.includes("{{podCIDR}}")) out = out.replaceAll("{{podCIDR}}", text(cidrs[0], "{{podCIDR}}"));
  if (out.includes("{{podCIDRv4}}")) out = out.replaceAll("{{podCIDRv4}}", text(v4, "{{podCIDRv4}}"));
  if (out.includes("{{podCIDRv6}}")) out = out.replaceAll("{{podCIDRv6}}", text(v6, "{{podCIDRv6}}"));
  const left = /\{\{\w*\}\}/.exec(out);
  if (left) throw new UsageError(`the template has an unknown placeholder ${left[0]}`);
  let doc: { name?: unknown; cniVersion?: unknown; plugins?: unknown };
  try {
    doc = JSON.parse(out);
  } catch (e) {
    throw new UsageError(`the rendered conflist is not JSON: ${(e as Error).message}`);
  }
  if (typeof doc.name !== "string" || !Array.isArray(doc.plugins) || doc.plugins.length === 0)
    throw new UsageError('the rendered conflist needs a "name" and a non-empty "plugins" list');
  for (const plugin of doc.plugins as { ipam?: { type?: unknown } }[]) {
    if (plugin?.ipam?.type !== "local-ipam") continue;
    try {
      loadIpamConfig({ ...plugin, name: doc.name, cniVersion: doc.cniVersion }, "");
    } catch (e) {
      if (e instanceof CniError)
        throw new UsageError(`the rendered conflist's local-ipam block does not load: ${e.msg}`);
      throw e;
    }
  }
  return out;
}

/** A JSON value with the offsets of its text: [start, end) of the token or of the whole object or array. */
interface JsonNode {
  start: number;
  end: number;
  value: unknown;
  /** object members, in order */
  members?: [string, JsonNode][];
  items?: JsonNode[];
}

/** Parses JSON keeping where each value is written (strict JSON; throws on anything else). */
export function parseWithOffsets(s: string): JsonNode {
  let i = 0;
  const ws = () => {
    while (i < s.length && " \t\n\r".includes(s[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i}`);
  };
  const string = (): JsonNode => {
    const start = i;
    if (s[i] !== '"') fail("expected a string");
    i++;
    while (i < s.length && s[i] !== '"') i += s[i] === "\\" ? 2 : 1;
    if (i >= s.length) fail("unterminated string");
    i++;
    return { start, end: i, value: JSON.parse(s.slice(start, i)) };
  };
  const value = (): JsonNode => {
    ws();
    const start = i;
    const c = s[i];
    if (c === "{") {
      i++;
      const members: [string, JsonNode][] = [];
      ws();
      if (s[i] === "}") return { start, end: ++i, value: {}, members };
      for (;;) {
        ws();
        const key = string().value as string;
        ws();
        if (s[i++] !== ":") fail("expected ':'");
        members.push([key, value()]);
        ws();
        const next = s[i++];
        if (next === "}") break;
        if (next !== ",") fail("expected ',' or '}'");
      }
      return { start, end: i, value: Object.fromEntries(members.map(([k, v]) => [k, v.value])), members };
    }
    if (c === "[") {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (s[i] === "]") return { start, end: ++i, value: [], items };
      for (;;) {
        items.push(value());
        ws();
        const next = s[i++];
        if (next === "]") break;
        if (next !== ",") fail("expected ',' or ']'");
      }
      return { start, end: i, value: items.map((n) => n.value), items };
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(s.slice(i, i + 64));
    if (!m) fail("unexpected character");
    i += m![0].length;
    return { start, end: i, value: JSON.parse(m![0]) };
  };
  const root = value();
  ws();
  if (i !== s.length) fail("trailing data");
  return root;
}

const member = (n: JsonNode | undefined, key: string) => n?.members?.find(([k]) => k === key)?.[1];

/** Where the IPAM types of a .conf or .conflist are written: the `type` of every plugin's `ipam` block. */
export function ipamTypeNodes(root: JsonNode): JsonNode[] {
  const plugins = member(root, "plugins")?.items ?? [root];
  return plugins
    .map((p) => member(member(p, "ipam"), "type"))
    .filter((n): n is JsonNode => n !== undefined && typeof n.value === "string");
}
