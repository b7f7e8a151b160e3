#include "kernel/console.h"

#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/serial_port.h"
#include "hv/hypervisor.h"
#include "kernel/sync/spinlock.h"
#include "lib/format.h"

namespace hvkvm::guest {
namespace {

constexpr size_t kLineBuffer = 512;

// The console device and its lock: one per VM, shared by all CPUs. The lock is a TasLock, not
// the kernel's SpinLock: the console is used from the first instructions on, before (and while)
// the spinlock algorithm is chosen.
struct Console {
    SerialPort uart{0x3f8};
    TasLock lock;
    bool messages = false;  // send text as hypervisor messages instead of through the UART
    ConsoleLineObserver observer = nullptr;  // also gets every write (atomic: set from any CPU)
} console;

// Once the hypervisor interface is up, console text goes to the VMM as messages: one exit per
// 240 bytes instead of one per character through the UART.
void write_to_device(const char* text, size_t length) {
    while (console.messages && length) {
        const auto chunk = static_cast<uint32_t>(length < abi::hv::kMessagePayloadMax ? length : abi::hv::kMessagePayloadMax);
        if (hv::post_message(abi::hv::kConsoleConnectionId, abi::hv::kMessageTypeConsoleText, text, chunk) !=
            abi::hv::Status::kSuccess) {
            console.messages = false;  // the VMM refused: keep the text, use the UART from now on
            break;
        }
        text += chunk;
        length -= chunk;
    }
    if (length) console.uart.write(text, length);
}

}  // namespace

void console_init() { console.uart.init(); }

void console_use_hypervisor_messages() { console.messages = hv::available(); }

void console_write(const char* text, size_t length) {
    platform::InterruptsDisabled no_interrupts;
    console.lock.lock();
    write_to_device(text, length);
    console.lock.unlock();
    if (ConsoleLineObserver observer = __atomic_load_n(&console.observer, __ATOMIC_ACQUIRE)) observer(text, length);
}

void console_set_line_observer(ConsoleLineObserver observer) {
    __atomic_store_n(&console.observer, observer, __ATOMIC_RELEASE);
}

void kprint_v(const char* format, va_list arguments) {
    char line[kLineBuffer];
    size_t length = format_v(line, sizeof line, format, arguments);
    if (length >= sizeof line) length = sizeof line - 1;
    console_write(line, length);
}

void kprint(const char* format, ...) {
    va_list arguments;
    va_start(arguments, format);
    kprint_v(format, arguments);
    va_end(arguments);
}

void kprint_unlocked(const char* format, ...) {
    // The crash path: straight to the UART, without the lock or a hypercall (either may be what
    // failed).
    char line[kLineBuffer];
    va_list arguments;
    va_start(arguments, format);
    size_t length = format_v(line, sizeof line, format, arguments);
    va_end(arguments);
    if (length >= sizeof line) length = sizeof line - 1;
    console.uart.write(line, length);
}

}  // namespace hvkvm::guest
