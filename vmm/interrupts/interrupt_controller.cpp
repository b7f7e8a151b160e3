#include "interrupts/interrupt_controller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "hvkvm/abi/boot.h"
#include "kvm/kvm.h"
#include "kvm/kvm_error.h"

namespace hvkvm::vmm {
namespace {

constexpr uint32_t kFirstMsiGsi = InterruptController::kIoApicPins;
constexpr uint32_t kPicPins = 16;  // GSIs 0..15 reach the PIC as well, as in KVM's default table

UniqueFd make_eventfd(const char* what) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) throw_errno(what);
    return fd;
}

void signal(int eventfd) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(eventfd, &one, sizeof one);  // only fails on counter overflow
}

kvm_irq_routing_entry irqchip_route(uint32_t gsi, uint32_t chip, uint32_t pin) {
    kvm_irq_routing_entry entry{};
    entry.gsi = gsi;
    entry.type = KVM_IRQ_ROUTING_IRQCHIP;
    entry.u.irqchip.irqchip = chip;
    entry.u.irqchip.pin = pin;
    return entry;
}

}  // namespace

MsiMessage MsiMessage::fixed(uint32_t destination_apic_id, uint8_t vector) {
    // Address: 0xfee00000 | destination << 12 (physical mode); data: vector, fixed, edge.
    return MsiMessage{abi::kLocalApicGpa | (uint64_t{destination_apic_id & 0xff} << 12), vector};
}

// --- EdgeInterrupt / MsiInterrupt --------------------------------------------------------------

EdgeInterrupt::EdgeInterrupt(InterruptController& controller, uint32_t gsi)
    : controller_(controller), gsi_(gsi), eventfd_(make_eventfd("eventfd for an interrupt line")) {
    controller_.vm_.assign_irqfd(eventfd_.get(), gsi_);
}

EdgeInterrupt::~EdgeInterrupt() {
    if (attached_) controller_.vm_.deassign_irqfd(eventfd_.get(), gsi_);
    if (gsi_ < InterruptController::kIoApicPins) controller_.release_pin(gsi_);
}

void EdgeInterrupt::attach(bool attached) {
    if (attached == attached_) return;
    if (attached) controller_.vm_.assign_irqfd(eventfd_.get(), gsi_);
    else controller_.vm_.deassign_irqfd(eventfd_.get(), gsi_);
    attached_ = attached;
}

void EdgeInterrupt::trigger() const { signal(eventfd_.get()); }

MsiInterrupt::~MsiInterrupt() { controller_.release_msi_route(gsi()); }

void MsiInterrupt::retarget(const MsiMessage& message) { controller_.set_msi_route(gsi(), message); }

void MsiInterrupt::set_masked(bool masked) {
    attach(!masked);
    masked_ = masked;
}

// --- LevelInterrupt ----------------------------------------------------------------------------

LevelInterrupt::LevelInterrupt(InterruptController& controller, uint32_t gsi)
    : controller_(controller), gsi_(gsi), eventfd_(make_eventfd("eventfd for a level-triggered line")),
      resample_fd_(make_eventfd("resample eventfd for a level-triggered line")) {
    controller_.vm_.assign_irqfd(eventfd_.get(), gsi_, resample_fd_.get());
}

LevelInterrupt::~LevelInterrupt() {
    controller_.unwatch_resamples(*this);
    controller_.vm_.deassign_irqfd(eventfd_.get(), gsi_);
    controller_.release_pin(gsi_);
}

void LevelInterrupt::raise() {
    raised_.fetch_add(1, std::memory_order_relaxed);
    signal(eventfd_.get());
}

void LevelInterrupt::set_asserted(bool asserted) {
    // Only a rising edge raises the line here; while asserted, each EOI's resample re-raises it.
    if (!asserted_.exchange(asserted, std::memory_order_acq_rel) && asserted) raise();
}

void LevelInterrupt::on_resample() {
    uint64_t count = 0;
    if (::read(resample_fd_.get(), &count, sizeof count) != static_cast<ssize_t>(sizeof count)) return;
    if (!asserted()) return;  // the device deasserted before the EOI: the line stays low
    resamples_.fetch_add(1, std::memory_order_relaxed);
    raise();
}

// --- InterruptController -----------------------------------------------------------------------

InterruptController::InterruptController(Vm& vm)
    : vm_(vm), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), stop_fd_(make_eventfd("eventfd to stop the resampler")) {
    if (!epoll_fd_.valid()) throw_errno("epoll_create1 for interrupt resampling");
    epoll_event stop{};
    stop.events = EPOLLIN;
    stop.data.u32 = ~0u;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, stop_fd_.get(), &stop) < 0) throw_errno("epoll_ctl (resampler stop)");
    {
        std::lock_guard lock(mutex_);
        commit_routes_locked();
    }
    resampler_ = std::thread([this] { resample_loop(); });
}

InterruptController::~InterruptController() {
    signal(stop_fd_.get());
    resampler_.join();
}

