# The image builder's tools, and qemu/OVMF for the boot tests.
need_apt mmdebstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin grub-common \
    mtools dosfstools e2fsprogs policycoreutils arch-test \
    qemu-system-x86 qemu-utils ovmf
