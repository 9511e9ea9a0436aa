# Needs of the console, agent and hostinfo tests (sourced by tests/deps.sh).
# Build: libvirt and PAM headers; pam-sys generates its bindings with libclang.
need_apt pkg-config libvirt-dev libpam0g-dev libclang-dev
# Run time: lsblk (util-linux), ip (iproute2), lvs (lvm2), runuser for the terminal, passwd for the
# PAM test user (openssl hashes its password), libvirt's client library (the qemu:///system
# test sets up its guest with it; the console itself speaks libvirtd's protocol).
need_apt util-linux iproute2 passwd openssl libvirt0 lvm2
# The real path: libvirtd and qemu (TCG) for the qemu:///system test (pgrep from
# procps tells whether libvirtd already runs).
need_apt libvirt-daemon-system qemu-system-x86 procps
# The journal for the logs tests: journalctl and a journald started without systemd.
need_apt systemd
# The browser tests: Debian's headless Chromium driven by playwright-core from npm.
need_apt chromium
# npm for xterm.js and playwright-core; a Node.js from elsewhere brings its own npm.
command -v npm >/dev/null 2>&1 || need_apt npm
