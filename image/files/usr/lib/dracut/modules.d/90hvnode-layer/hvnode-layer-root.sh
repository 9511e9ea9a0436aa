#!/bin/sh
# hvnode-layer: /sysroot holds the root partition of a plain-layout node
# (hvnode/bases/NVR, hvnode/layers/NVR+N). Put the partition, read-only, at
# the layer's /sysroot (where nodectl reads the store), then the layer with
# it over /sysroot: systemd switches root into the layer.
set -eu
layer=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hvnode.layer=*) layer="${arg#hvnode.layer=}" ;;
    esac
done
[ -n "$layer" ] || exit 0
case "$layer" in
*/* | .*)
    echo "hvnode-layer: hvnode.layer=$layer is not a layer name" >&2
    exit 1
    ;;
esac
dir="/sysroot/hvnode/layers/$layer"
if [ ! -d "$dir/sysroot" ]; then
    echo "hvnode-layer: the root partition has no layer $layer (hvnode/layers/$layer/sysroot is missing); choose another entry in the boot menu" >&2
    exit 1
fi
# Binds of a shared mount into itself would propagate back into it.
mount --make-private /sysroot
mount --bind /sysroot "$dir/sysroot"
mount -o remount,bind,ro "$dir/sysroot"
mount --rbind "$dir" /sysroot
echo "hvnode-layer: root is the layer $layer"
