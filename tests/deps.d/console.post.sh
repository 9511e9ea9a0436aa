# After apt: the npm packages the console bundles (xterm.js and noVNC, read by
# crates/console/build.rs) and its browser tests use (playwright-core), and a running
# libvirtd for the qemu:///system test and a journald for the logs tests (no systemd
# here to start them).
# Re-run npm only when the lock file changed since the last install.
console_web=crates/console/web
if [ ! -e "$console_web/node_modules/.package-lock.json" ] ||
    [ "$console_web/package-lock.json" -nt "$console_web/node_modules/.package-lock.json" ]; then
    echo "deps: npm ci in $console_web" >&2
    (cd "$console_web" && npm ci --no-audit --no-fund --loglevel=error)
fi
# noVNC's RFB class as one script (esbuild, npm run bundle) for build.rs to copy:
# made again when the packages, the entry or its command changed since the last one.
novnc_js=$console_web/dist/novnc.js
if [ ! -e "$novnc_js" ] ||
    [ "$console_web/node_modules/.package-lock.json" -nt "$novnc_js" ] ||
    [ "$console_web/package.json" -nt "$novnc_js" ] ||
    [ "$console_web/src/novnc.mjs" -nt "$novnc_js" ]; then
    echo "deps: bundling noVNC into $novnc_js" >&2
    (cd "$console_web" && npm run --silent bundle)
fi
unset novnc_js
unset console_web
if [ "$(id -u)" -eq 0 ] && command -v libvirtd >/dev/null 2>&1; then
    mkdir -p /var/log/libvirt
    pgrep -x virtlogd >/dev/null || virtlogd -d
    if ! pgrep -x libvirtd >/dev/null; then
        echo "deps: starting libvirtd" >&2
        libvirtd -d
        for _ in $(seq 50); do
            [ -S /run/libvirt/libvirt-sock ] && break
            sleep 0.1
        done
    fi
fi
# A socket left behind by a journald that was stopped does not count: look for the process.
if [ "$(id -u)" -eq 0 ] && ! pgrep -x systemd-journal >/dev/null && [ -x /lib/systemd/systemd-journald ]; then
    echo "deps: starting systemd-journald" >&2
    /lib/systemd/systemd-journald >/dev/null 2>&1 &
    sleep 0.2
    for _ in $(seq 50); do
        [ -S /run/systemd/journal/socket ] && break
        sleep 0.1
    done
fi
