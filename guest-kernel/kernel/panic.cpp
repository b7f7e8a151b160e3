#include "kernel/panic.h"

#include <stdarg.h>

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/console.h"
#include "kernel/host_interface.h"
#include "lib/format.h"

namespace hvkvm::guest {

void panic(const char* message_format, ...) {
    platform::disable_interrupts();
    PerCpu& cpu = this_cpu();
    char message[abi::kCrashMessageMax];
    va_list arguments;
    va_start(arguments, message_format);
    format_v(message, sizeof message, message_format, arguments);
    va_end(arguments);

    kprint_unlocked("\n*** kernel panic on vCPU %u: %s\n", cpu.index, message);
    if (claim_crash_record()) {
        abi::CrashRecord& crash = guest_report().crash;
        crash.cpu = cpu.index;
        crash.rip = reinterpret_cast<uint64_t>(__builtin_return_address(0));
        format(crash.message, sizeof crash.message, "%s", message);
        crash.kind = abi::CrashKind::kPanic;
        guest_report().magic = abi::kGuestReportMagic;
    }
    exit_to_vmm(abi::GuestExitCode::kCrash);
}

}  // namespace hvkvm::guest
