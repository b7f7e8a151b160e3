// txfs at boot, driven by the kernel command line:
//
//   txfs=DISK        mount the txfs volume on block device DISK (replaying its log) and print
//                    what it holds; then, in this order, any of:
//   txfs_fsck        online fsck of the mounted volume (fails the boot on any error)
//   txfs_verify      check that the installed update (fs/txfs/update.h) is whole: all or nothing
//   txfs_demo        install the next update version in one transaction, printing progress
//   txfs_update=N    install N more versions, one transaction each (0 or `loop`: until killed)
//   txfs_ls          list every file and registry value
// and finally unmount cleanly. The kernel then exits (init/kernel_main.cpp): status 0 only if every
// step succeeded.
#pragma once

#include "kernel/cmdline.h"

namespace hvkvm::guest::fs {

// True if the command line names no txfs volume, or if everything it asked for succeeded.
bool run_txfs_boot_commands(const Cmdline& cmdline);

}  // namespace hvkvm::guest::fs
