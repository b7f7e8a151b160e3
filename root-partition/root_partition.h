// The root-partition process (hvkvm-root), modelled on Hyper-V's per-VM worker process: it attaches
// to the child's guest RAM (the VMM's memfd), sandboxes itself, and runs the VMBus host and every
// VSP on one event loop. It never opens /dev/kvm; everything it needs of the hypervisor it asks
// the VMM over the link (link/link_messages.h).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "event_loop.h"
#include "guest_signals.h"
#include "kvm/guest_memory.h"
#include "link/link_socket.h"
#include "partition_link.h"
#include "services/ic/guest_log.h"
#include "services/ic/heartbeat.h"
#include "services/ic/timesync.h"
#include "services/storvsp/storvsp.h"
#include "storage/io/io_engine.h"
#include "vmbus_host.h"

namespace hvkvm::root {

class RootPartition final : public PartitionLink {
public:
    explicit RootPartition(link::LinkSocket link) : link_(std::move(link)) {}

    // Serves until the VMM says stop (returns 0) or the link ends (returns 1).
    int run();

    // PartitionLink
    void post_message(uint32_t vp, uint32_t sint, uint32_t message_type, std::span<const uint8_t> payload) override;
    vmm::UniqueFd open_event_connection(uint32_t connection_id) override;
    void report_channel(uint32_t relid, link::ChannelPhase phase, uint32_t target_vp, const char* name) override;

private:
    void attach(link::ReceivedMessage hello);
    void receive_disks(uint32_t count);
    std::vector<vmm::UniqueFd> fetch_sint_eventfds();
    void offer_services();
    // What the integration services tell the VMM.
    void report_heartbeat(const ic::HeartbeatEvent& event);
    void forward_guest_log(const ic::GuestLogEntry& entry);
    void preset_kvp(const link::KvpPreset& preset);

    void on_link_readable();
    void dispatch(link::ReceivedMessage message);
    // Sends a request and returns its reply, handling anything else that arrives meanwhile.
    link::ReceivedMessage call(link::MessageType request, std::span<const uint8_t> body, link::MessageType reply);
    void on_guest_messages_readable();
    void inject_fault(link::Fault fault);
    void answer_control(const link::ControlText& request);
    void send_control_answer(uint32_t id, const nlohmann::json& answer);
    void send_report(link::MessageType type, std::span<const uint8_t> body);

    link::LinkSocket link_;
    uint32_t vcpu_count_ = 0;
    std::chrono::microseconds poll_window_{0};  // the polling VSPs', from the hello
    std::optional<ic::HostClocks> clocks_;  // the time-sync service's, from the hello
    std::optional<vmm::GuestMemory> memory_;
    vmm::Mapping synic_state_;
    vmm::UniqueFd guest_messages_;
    EventLoop loop_;
    std::unique_ptr<GuestSignals> signals_;
    std::unique_ptr<VspServices> services_;
    // storvsp: its disks' ring is set up before the sandbox (which refuses io_uring_setup); both
    // outlive the VMBus host, which closes the channels.
    std::vector<StorvspDisk> disks_;
    std::unique_ptr<storage::IoEngine> io_engine_;
    std::unique_ptr<Storvsp> storvsp_;
    std::unique_ptr<VmbusHost> host_;
    bool serving_ = false;  // sandboxed and ready: requests from the VMM may be served
    std::deque<link::ReceivedMessage> deferred_;
    bool stopped_by_vmm_ = false;
    bool link_closed_ = false;
};

}  // namespace hvkvm::root
