#include "guest.h"

#include <stdarg.h>

#include "cases.h"
#include "hv.h"

// One stack per vCPU; entry.S gives vCPU 0 the first, start requests give each AP its own.
// this_cpu() is the index of the stack the caller runs on.
inline constexpr uint32_t kStackSize = 16384;
extern "C" {
alignas(kStackSize) uint8_t cpu_stacks[hostile::kMaxCpus][kStackSize];
extern char __image_end[];  // linker.ld
}

namespace hostile {
namespace {

constexpr uint32_t kMsrPvmControlPage = 0x4b564d10;  // the PVM host's conversion MSR
constexpr uint16_t kComPort = 0x3f8;
constexpr uint64_t kWindowBase = 512ull << 30;  // PML4 slot 1: the physical windows (one 2 MiB page per CPU)
constexpr uint64_t kLargePage = abi::kLargePageSize;

struct TrapFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

struct FaultFixup {
    uint64_t fault_rip;
    uint64_t resume_rip;
};

struct CpuState {
    uint32_t fault_vector = kNoFault;
    // probe_call: where to resume (and with which stack) when anything faults.
    uint64_t catch_rip = 0;
    uint64_t catch_rsp = 0;
    CpuWork work = nullptr;
    uint32_t running = 0;
};

struct __attribute__((packed)) DescriptorPointer {
    uint16_t limit;
    uint64_t base;
};

// Shared by all vCPUs: the GDT keeps the boot selectors (0x08 code, 0x10 data) and adds the
// user-mode ones PVM hosts may show in exception frames (0x2b, 0x33).
constexpr uint64_t kGdt[7] = {0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0, 0, 0x00cff2000000ffff, 0x00affa000000ffff};
alignas(16) uint64_t idt[512];
alignas(4096) uint8_t pvm_control_pages[kMaxCpus][kPageSize];
alignas(4096) uint64_t window_pdpt[512];
alignas(4096) uint64_t window_pd[512];

CpuState cpus[kMaxCpus];
const abi::BootInfo* the_boot_info;
uint32_t console_lock;
uint32_t failed_checks;
uint32_t cpus_running;
abi::VcpuStartRequest ap_requests[kMaxCpus];

extern "C" char trap_stubs[], ap_start[];
extern "C" const FaultFixup __fixups_start[], __fixups_end[];

CpuState& current() { return cpus[this_cpu()]; }

void lock_console() {
    for (uint64_t i = 0; __atomic_exchange_n(&console_lock, 1u, __ATOMIC_ACQUIRE); ++i) spin_wait_hint(i);
}
void unlock_console() { __atomic_store_n(&console_lock, 0u, __ATOMIC_RELEASE); }

// --- formatting --------------------------------------------------------------------------------
struct LineBuffer {
    char text[240];
    size_t length = 0;
    void put(char c) {
        if (length < sizeof text) text[length++] = c;
    }
    void put(const char* s) {
        while (*s) put(*s++);
    }
    void number(uint64_t value, uint32_t base) {
        char digits[24];
        size_t count = 0;
        do digits[count++] = "0123456789abcdef"[value % base];
        while ((value /= base) != 0);
        while (count) put(digits[--count]);
    }
};

void format(LineBuffer& line, const char* format, va_list arguments) {
    for (; *format; ++format) {
        if (*format != '%') {
            line.put(*format);
            continue;
        }
        switch (*++format) {
        case 's': line.put(va_arg(arguments, const char*)); break;
        case 'u': line.number(va_arg(arguments, uint64_t), 10); break;
        case 'x': line.put("0x"), line.number(va_arg(arguments, uint64_t), 16); break;
        case 'c': line.put(static_cast<char>(va_arg(arguments, int))); break;
        case '\0': return;
        default: line.put(*format); break;
        }
    }
}

void emit(const LineBuffer& line) {
    lock_console();
    for (const char* s = "hostile: "; *s; ++s) outb(kComPort, static_cast<uint8_t>(*s));
    for (size_t i = 0; i < line.length; ++i) outb(kComPort, static_cast<uint8_t>(line.text[i]));
    outb(kComPort, '\n');
    unlock_console();
}

// --- CPU set-up --------------------------------------------------------------------------------
void fill_idt() {
    for (uint32_t vector = 0; vector < 256; ++vector) {
        const auto handler = reinterpret_cast<uint64_t>(trap_stubs + vector * 16);
        idt[2 * vector] = (handler & 0xffff) | (uint64_t{abi::kBootCodeSelector} << 16) | (0x8eull << 40) |
                          ((handler >> 16 & 0xffff) << 48);
        idt[2 * vector + 1] = handler >> 32;
    }
}

// Runs in KVM's instruction emulator on PVM hosts until the wrmsr: kept short.
void init_cpu(uint32_t index) {
    const DescriptorPointer gdt{sizeof kGdt - 1, reinterpret_cast<uint64_t>(kGdt)};
    const DescriptorPointer idt_pointer{sizeof idt - 1, reinterpret_cast<uint64_t>(idt)};
    __asm__ volatile("lgdt %0" : : "m"(gdt));
    __asm__ volatile("lidt %0" : : "m"(idt_pointer));
    if (the_boot_info->flags & abi::kBootFlagUsePvm) {
        // Identity-mapped, so the page's address is its GPA; VIF (byte 0) stays 0: no interrupts.
        const auto page = reinterpret_cast<uint64_t>(pvm_control_pages[index]);
        __asm__ volatile("wrmsr" : : "c"(kMsrPvmControlPage), "a"(static_cast<uint32_t>(page)),
                         "d"(static_cast<uint32_t>(page >> 32)) : "memory");
    }
}

const FaultFixup* find_fixup(uint64_t rip) {
    for (const FaultFixup* fixup = __fixups_start; fixup != __fixups_end; ++fixup)
        if (fixup->fault_rip == rip) return fixup;
    return nullptr;
}

// An exception nobody expected: report it the way a real kernel does (crash record + exit 2).
[[noreturn]] void crash(const TrapFrame& frame) {
    auto& report = *reinterpret_cast<abi::GuestReport*>(abi::kGuestReportGpa);
    report.magic = abi::kGuestReportMagic;
    report.crash.kind = abi::CrashKind::kException;
    report.crash.cpu = this_cpu();
    report.crash.vector = static_cast<uint32_t>(frame.vector);
    report.crash.error_code = frame.error_code;
    report.crash.rip = frame.rip;
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    report.crash.cr2 = cr2;
    report.crash.rflags = frame.rflags;
    const char message[] = "hostile guest: unexpected exception";
    memcpy(report.crash.message, message, sizeof message);
    exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kCrash));
}

}  // namespace

