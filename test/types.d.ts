// parse-prometheus-text-format ships no types: what the CLI tests use of it.
declare module "parse-prometheus-text-format" {
  interface Metric {
    labels?: Record<string, string>;
    value?: string;
  }
  interface Family {
    name: string;
    help: string;
    type: string;
    metrics: Metric[];
  }
  export default function parse(text: string): Family[];
}
