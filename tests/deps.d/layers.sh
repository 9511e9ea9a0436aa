# The layer store's host-side tests (btrfs on loop devices) and the
# installer's (partition tables, file systems).
need_apt btrfs-progs xfsprogs gdisk attr util-linux
