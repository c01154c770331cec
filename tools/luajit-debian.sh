#!/bin/sh
# Debian's own LuaJIT (packages luajit and libluajit-5.1-2), unpacked under
# build/luajit-debian/ without installing it: it conflicts with OpenResty's
# luajit2, the LuaJIT `make LUA=luajit` builds against and Debian's nginx
# links. spec/luajit_debian_spec.lua runs the module built for luajit2 in
# it.
#
#   sh tools/luajit-debian.sh    (make luajit-debian)
#
# Leaves build/luajit-debian/luajit, which runs the unpacked interpreter
# with the unpacked library first on LD_LIBRARY_PATH (Debian 12's luajit
# has the VM linked in, so only the interpreter counts there), and prints
# its path. Downloads once; runs `apt-get update` and tries again when the
# download fails and we are root.
# Exit status: 0 ready; 77 when the packages cannot be downloaded (apt's
# message on stderr); 1 when something else fails.
cd "$(dirname "$0")/.." || exit 1
dir=build/luajit-debian
packages="luajit libluajit-5.1-2"
wrapper=$dir/luajit
[ -x "$wrapper" ] && { echo "$wrapper"; exit 0; }

rm -rf "$dir"
mkdir -p "$dir/debs" "$dir/root" || exit 1
sandbox=""
[ "$(id -u)" = 0 ] && sandbox="-o APT::Sandbox::User=root" # root's download dir is not _apt's
download() {
  (cd "$dir/debs" && apt-get download $sandbox $packages) > "$dir/download.log" 2>&1
}
if ! download; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >> "$dir/download.log" 2>&1
    download
  fi || {
    echo "luajit-debian: cannot download $packages:" >&2
    grep -v '^W:' "$dir/download.log" >&2
    exit 77
  }
fi
for deb in "$dir"/debs/*.deb; do
  dpkg -x "$deb" "$dir/root" || exit 1
done
binary=$dir/root/usr/bin/luajit
library=$(find "$dir/root/usr/lib" -name 'libluajit-5.1.so.2' | head -n 1)
[ -x "$binary" ] && [ -n "$library" ] || { echo "luajit-debian: no interpreter or library in the packages" >&2; exit 1; }
root=$(pwd)
cat > "$wrapper" <<WRAPPER
#!/bin/sh
# Debian's luajit, unpacked by tools/luajit-debian.sh, on its own library.
LD_LIBRARY_PATH="$root/$(dirname "$library")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/$binary" "\$@"
WRAPPER
chmod +x "$wrapper"
echo "$wrapper"
