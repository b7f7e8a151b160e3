// Host->guest interrupts for one partition, handed to devices as lines they trigger without ever
// entering the guest's vCPU threads: every line is an irqfd, so triggering one is an eventfd write
// that the host kernel turns into an interrupt (and another process can be given the eventfd).
//
//   EdgeInterrupt   an IOAPIC input pin programmed edge-triggered by the guest, or an MSI
//   MsiInterrupt    an MSI (address/data) route of its own, retargetable (e.g. a SynIC SINT)
//   LevelInterrupt  an IOAPIC input pin the guest programs level-triggered: asserted until the
//                   device deasserts it; KVM signals a resample fd on each EOI and the controller
//                   re-raises the line while the device still asserts it.
//
// The controller owns the GSI routing table: GSIs 0..23 are the IOAPIC's pins (0..15 also the
// PIC's, as in KVM's default table), MSI routes are allocated above. It runs one thread that
// watches the level lines' resample fds. Lines must be destroyed before their controller.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <linux/kvm.h>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class Vm;
class InterruptController;

// An MSI as the LAPIC sees it: fixed delivery, edge, physical destination.
struct MsiMessage {
    uint64_t address;
    uint32_t data;
    static MsiMessage fixed(uint32_t destination_apic_id, uint8_t vector);
    bool operator==(const MsiMessage&) const = default;
};

// What a user of MSIs needs (the SynIC, later VMBus channels), as an interface so that it can be
// tested without KVM.
class MsiLine {
public:
    virtual ~MsiLine() = default;
    virtual void trigger() const = 0;  // never blocks
    virtual int eventfd() const = 0;   // the irqfd behind trigger(), for another process
    virtual void retarget(const MsiMessage& message) = 0;
    // A masked line holds its triggers; unmasking delivers one interrupt if any were held.
    virtual void set_masked(bool masked) = 0;
};

class MsiLines {
public:
    virtual ~MsiLines() = default;
    virtual std::unique_ptr<MsiLine> msi_line(const MsiMessage& message) = 0;
};

class EdgeInterrupt {
public:
    EdgeInterrupt(const EdgeInterrupt&) = delete;
    EdgeInterrupt& operator=(const EdgeInterrupt&) = delete;
    virtual ~EdgeInterrupt();

    // One interrupt. Never blocks: an eventfd write completed in the host kernel.
    void trigger() const;
    // The eventfd behind trigger(), for a device in another process.
    int eventfd() const { return eventfd_.get(); }
    uint32_t gsi() const { return gsi_; }

protected:
    EdgeInterrupt(InterruptController& controller, uint32_t gsi);
    void attach(bool attached);
    InterruptController& controller_;

private:
    bool attached_ = true;
    uint32_t gsi_;
    UniqueFd eventfd_;
};

class MsiInterrupt final : public EdgeInterrupt, public MsiLine {
public:
    ~MsiInterrupt() override;
    void trigger() const override { EdgeInterrupt::trigger(); }
    int eventfd() const override { return EdgeInterrupt::eventfd(); }
    // Points the route at another destination/vector (takes effect for the next trigger).
    void retarget(const MsiMessage& message) override;
    // A masked line keeps its eventfd but is detached from the GSI: triggers are held in the
    // eventfd's counter, and unmasking delivers one interrupt if any were held (KVM injects an
    // irqfd that is already signalled when it is assigned).
    void set_masked(bool masked) override;
    bool masked() const { return masked_; }

private:
    friend class InterruptController;
    MsiInterrupt(InterruptController& controller, uint32_t gsi) : EdgeInterrupt(controller, gsi) {}
    bool masked_ = false;
};

class LevelInterrupt {
public:
    LevelInterrupt(const LevelInterrupt&) = delete;
    LevelInterrupt& operator=(const LevelInterrupt&) = delete;
    ~LevelInterrupt();

    // Asserting raises the line (if it was not asserted); the line stays raised across EOIs
    // until deasserted. Never blocks.
    void set_asserted(bool asserted);
    bool asserted() const { return asserted_.load(std::memory_order_acquire); }
    // EOIs the guest issued while the line was asserted (each re-raised it).
    uint64_t resamples() const { return resamples_.load(std::memory_order_relaxed); }
    // Interrupts raised: assertions plus re-raises after a resample.
    uint64_t raised() const { return raised_.load(std::memory_order_relaxed); }
    uint32_t gsi() const { return gsi_; }

private:
    friend class InterruptController;
    LevelInterrupt(InterruptController& controller, uint32_t gsi);
    void raise();
    void on_resample();

    InterruptController& controller_;
    uint32_t gsi_;
    UniqueFd eventfd_;
    UniqueFd resample_fd_;
    std::atomic<bool> asserted_{false};
    std::atomic<uint64_t> resamples_{0};
    std::atomic<uint64_t> raised_{0};
};

class InterruptController final : public MsiLines {
public:
    static constexpr uint32_t kIoApicPins = 24;
    // 16 SINTs on each of 64 VPs, plus devices' own MSIs; KVM allows 4096 routes.
    static constexpr uint32_t kMaxMsiRoutes = 2048;

    explicit InterruptController(Vm& vm);
    ~InterruptController() override;
    InterruptController(const InterruptController&) = delete;
    InterruptController& operator=(const InterruptController&) = delete;

    // Throw std::invalid_argument for a pin beyond the IOAPIC or one already handed out, and
    // std::length_error when the MSI routes are exhausted.
    std::unique_ptr<EdgeInterrupt> ioapic_edge(uint32_t pin);
    std::unique_ptr<LevelInterrupt> ioapic_level(uint32_t pin);
    std::unique_ptr<MsiInterrupt> msi(const MsiMessage& message);
    std::unique_ptr<MsiLine> msi_line(const MsiMessage& message) override { return msi(message); }

private:
    friend class EdgeInterrupt;
    friend class MsiInterrupt;
    friend class LevelInterrupt;

    struct MsiRoute {
        uint32_t gsi;
        MsiMessage message;
    };
    void claim_pin(uint32_t pin);
    void release_pin(uint32_t pin);
    void set_msi_route(uint32_t gsi, const MsiMessage& message);
    void release_msi_route(uint32_t gsi);
    void commit_routes_locked();
    void watch_resamples(LevelInterrupt& line);
    void unwatch_resamples(LevelInterrupt& line);
    void resample_loop();

    Vm& vm_;
    std::mutex mutex_;  // guards everything below but the thread
    uint32_t pins_in_use_ = 0;
    std::vector<MsiRoute> msi_routes_;
    std::vector<LevelInterrupt*> level_lines_;  // watched by the resampler, found by GSI
    UniqueFd epoll_fd_;
    UniqueFd stop_fd_;
    std::thread resampler_;
};

}  // namespace hvkvm::vmm
