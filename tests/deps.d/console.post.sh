# After apt: the npm packages the console bundles (xterm.js, read by
# crates/console/build.rs) and its browser tests use (playwright-core).
# Re-run only when the lock file changed since the last install.
console_web=crates/console/web
if [ ! -e "$console_web/node_modules/.package-lock.json" ] ||
    [ "$console_web/package-lock.json" -nt "$console_web/node_modules/.package-lock.json" ]; then
    echo "deps: npm ci in $console_web" >&2
    (cd "$console_web" && npm ci --no-audit --no-fund --loglevel=error)
fi
unset console_web