// --- entry points (entry.S) -------------------------------------------------------------------
extern "C" [[noreturn]] void boot_main(const abi::BootInfo* info, uint64_t) {
    the_boot_info = info;
    init_cpu(0);
    fill_idt();
    atomic_store(cpus[0].running, 1u);
    cpus_running = 1;
    const char* name = command_line_value("case", "");
    const Case* selected = find_case(name);
    if (!selected) {
        say("no case named \"%s\" (kernel.cmdline case=NAME)", name);
        exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kFailure));
    }
    say("case %s on %u vCPU(s)%s", selected->name, uint64_t{vcpu_count()},
        (info->flags & abi::kBootFlagUsePvm) ? ", PVM mode" : "");
    selected->run();
    say("case %s: %s", selected->name, any_check_failed() ? "FAILED" : "passed");
    exit_vm(any_check_failed() ? static_cast<uint32_t>(abi::GuestExitCode::kFailure)
                               : static_cast<uint32_t>(abi::GuestExitCode::kSuccess));
}

extern "C" [[noreturn]] void ap_main(uint64_t, uint64_t index) {
    init_cpu(static_cast<uint32_t>(index));
    CpuState& cpu = cpus[index];
    atomic_add(cpus_running, 1u);
    atomic_store(cpu.running, 1u);
    if (CpuWork work = atomic_load(cpu.work)) work(static_cast<uint32_t>(index));
    halt_forever();
}

