// host-local's parseResolvConf: the DNS part of an ADD result, from resolv.conf text.
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line[0] === "#" || line[0] === ";") continue;
    const fields = line.split(/\s+/);
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
