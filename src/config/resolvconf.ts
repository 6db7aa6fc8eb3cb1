// host-local's parseResolvConf: the DNS part of an ADD result, from resolv.conf text, with Go's TrimSpace and
// Fields (Go's white space, not JavaScript's).

import type { Dns } from "../cni/result.js";
import { goFields, goTrim, utf8Length } from "../go/strings.js";

/** bufio.Scanner's default limit: host-local fails on a longer line ("token too long"). */
const MAX_LINE = 64 * 1024;

/** The Dns, or the message host-local fails with. */
export function parseResolvConf(text: string): Dns | { error: string } {
  const dns: Dns = {};
  for (const raw of text.split("\n")) {
    if (raw.length >= MAX_LINE / 4 && utf8Length(raw) >= MAX_LINE) return { error: "bufio.Scanner: token too long" };
    const line = goTrim(raw);
    if (line === "" || line[0] === "#" || line[0] === ";") continue;
    const fields = goFields(line);
    if (fields.length < 2) continue;
    const [key, first] = fields as [string, string];
    switch (key) {
      case "nameserver":
        (dns.nameservers ??= []).push(first);
        break;
      case "domain":
        dns.domain = first;
        break;
      case "search":
        (dns.search ??= []).push(...fields.slice(1));
        break;
      case "options":
        (dns.options ??= []).push(...fields.slice(1));
        break;
    }
  }
  return dns;
}