extern "C" void handle_trap(TrapFrame* frame) {
    CpuState& cpu = current();
    if (frame->vector < 32) {
        if (const FaultFixup* fixup = find_fixup(frame->rip)) {
            cpu.fault_vector = static_cast<uint32_t>(frame->vector);
            frame->rip = fixup->resume_rip;
            return;
        }
        if (cpu.catch_rip) {
            cpu.fault_vector = static_cast<uint32_t>(frame->vector);
            frame->rip = cpu.catch_rip;
            frame->rsp = cpu.catch_rsp;
            cpu.catch_rip = 0;
            return;
        }
        crash(*frame);
    }
    cpu.fault_vector = static_cast<uint32_t>(frame->vector);  // a software interrupt (int n)
}

// --- machine -------------------------------------------------------------------------------------
[[noreturn]] void halt_forever() {
    for (;;) __asm__ volatile("hlt");
}

const abi::BootInfo& boot_info() { return *the_boot_info; }
uint32_t vcpu_count() { return the_boot_info->vcpu_count; }
uint64_t tsc_khz() { return the_boot_info->tsc_khz; }

uint32_t this_cpu() {
    uint64_t rsp;
    __asm__("mov %%rsp, %0" : "=r"(rsp));
    const uint64_t offset = rsp - reinterpret_cast<uint64_t>(cpu_stacks);
    const uint64_t index = offset / kStackSize;
    return index < kMaxCpus ? static_cast<uint32_t>(index) : 0;
}

uint64_t ram_end_below_hole() {
    const uint64_t memory = the_boot_info->memory_bytes;
    return memory < abi::kMmioHoleStart ? memory : abi::kMmioHoleStart;
}

Scratch scratch_memory() {
    const uint64_t image_end = reinterpret_cast<uint64_t>(__image_end);
    return {((image_end + kLargePage - 1) & ~(kLargePage - 1)) + 2 * kLargePage, ram_end_below_hole()};
}

const char* command_line_value(const char* key, const char* fallback) {
    static char value[64];
    const char* line = reinterpret_cast<const char*>(the_boot_info->cmdline_gpa);
    size_t key_length = 0;
    while (key[key_length]) ++key_length;
    for (const char* word = line; *word;) {
        while (*word == ' ') ++word;
        if (!memcmp(word, key, key_length) && word[key_length] == '=') {
            const char* start = word + key_length + 1;
            size_t length = 0;
            while (start[length] && start[length] != ' ' && length + 1 < sizeof value) ++length;
            memcpy(value, start, length);
            value[length] = '\0';
            return value;
        }
        while (*word && *word != ' ') ++word;
    }
    return fallback;
}

bool command_line_equals(const char* key, const char* value) { return strings_equal(command_line_value(key, ""), value); }

uint64_t command_line_number(const char* key, uint64_t fallback) {
    const char* text = command_line_value(key, nullptr);
    if (!text || !*text) return fallback;
    uint64_t value = 0;
    for (; *text >= '0' && *text <= '9'; ++text) value = value * 10 + static_cast<uint64_t>(*text - '0');
    return value;
}

// --- console and verdicts ----------------------------------------------------------------------
void say(const char* text, ...) {
    LineBuffer line;
    va_list arguments;
    va_start(arguments, text);
    format(line, text, arguments);
    va_end(arguments);
    emit(line);
}

void reset_console() {
    outb(kComPort + 3, 0x03);  // line control: 8N1, divisor latch off
    outb(kComPort + 4, 0x00);  // modem control: loopback off
    outb(kComPort + 1, 0x00);  // no interrupts
}

void check(bool ok, const char* text, ...) {
    if (ok) return;
    atomic_add(failed_checks, 1u);
    LineBuffer line;
    line.put("FAIL: ");
    va_list arguments;
    va_start(arguments, text);
    format(line, text, arguments);
    va_end(arguments);
    emit(line);
}

