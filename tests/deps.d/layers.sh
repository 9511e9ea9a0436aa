# The layer store's host-side tests (btrfs and XFS on loop devices) and the
# installer's (partition tables, file systems, udev settling after a change).
need_prog btrfs-progs mkfs.btrfs btrfs
need_prog xfsprogs mkfs.xfs
need_prog gdisk sgdisk
need_prog attr getfattr setfattr
need_prog util-linux lsblk losetup findmnt wipefs partx
need_prog mount mount umount
need_prog nftables nft
need_prog udev udevadm
# grub's own checks of what hvnode writes for it: the boot menu's syntax
# (layers) and the boot loader password's hash (installer).
need_prog grub-common grub-script-check grub-mkpasswd-pbkdf2
