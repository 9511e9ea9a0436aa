# Needs of the console, agent and hostinfo tests (sourced by tests/deps.sh).
# Build: libvirt and PAM headers; pam-sys generates its bindings with libclang.
need_apt pkg-config libvirt-dev libpam0g-dev libclang-dev
# Run time: lsblk (util-linux), ip (iproute2), lvs (lvm2), runuser for the terminal, passwd for the
# PAM test user (openssl hashes its password), libvirt's client library (the qemu:///system
# test sets up its guest with it; the console itself speaks libvirtd's protocol).
need_apt passwd libvirt0
# gpasswd takes a test user out of its admin group again (tests/admin_access.rs).
need_prog passwd gpasswd
# sudo decides administrative access (sudo -n -l -U USER); the tests run it against
# their own sudoers drop-in, checked with visudo, also within the agent unit's
# capabilities (setpriv).
need_prog sudo sudo visudo
need_prog util-linux lsblk runuser setpriv
need_prog iproute2 ip
need_prog openssl openssl
need_prog curl curl
need_prog gzip gzip
need_prog lvm2 lvs
need_prog openssh-client ssh-keygen
# The real path: libvirtd and qemu (TCG) for the qemu:///system test (pgrep from
# procps tells whether libvirtd already runs).
need_apt libvirt-daemon-system
need_prog libvirt-daemon libvirtd virtlogd
need_prog procps pgrep
# The journal for the logs tests: journalctl and a journald started without systemd.
need_prog systemd journalctl
# The browser tests: Debian's headless Chromium driven by playwright-core from npm.
need_prog chromium chromium
# npm for xterm.js and playwright-core; a Node.js from elsewhere brings its own npm.
command -v npm >/dev/null 2>&1 || need_apt npm
PROGRAMS+=("node:nodejs" "npm:npm")
