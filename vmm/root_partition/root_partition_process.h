// The VMM's end of the root-partition process (root-partition/, hvkvm-root): starts it next to the
// vmm binary with its end of the link socket, hands it guest RAM, the SynIC state page and the
// socket the guest's VMBus messages arrive on, serves its requests (host messages into the
// SynIC, event connections with their ioeventfd doorbells, SINT eventfds) on a thread of its own,
// and watches it: a root partition that dies (pidfd) or stops answering pings is named, with the
// channels it was serving, through `on_failure`, which stops the VM.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kvm/unique_fd.h"
#include "link/link_socket.h"
#include "log/guest_log_printer.h"
#include "storage/io/disk_fault.h"

namespace hvkvm::vmm {

class GuestMemory;
class Hypervisor;
class Synic;
class Vm;

// A vmbus disk for the root partition's storvsp (LUN = position). The descriptor stays the
// VMM's: the root gets a duplicate over the link.
struct RootPartitionDisk {
    std::string id;
    int fd;
    uint64_t size_bytes;
    bool read_only;
    bool direct;
    storage::DiskFault fault;
};

struct RootPartitionServices {
    GuestMemory& memory;
    Synic& synic;
    Hypervisor& hypervisor;
    Vm& vm;
    uint32_t vcpu_count;
    std::map<std::string, std::string> kvp_presets;  // config `kvp`: handed over once it is ready
    std::vector<RootPartitionDisk> disks;            // the vmbus disks, in LUN order
    uint32_t poll_window_us;                          // config `vmbus.poll_window_us`
    std::vector<uint32_t> root_cpus;                  // config `vmbus.root_cpus` (empty: anywhere)
};

// What the root partition last said about the guest's heartbeat (link kHeartbeat).
struct HeartbeatStatus {
    bool seen = false;  // at least one answer
    bool lost = false;
    uint64_t sequence = 0;
    uint64_t beats = 0;
    uint32_t application_state = 0;
    std::chrono::steady_clock::time_point last_beat{};
};

class RootPartitionProcess {
public:
    using FailureHandler = std::function<void(std::string reason)>;
    static constexpr auto kReadyTimeout = std::chrono::seconds(10);
    static constexpr auto kPingInterval = std::chrono::milliseconds(500);
    static constexpr auto kHangTimeout = std::chrono::seconds(3);
    static constexpr auto kStopTimeout = std::chrono::seconds(1);

    // Where hvkvm-root is: next to the running vmm binary.
    static std::filesystem::path default_binary();

    // Registers the VMBus message connections with the hypervisor (before the VM runs).
    RootPartitionProcess(RootPartitionServices services, FailureHandler on_failure);
    // Asks it to stop, waits up to kStopTimeout, then kills it (at once if it is not ready yet);
    // joins the link thread.
    ~RootPartitionProcess();

    // Starts the process and hands it the partition and the disks, without waiting: the guest's first VMBus
    // messages wait in the socket until it serves them, so the VM boots meanwhile. Throws
    // HostError if the binary is missing or cannot be started; a process that fails or does not
    // report ready within kReadyTimeout is reported through `on_failure` like any later failure.
    void start(const std::filesystem::path& binary);
    RootPartitionProcess(const RootPartitionProcess&) = delete;
    RootPartitionProcess& operator=(const RootPartitionProcess&) = delete;

    void inject_fault(root::link::Fault fault);

    // A management request answered by the root partition (JSON text in, JSON text out), or
    // nullopt if it is not ready, gone, or does not answer within `timeout`.
    std::optional<std::string> control(const std::string& request, std::chrono::milliseconds timeout);

    // One line: pid, sandbox, channels, heartbeat (for the end-of-run report).
    std::string describe() const;
    HeartbeatStatus heartbeat() const;
    struct Channel {
        uint32_t relid;
        root::link::ChannelPhase phase;
        uint32_t target_vp;
        std::string name;
    };
    std::vector<Channel> channels() const;

private:
    void spawn(const std::filesystem::path& binary);
    void stop_process();
    void send_hello();
    void serve();  // the link thread
    bool handle(root::link::ReceivedMessage message);
    void serve_post_message(const root::link::PostMessage& message);
    void serve_event_connection(const root::link::EventConnection& request);
    void serve_sint_eventfd(const root::link::SintEventfd& request);
    void note_channel(const root::link::ChannelState& state);
    void note_heartbeat(const root::link::Heartbeat& event);
    void place_on_root_cpus();
    std::string guest_up_line_locked();
    void send_kvp_presets();
    void fail(std::string what);
    std::string channels_summary() const;  // under mutex_
    std::string reap_status();

    RootPartitionServices services_;
    FailureHandler on_failure_;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    std::optional<root::link::LinkSocket> link_;
    UniqueFd guest_messages_root_end_;  // handed over in hello
    UniqueFd stop_event_;
    std::thread thread_;

    mutable std::mutex mutex_;  // guards everything below
    bool ready_ = false;
    std::atomic<bool> exited_{false};
    std::string failure_;
    root::link::Ready sandbox_{};
    std::map<uint32_t, Channel> channels_;
    std::optional<root::link::Fault> pending_fault_;
    uint32_t next_control_id_ = 1;
    std::map<uint32_t, std::string> control_answers_;
    std::condition_variable control_answered_;
    uint64_t refused_posts_ = 0;
    HeartbeatStatus heartbeat_;
    bool guest_up_announced_ = false;
    GuestLogPrinter guest_log_;  // thread-safe itself
    std::atomic<bool> stopping_{false};
};

}  // namespace hvkvm::vmm
