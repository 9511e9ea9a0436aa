#!/bin/bash
# hvnode-layer: on a node installed with the plain layout (autopart
# --type=plain) the root partition holds folders, one per layer; the kernel
# argument hvnode.layer=NAME names the one to boot. Included when the image
# asks for it (add_dracutmodules), never by host-only detection.

check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

install() {
    inst_script "$moddir/hvnode-layer-root.sh" /usr/bin/hvnode-layer-root
    inst_simple "$moddir/hvnode-layer-root.service" \
        "$systemdsystemunitdir/hvnode-layer-root.service"
    inst_multiple mount mkdir
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target hvnode-layer-root.service
    # dracut's btrfs module loads btrfs (and raid6's and xor's benchmarks)
    # first thing on every boot (rd.driver.pre=btrfs), for machines too
    # slow to load it when a btrfs device appears. A node's btrfs root is
    # mounted after udev has seen its device, which loads the module.
    rm -f -- "${initdir}/etc/cmdline.d/00-btrfs.conf"
}
