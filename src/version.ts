// The build stamps the version in (esbuild --define); tests and tsc see the fallback.
declare const __LOCAL_IPAM_VERSION__: string | undefined;
export const VERSION = typeof __LOCAL_IPAM_VERSION__ === "string" ? __LOCAL_IPAM_VERSION__ : "dev";
