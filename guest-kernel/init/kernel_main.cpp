#include "init/kernel_main.h"

#include "arch/x86_64/cpu.h"
#include "bench/spinlock_bench.h"
#include "drivers/vmbus/vmbus.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/cmdline.h"
#include "kernel/console.h"
#include "kernel/diagnostics.h"
#include "kernel/host_interface.h"
#include "kernel/sync/cross_call.h"
#include "kernel/test/ktest.h"

namespace hvkvm::guest {
namespace {

constexpr const char* kKernelVersion = "0.1.0";

void print_banner(const abi::BootInfo& boot_info, const Cmdline& cmdline) {
    const platform::Kind kind = platform::kind();
    // The vCPUs counted by the kernel itself (each marked itself online), not the configured number.
    kprint("hvkvm guest kernel %s on %s platform (%s), %u vCPU(s) online, %lu MiB RAM\n", kKernelVersion,
           platform::name(kind),
           kind == platform::Kind::kPvm ? "converted: native-speed supervisor mode" : "unconverted",
           smp::online_count(), boot_info.memory_bytes >> 20);
    if (!cmdline.text().empty())
        kprint("cmdline: %.*s\n", static_cast<int>(cmdline.text().size()), cmdline.text().data());
}

// The kernel's last act: leave VMBus the orderly way (the host closes its side), then report.
[[noreturn]] void finish(bool success) {
    vmbus::stop();
    exit_to_vmm(success ? abi::GuestExitCode::kSuccess : abi::GuestExitCode::kFailure);
}

}  // namespace

void kernel_main(const abi::BootInfo& boot_info) {
    boot_milestone(abi::BootPhase::kKernelMain);
    const Cmdline cmdline(StringView(reinterpret_cast<const char*>(boot_info.cmdline_gpa), boot_info.cmdline_length));
    print_banner(boot_info, cmdline);

    bool found = false;
    const StringView crash_kind = cmdline.value("crash", &found);
    if (found) trigger_crash(crash_kind);  // does not return
    vmbus::start();  // without a VMBus host the kernel carries on without it
    const StringView test_glob = cmdline.value("test", &found);
    if (found) finish(ktest::run_matching(test_glob.data(), static_cast<uint32_t>(test_glob.size())));
    const StringView bench = cmdline.value("bench", &found);
    if (found) {
        bool ok = false;
        if (bench == "spinlock") ok = bench::run_spinlock_benchmark();
        else kprint("bench=%.*s: unknown benchmark (known: spinlock)\n", static_cast<int>(bench.size()), bench.data());
        finish(ok);
    }
    if (cmdline.has("hang")) {
        // For tests of the VMM's stop path: a vCPU halted with interrupts off never wakes.
        kprint("hang: halting with interrupts disabled until the VMM stops the VM\n");
        platform::disable_interrupts();
        x86::halt_forever();
    }
    if (cmdline.has("selftest")) finish(run_selftest());

    kprint("nothing more to do: exiting\n");
    finish(true);
}

}  // namespace hvkvm::guest
