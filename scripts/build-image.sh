#!/usr/bin/env bash
# scripts/build-image.sh (run by `./build.sh image`, after the plugin and the agent are built)
#
# Builds the OCI image offline, from files of this build only (no registry, no base image):
#   /usr/local/bin/local-ipam        the static plugin and CLI (the agent installs it onto the node)
#   /usr/local/bin/local-ipam-agent  the agent's script
#   /usr/local/bin/node              this machine's Node.js, stripped, with the shared libraries ldd names
# The root file system is packed reproducibly (sorted names, mtime 0, uid/gid 0), imported with `podman import`
# and saved as dist/local-ipam-image.tar (OCI archive), tagged localhost/local-ipam:<version>.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
tag="localhost/local-ipam:$version"
out=dist/local-ipam-image.tar

for f in dist/local-ipam dist/local-ipam-agent; do [ -f "$f" ] || { echo "$f is missing: run ./build.sh" >&2; exit 1; }; done
if ! command -v podman >/dev/null; then
  apt-get install -y --no-install-recommends podman >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends podman >/dev/null; }
fi

work=$(mktemp -d /tmp/local-ipam-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
install -m 0755 dist/local-ipam "$root/usr/local/bin/local-ipam"
install -m 0755 dist/local-ipam-agent "$root/usr/local/bin/local-ipam-agent"
node_bin=$(readlink -f "$(command -v node)")
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
strip "$root/usr/local/bin/node"
# the shared libraries (and the loader) node needs, at the paths it looks for them
ldd "$node_bin" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# for getpwuid and friends: root only
printf 'root:x:0:0:root:/:/usr/local/bin/local-ipam\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .
# node with the V8 flags of the agent's own first line (#!/usr/bin/env -S node FLAGS)
read -r -a flags <<<"$(head -1 dist/local-ipam-agent | sed -n 's|^#!/usr/bin/env -S node ||p')"
entrypoint=$(printf '"%s", ' /usr/local/bin/node "${flags[@]}")
podman import --quiet \
  --change "ENTRYPOINT [${entrypoint}\"/usr/local/bin/local-ipam-agent\"]" \
  --change "LABEL org.opencontainers.image.title=local-ipam org.opencontainers.image.version=$version" \
  "$work/rootfs.tar" "$tag" >/dev/null
rm -f "$out"
podman save --quiet --format oci-archive -o "$out" "$tag"
size=$(stat -c %s "$out")
gz=$(gzip -c "$out" | wc -c)
echo "built $out ($tag): $((size / 1024 / 1024)) MiB, $((gz / 1024 / 1024)) MiB gzipped"