void InterruptController::claim_pin(uint32_t pin) {
    if (pin >= kIoApicPins)
        throw std::invalid_argument(fmt::format("IOAPIC pin {} does not exist (the IOAPIC has {})", pin, kIoApicPins));
    std::lock_guard lock(mutex_);
    if (pins_in_use_ & (1u << pin)) throw std::invalid_argument(fmt::format("IOAPIC pin {} is already in use", pin));
    pins_in_use_ |= 1u << pin;
}

void InterruptController::release_pin(uint32_t pin) {
    std::lock_guard lock(mutex_);
    pins_in_use_ &= ~(1u << pin);
}

std::unique_ptr<EdgeInterrupt> InterruptController::ioapic_edge(uint32_t pin) {
    claim_pin(pin);
    struct PinLine final : EdgeInterrupt {
        PinLine(InterruptController& controller, uint32_t gsi) : EdgeInterrupt(controller, gsi) {}
    };
    try {
        return std::make_unique<PinLine>(*this, pin);
    } catch (...) {
        release_pin(pin);
        throw;
    }
}

std::unique_ptr<LevelInterrupt> InterruptController::ioapic_level(uint32_t pin) {
    claim_pin(pin);
    std::unique_ptr<LevelInterrupt> line;
    try {
        line.reset(new LevelInterrupt(*this, pin));
    } catch (...) {
        release_pin(pin);
        throw;
    }
    watch_resamples(*line);
    return line;
}

std::unique_ptr<MsiInterrupt> InterruptController::msi(const MsiMessage& message) {
    uint32_t gsi = kFirstMsiGsi;
    {
        std::lock_guard lock(mutex_);
        if (msi_routes_.size() >= kMaxMsiRoutes)
            throw std::length_error(fmt::format("all {} MSI routes are in use", kMaxMsiRoutes));
        // The lowest free GSI; routes are kept sorted by GSI.
        auto slot = msi_routes_.begin();
        for (; slot != msi_routes_.end() && slot->gsi == gsi; ++slot) ++gsi;
        msi_routes_.insert(slot, MsiRoute{gsi, message});
        commit_routes_locked();
    }
    try {
        return std::unique_ptr<MsiInterrupt>(new MsiInterrupt(*this, gsi));
    } catch (...) {
        release_msi_route(gsi);
        throw;
    }
}

void InterruptController::set_msi_route(uint32_t gsi, const MsiMessage& message) {
    std::lock_guard lock(mutex_);
    for (MsiRoute& route : msi_routes_)
        if (route.gsi == gsi && !(route.message == message)) {
            route.message = message;
            commit_routes_locked();
        }
}

void InterruptController::release_msi_route(uint32_t gsi) {
    std::lock_guard lock(mutex_);
    std::erase_if(msi_routes_, [gsi](const MsiRoute& route) { return route.gsi == gsi; });
    commit_routes_locked();
}

void InterruptController::commit_routes_locked() {
    std::vector<kvm_irq_routing_entry> routes;
    for (uint32_t pin = 0; pin < kIoApicPins; ++pin) {
        if (pin < kPicPins)
            routes.push_back(irqchip_route(pin, pin < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, pin % 8));
        routes.push_back(irqchip_route(pin, KVM_IRQCHIP_IOAPIC, pin));
    }
    for (const MsiRoute& msi : msi_routes_) {
        kvm_irq_routing_entry entry{};
        entry.gsi = msi.gsi;
        entry.type = KVM_IRQ_ROUTING_MSI;
        entry.u.msi.address_lo = static_cast<uint32_t>(msi.message.address);
        entry.u.msi.address_hi = static_cast<uint32_t>(msi.message.address >> 32);
        entry.u.msi.data = msi.message.data;
        routes.push_back(entry);
    }
    vm_.set_gsi_routing(routes);
}

void InterruptController::watch_resamples(LevelInterrupt& line) {
    std::lock_guard lock(mutex_);
    level_lines_.push_back(&line);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = line.gsi();
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, line.resample_fd_.get(), &event) < 0)
        throw_errno(fmt::format("epoll_ctl for the resample fd of GSI {}", line.gsi()));
}

void InterruptController::unwatch_resamples(LevelInterrupt& line) {
    std::lock_guard lock(mutex_);
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, line.resample_fd_.get(), nullptr);
    std::erase(level_lines_, &line);
}

void InterruptController::resample_loop() {
    for (;;) {
        epoll_event events[16];
        const int ready = ::epoll_wait(epoll_fd_.get(), events, 16, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return;  // cannot happen with a valid epoll fd; nothing to resample then
        for (int i = 0; i < ready; ++i) {
            if (events[i].data.u32 == ~0u) return;  // stop
            // Found by GSI under the lock: a line destroyed after epoll_wait returned is skipped.
            std::lock_guard lock(mutex_);
            for (LevelInterrupt* line : level_lines_)
                if (line->gsi() == events[i].data.u32) line->on_resample();
        }
    }
}

}  // namespace hvkvm::vmm
