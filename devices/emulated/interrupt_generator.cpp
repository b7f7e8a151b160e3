// The interrupt generator (abi/devices.h): a test device through which in-guest tests make the
// VMM raise interrupts on every host->guest path devices have — an edge and a level-triggered
// IOAPIC line and MSIs, all irqfds. Edge and MSI bursts are queued and raised by the device's
// worker thread, as a real device's backend would (the vCPU thread only queues). The level line
// follows its register writes at once, as a device's interrupt status register does: a driver
// that acknowledges inside its handler must see the line low before it signals EOI.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <thread>

#include "config/config.h"
#include "device.h"
#include "exits/io_bus.h"
#include "hvkvm/abi/devices.h"
#include "interrupts/interrupt_controller.h"

namespace hvkvm::devices {
namespace {

using abi::InterruptGeneratorCommand;

struct Command {
    InterruptGeneratorCommand kind;
    uint32_t count;
    vmm::MsiMessage msi;
};

class InterruptGenerator final : public Device, public vmm::PioHandler {
public:
    explicit InterruptGenerator(DeviceContext& context)
        : edge_(context.interrupts.ioapic_edge(abi::kInterruptGeneratorEdgePin)),
          level_(context.interrupts.ioapic_level(abi::kInterruptGeneratorLevelPin)),
          msi_(context.interrupts.msi(vmm::MsiMessage::fixed(0, 0))) {
        context.bus.register_pio(abi::kInterruptGeneratorPort, abi::kInterruptGeneratorPortCount, *this);
    }

    ~InterruptGenerator() override {
        stop();
        if (worker_.joinable()) worker_.join();
    }

    std::string_view name() const override { return "interrupt-generator"; }

    void start() override {
        {
            std::lock_guard lock(mutex_);
            accepting_ = true;
        }
        if (!worker_.joinable()) worker_ = std::thread([this] { run_commands(); });
    }

    void stop() override {
        {
            std::lock_guard lock(mutex_);
            accepting_ = false;
            stopping_ = true;
        }
        wake_.notify_all();
    }

    void reset() override {
        std::lock_guard lock(mutex_);
        queue_.clear();
        msi_target_ = vmm::MsiMessage::fixed(0, 0);
        level_->set_asserted(false);
    }

    std::string report() const override {
        return fmt::format("{} interrupts raised ({} edge/MSI, {} level incl. {} resamples), {} commands refused",
                           raised(), edge_and_msi_raised_.load(), level_->raised(), level_->resamples(),
                           refused_.load());
    }

    void pio_read(uint16_t, uint16_t offset, std::span<uint8_t> data) override {
        uint64_t value = ~0ull;
        if (data.size() == 4 && offset == abi::kInterruptGeneratorRaised) value = raised();
        if (data.size() == 4 && offset == abi::kInterruptGeneratorResamples) value = level_->resamples();
        store_le(data, value);
    }

    void pio_write(uint16_t, uint16_t offset, std::span<const uint8_t> data) override {
        if (data.size() != 4) return;
        const auto value = static_cast<uint32_t>(load_le(data));
        std::lock_guard lock(mutex_);
        if (offset == abi::kInterruptGeneratorMsiTarget)
            msi_target_ = vmm::MsiMessage::fixed(value & 0xff, static_cast<uint8_t>(value >> 8));
        else if (offset == abi::kInterruptGeneratorCommand)
            accept_command(static_cast<InterruptGeneratorCommand>(value & 0xff), value >> 8);
    }

private:
    static constexpr size_t kQueueLimit = 64;  // a guest cannot make the VMM queue without bound

    uint64_t raised() const { return edge_and_msi_raised_.load() + level_->raised(); }

    void accept_command(InterruptGeneratorCommand kind, uint32_t count) {  // mutex_ held
        switch (kind) {
        case InterruptGeneratorCommand::kLevelAssert: level_->set_asserted(true); return;
        case InterruptGeneratorCommand::kLevelDeassert: level_->set_asserted(false); return;
        case InterruptGeneratorCommand::kEdge:
        case InterruptGeneratorCommand::kMsi:
            if (accepting_ && count >= 1 && count <= abi::kInterruptGeneratorMaxBurst && queue_.size() < kQueueLimit) {
                queue_.push_back(Command{kind, count, msi_target_});
                wake_.notify_one();
                return;
            }
            break;
        }
        refused_.fetch_add(1, std::memory_order_relaxed);
    }

    void run_commands() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            const Command command = queue_.front();
            queue_.pop_front();
            lock.unlock();
            execute(command);
            lock.lock();
        }
    }

    void execute(const Command& command) {
        if (command.kind == InterruptGeneratorCommand::kMsi) msi_->retarget(command.msi);
        burst(command.kind == InterruptGeneratorCommand::kMsi ? *msi_ : *edge_, command.count);
    }

    // Each interrupt of a burst is its own eventfd write; the guest counts what arrives.
    void burst(const vmm::EdgeInterrupt& line, uint32_t count) {
        for (uint32_t i = 0; i < count; ++i) {
            line.trigger();
            edge_and_msi_raised_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    std::unique_ptr<vmm::EdgeInterrupt> edge_;
    std::unique_ptr<vmm::LevelInterrupt> level_;
    std::unique_ptr<vmm::MsiInterrupt> msi_;
    std::atomic<uint64_t> edge_and_msi_raised_{0};
    std::atomic<uint64_t> refused_{0};

    std::mutex mutex_;  // guards the queue, the MSI target and the accepting/stopping flags
    std::condition_variable wake_;
    std::deque<Command> queue_;
    vmm::MsiMessage msi_target_ = vmm::MsiMessage::fixed(0, 0);
    bool accepting_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace

extern const DeviceType kInterruptGeneratorDevice{
    "interrupt-generator", [](const vmm::VmConfig& config) { return config.debug.interrupt_generator; },
    [](DeviceContext& context) -> std::unique_ptr<Device> { return std::make_unique<InterruptGenerator>(context); }};

}  // namespace hvkvm::devices
