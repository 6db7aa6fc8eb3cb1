// The build stamps the version and the git description of the source in (esbuild --define); tests and tsc see
// the fallbacks.
declare const __LOCAL_IPAM_VERSION__: string | undefined;
declare const __LOCAL_IPAM_BUILD__: string | undefined;
export const VERSION = typeof __LOCAL_IPAM_VERSION__ === "string" ? __LOCAL_IPAM_VERSION__ : "dev";
export const BUILD = typeof __LOCAL_IPAM_BUILD__ === "string" ? __LOCAL_IPAM_BUILD__ : "source";