bool any_check_failed() { return atomic_load(failed_checks) != 0; }

[[noreturn]] void exit_vm(uint32_t code) {
    outl(abi::kDebugExitPort, code);
    halt_forever();
}

// --- fault probes ------------------------------------------------------------------------------
// Each probed instruction is labelled 1: with its successor 2:, recorded in .fixups; the trap
// handler resumes at 2: and leaves the vector in the CPU's fault_vector.
#define PROBE_FIXUP HOSTILE_FIXUP

void begin_probe() { current().fault_vector = kNoFault; }
uint32_t end_probe() { return current().fault_vector; }

uint32_t probe_rdmsr(uint32_t msr, uint64_t& value) {
    CpuState& cpu = current();
    cpu.fault_vector = kNoFault;
    uint32_t low = 0, high = 0;
    __asm__ volatile("1: rdmsr\n2:\n" PROBE_FIXUP : "+a"(low), "+d"(high) : "c"(msr) : "memory");
    value = (uint64_t{high} << 32) | low;
    return cpu.fault_vector;
}

uint32_t probe_wrmsr(uint32_t msr, uint64_t value) {
    CpuState& cpu = current();
    cpu.fault_vector = kNoFault;
    __asm__ volatile("1: wrmsr\n2:\n" PROBE_FIXUP
                     : : "c"(msr), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32)) : "memory");
    return cpu.fault_vector;
}

uint32_t probe_read(uint64_t address, uint32_t size, uint64_t& value) {
    CpuState& cpu = current();
    cpu.fault_vector = kNoFault;
    uint64_t result = ~0ull;
    switch (size) {
    case 1: __asm__ volatile("1: movzbq (%1), %0\n2:\n" PROBE_FIXUP : "+r"(result) : "r"(address) : "memory"); break;
    case 2: __asm__ volatile("1: movzwq (%1), %0\n2:\n" PROBE_FIXUP : "+r"(result) : "r"(address) : "memory"); break;
    case 4: __asm__ volatile("1: movl (%1), %k0\n2:\n" PROBE_FIXUP : "+r"(result) : "r"(address) : "memory"); break;
    default: __asm__ volatile("1: movq (%1), %0\n2:\n" PROBE_FIXUP : "+r"(result) : "r"(address) : "memory"); break;
    }
    value = result;
    return cpu.fault_vector;
}

uint32_t probe_write(uint64_t address, uint32_t size, uint64_t value) {
    CpuState& cpu = current();
    cpu.fault_vector = kNoFault;
    switch (size) {
    case 1: __asm__ volatile("1: movb %b0, (%1)\n2:\n" PROBE_FIXUP : : "r"(value), "r"(address) : "memory"); break;
    case 2: __asm__ volatile("1: movw %w0, (%1)\n2:\n" PROBE_FIXUP : : "r"(value), "r"(address) : "memory"); break;
    case 4: __asm__ volatile("1: movl %k0, (%1)\n2:\n" PROBE_FIXUP : : "r"(value), "r"(address) : "memory"); break;
    default: __asm__ volatile("1: movq %0, (%1)\n2:\n" PROBE_FIXUP : : "r"(value), "r"(address) : "memory"); break;
    }
    return cpu.fault_vector;
}

uint32_t probe_call(uint64_t code) {
    CpuState& cpu = current();
    cpu.fault_vector = kNoFault;
    __asm__ volatile(
        "leaq 3f(%%rip), %%rax\n"
        "movq %%rax, %[resume]\n"
        "movq %%rsp, %[stack]\n"
        "call *%[code]\n"
        "3:\n"
        : [resume] "=m"(cpu.catch_rip), [stack] "=m"(cpu.catch_rsp)
        : [code] "r"(code)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "cc", "memory");
    cpu.catch_rip = 0;
    return cpu.fault_vector;
}

