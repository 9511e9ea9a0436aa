# The image builder's tools, and qemu/OVMF for the boot tests.
need_prog mmdebstrap mmdebstrap
need_prog squashfs-tools mksquashfs unsquashfs
need_prog xorriso xorriso
need_prog grub-common grub-mkimage grub-editenv
need_prog mtools mcopy mmd
need_prog dosfstools mkfs.vfat
need_prog e2fsprogs mkfs.ext4 debugfs e2fsck resize2fs tune2fs
need_prog policycoreutils setfiles
# The image's own SELinux modules (image/selinux) are compiled with the
# reference policy's development files.
need_apt selinux-policy-dev
need_prog checkpolicy checkmodule
need_prog semodule-utils semodule_package
need_prog m4 m4
need_prog make make
need_prog qemu-system-x86 qemu-system-x86_64
need_prog qemu-utils qemu-img
# grub-pc-bin: the ISO's BIOS grub. grub-efi-amd64-bin: the unsigned grub
# the Secure Boot test shows refused (the ISO's UEFI loaders are the
# image's signed ones). ovmf: OVMF_CODE_4M.secboot.fd and OVMF_VARS_4M.ms.fd
# for Secure Boot.
need_apt grub-pc-bin grub-efi-amd64-bin arch-test ovmf