uint64_t map_physical_window(uint64_t gpa) {
    constexpr uint64_t kTable = 0x7;                  // present, writable, user (PVM needs U/S=1 everywhere)
    constexpr uint64_t kUncachedLargePage = 0x9f;     // present, writable, user, PWT, PCD, 2 MiB
    auto* pml4 = reinterpret_cast<uint64_t*>(read_cr3() & ~0xfffull);
    if (!(pml4[1] & 1)) {
        window_pdpt[0] = reinterpret_cast<uint64_t>(window_pd) | kTable;
        atomic_store(pml4[1], reinterpret_cast<uint64_t>(window_pdpt) | kTable);
    }
    const uint32_t slot = this_cpu();
    const uint64_t window = kWindowBase + slot * kLargePage;
    atomic_store(window_pd[slot], (gpa & ~(kLargePage - 1)) | kUncachedLargePage);
    __asm__ volatile("invlpg (%0)" : : "r"(window) : "memory");
    return window + (gpa & (kLargePage - 1));
}

// --- other vCPUs -------------------------------------------------------------------------------
abi::VcpuStartRequest make_start_request(uint32_t index, CpuWork work) {
    if (index < kMaxCpus) atomic_store(cpus[index].work, work);
    abi::VcpuStartRequest request{};
    request.vcpu_index = index;
    request.status = abi::VcpuStartStatus::kPending;
    request.rip = reinterpret_cast<uint64_t>(ap_start);
    request.rsp = reinterpret_cast<uint64_t>(cpu_stacks[index < kMaxCpus ? index : 0] + kStackSize);
    request.cr3 = read_cr3();
    request.argument = index;
    return request;
}

abi::VcpuStartStatus start_vcpu(abi::VcpuStartRequest& request, uint32_t index, CpuWork work) {
    request = make_start_request(index, work);
    outl(abi::kStartVcpuPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(&request)));
    return atomic_load(request.status);
}

void start_all_aps(CpuWork work) {
    for (uint32_t index = 1; index < vcpu_count(); ++index) {
        const abi::VcpuStartStatus status = start_vcpu(ap_requests[index], index, work);
        check(status == abi::VcpuStartStatus::kStarted, "start of vCPU %u: status %u", uint64_t{index},
              static_cast<uint64_t>(status));
    }
    for (uint32_t index = 1; index < vcpu_count(); ++index)
        spin_until([&] { return atomic_load(cpus[index].running) != 0; });
}

uint32_t online_cpus() { return atomic_load(cpus_running); }

void Barrier::arrive_and_wait() {
    const uint32_t generation = atomic_load(generation_);
    if (atomic_add(arrived_, 1u) == participants_) {
        atomic_store(arrived_, 0u);
        atomic_add(generation_, 1u);
        return;
    }
    spin_until([&] { return atomic_load(generation_) != generation; });
}

void wait_for_count(const uint32_t& counter, uint32_t target) {
    spin_until([&] { return atomic_load(counter) >= target; });
}

void spin_wait_hint(uint64_t iteration) {
    cpu_relax();
    if (iteration % 256 == 255 && hv::page_enabled()) hv::notify_long_spin_wait(static_cast<uint32_t>(iteration));
}

// --- memory helpers ----------------------------------------------------------------------------
extern "C" void* memcpy(void* destination, const void* source, size_t size) {
    void* result = destination;
    __asm__ volatile("rep movsb" : "+D"(destination), "+S"(source), "+c"(size) : : "memory");
    return result;
}

extern "C" void* memset(void* destination, int value, size_t size) {
    void* result = destination;
    __asm__ volatile("rep stosb" : "+D"(destination), "+c"(size) : "a"(value) : "memory");
    return result;
}

extern "C" int memcmp(const void* a, const void* b, size_t size) {
    const auto* left = static_cast<const uint8_t*>(a);
    const auto* right = static_cast<const uint8_t*>(b);
    for (size_t i = 0; i < size; ++i)
        if (left[i] != right[i]) return left[i] < right[i] ? -1 : 1;
    return 0;
}

bool strings_equal(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

}  // namespace hostile
