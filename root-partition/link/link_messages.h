// The link between the VMM and its root-partition process: one SOCK_SEQPACKET socket, one record
// per message (LinkHeader + a fixed-size body), file descriptors passed alongside with
// SCM_RIGHTS. Both sides are trusted code, but the root partition serves a hostile guest, so the
// VMM still validates everything the root asks of it (VP and SINT ranges, sizes, counts).
//
// Sequence: VMM -> kHello (+ guest RAM memfd, SynIC state memfd, guest-message socket), then
// hello.disk_count x kDisk (+ the disk image's descriptor: storvsp's LUNs, in order); root attaches
// guest RAM, sets up disk I/O, sandboxes itself, -> kReady. Then, in any order:
//   root -> kPostMessage            a host message into a VP's SINT slot (the VMM's SynIC)
//   root -> kOpenEventConnection    VMM -> kEventConnection + eventfd (the guest's SignalEvent)
//   root -> kGetSintEventfd         VMM -> kSintEventfd + eventfd (raises the SINT)
//   root -> kChannelState           for the VMM's reports and crash diagnosis
//   VMM  -> kPing                   root -> kPong (a root that stops answering is hung)
//   VMM  -> kStop                   the root closes its channels and exits 0
//   VMM  -> kInjectFault            tests only (config debug.root_partition_fault)
//   VMM  -> kControlRequest         root -> kControlResponse with the same id: a management
//                                   request (JSON, `vmm ctl` and the VMM's own, e.g. shutdown)
//                                   answered by the VMBus host or a VSP (at once or once the
//                                   guest has answered)
//   VMM  -> kKvpPreset              a host KVP pair from the config (no answer)
//   root -> kHeartbeat              each heartbeat answer, and the guest lost / resumed
//   root -> kGuestLog               one line of the guest's log, to print
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hvkvm/abi/boot.h"
#include "hvkvm/abi/synic.h"
#include "storage/io/disk_fault.h"

namespace hvkvm::root::link {

enum class MessageType : uint32_t {
    kHello = 1,
    kReady = 2,
    kPostMessage = 3,
    kOpenEventConnection = 4,
    kEventConnection = 5,
    kGetSintEventfd = 6,
    kSintEventfd = 7,
    kPing = 8,
    kPong = 9,
    kChannelState = 10,
    kStop = 11,
    kInjectFault = 12,
    kControlRequest = 13,
    kControlResponse = 14,
    kKvpPreset = 15,
    kHeartbeat = 16,
    kGuestLog = 17,
    kDisk = 18,
};

struct Header {
    MessageType type;
    uint32_t body_size;  // bytes after the header; must equal the type's body size
};
static_assert(sizeof(Header) == 8);

inline constexpr uint32_t kMaxRegions = 64;
inline constexpr uint32_t kMaxPollWindowUs = 1000;  // the event loop serves every channel: bounded
inline constexpr uint32_t kMaxFds = 4;

struct Region {
    uint64_t gpa;
    uint64_t size;
    uint64_t memfd_offset;
    uint32_t node;
    uint32_t reserved;
};
static_assert(sizeof(Region) == 32);

// kHello: fds[0] guest RAM memfd, fds[1] SynIC state memfd, fds[2] the guest-message socket.
struct Hello {
    uint32_t vcpu_count;
    uint32_t region_count;
    uint64_t ram_bytes;
    // CLOCK_MONOTONIC, in ns, at which the partition's reference time (TIME_REF_COUNT) was 0.
    uint64_t reference_origin_ns;
    uint32_t disk_count;      // kDisk messages that follow, <= kMaxDisks
    uint32_t poll_window_us;  // config vmbus.poll_window_us, at most kMaxPollWindowUs
    Region regions[kMaxRegions];
};
static_assert(offsetof(Hello, ram_bytes) == 8 && offsetof(Hello, reference_origin_ns) == 16 &&
              offsetof(Hello, disk_count) == 24 && offsetof(Hello, poll_window_us) == 28 &&
              offsetof(Hello, regions) == 32);
inline constexpr uint32_t kHelloFdCount = 3;

// kDisk: one vmbus disk for storvsp (LUN = its position), with fds[0] the open, checked and locked
// image (vmm/storage/disk_image.h). The VMM keeps its own descriptor (and the lock) for the VM's
// lifetime.
inline constexpr uint32_t kMaxDisks = 16;
inline constexpr uint32_t kDiskIdMax = 40;
inline constexpr uint32_t kDiskReadOnly = 1u << 0;
inline constexpr uint32_t kDiskDirect = 1u << 1;  // opened O_DIRECT (cache "none")
struct Disk {
    char id[kDiskIdMax];  // NUL-terminated
    uint64_t size_bytes;  // a non-zero multiple of 512
    uint32_t flags;       // kDiskReadOnly, kDiskDirect
    uint32_t reserved;
    storage::DiskFault fault;  // tests only (debug.disk_fault)
};
static_assert(offsetof(Disk, size_bytes) == 40 && offsetof(Disk, flags) == 48 && offsetof(Disk, fault) == 56);
static_assert(sizeof(Disk) == 80);

// kReady: what the root could establish about itself, for the VMM's log and tests.
struct Ready {
    uint32_t pid;
    uint32_t seccomp_mode;       // /proc/self/status Seccomp: 2 = filter
    uint64_t capabilities;       // effective set, 0 = none
    uint32_t no_new_privileges;  // 1 once set
    uint32_t offers;             // channels offered
};

// kPostMessage
struct PostMessage {
    uint32_t vp;
    uint32_t sint;
    uint32_t message_type;
    uint32_t payload_size;  // <= abi::synic::kMessagePayloadMax
    uint8_t payload[abi::synic::kMessagePayloadMax];
};
static_assert(sizeof(PostMessage) == 16 + abi::synic::kMessagePayloadMax);

// kOpenEventConnection / kEventConnection (+ eventfd when status == 0)
struct EventConnection {
    uint32_t connection_id;
    uint32_t status;  // reply: 0 ok, else errno
};

// kGetSintEventfd / kSintEventfd (+ eventfd when status == 0)
struct SintEventfd {
    uint32_t vp;
    uint32_t sint;
    uint32_t status;  // reply: 0 ok, else errno
    uint32_t reserved;
};

// kPing / kPong
struct Ping {
    uint64_t sequence;
};

enum class ChannelPhase : uint32_t { kOffered = 1, kOpen = 2, kClosed = 3, kRescinded = 4 };
inline constexpr uint32_t kChannelNameMax = 32;

// kChannelState
struct ChannelState {
    uint32_t relid;
    ChannelPhase phase;
    uint32_t target_vp;
    uint32_t reserved;
    char name[kChannelNameMax];  // NUL-terminated
};

// kStop has no body.

// kInjectFault (tests of the VMM's handling of a failing root partition)
enum class Fault : uint32_t { kForbiddenSyscall = 1, kCrash = 2, kHang = 3 };
struct InjectFault {
    Fault fault;
    uint32_t reserved;
};

// kControlRequest / kControlResponse: one JSON object as text.
inline constexpr uint32_t kControlTextMax = 4080;
struct ControlText {
    uint32_t id;
    uint32_t size;  // bytes of text used, <= kControlTextMax
    char text[kControlTextMax];
};
static_assert(sizeof(ControlText) == 4088);

// kKvpPreset: UTF-8, sizes in bytes (a 255-character key and a 1023-character value fit; the
// root checks them against the wire's UTF-16 limits).
inline constexpr uint32_t kKvpKeyMax = 768;
inline constexpr uint32_t kKvpValueMax = 3072;
struct KvpPreset {
    uint32_t key_size;
    uint32_t value_size;
    char key[kKvpKeyMax];
    char value[kKvpValueMax];
};
static_assert(sizeof(KvpPreset) == 3848 && offsetof(KvpPreset, key) == 8 && offsetof(KvpPreset, value) == 776);

// kHeartbeat
enum class HeartbeatEventKind : uint32_t { kBeat = 1, kLost = 2, kResumed = 3 };
struct Heartbeat {
    HeartbeatEventKind kind;
    uint32_t application_state;  // Hyper-V's: 0 unknown, 1 healthy, 2 critical, 3 stopped
    uint64_t sequence;           // the last sequence the guest answered
    uint64_t beats;              // answers so far
    uint64_t silent_ms;          // kLost / kResumed: how long the guest had not answered
};
static_assert(sizeof(Heartbeat) == 32 && offsetof(Heartbeat, sequence) == 8 && offsetof(Heartbeat, silent_ms) == 24);

// kGuestLog: one line as the guest sent it (not NUL-terminated; the VMM sanitizes it).
inline constexpr uint32_t kGuestLogTextMax = 480;  // vmbus/services/ic.h kGuestLogMaxText
struct GuestLog {
    uint32_t level;  // 0 info, 1 warning, 2 error
    uint32_t size;   // bytes of text, 1..kGuestLogTextMax
    uint64_t lost;   // lines before this one that never arrived
    char text[kGuestLogTextMax];
};
static_assert(sizeof(GuestLog) == 496 && offsetof(GuestLog, lost) == 8 && offsetof(GuestLog, text) == 16);

// The fixed body size of each message type (0 for none), so a receiver checks sizes before parsing.
constexpr uint32_t body_size_of(MessageType type) {
    switch (type) {
    case MessageType::kHello: return sizeof(Hello);
    case MessageType::kReady: return sizeof(Ready);
    case MessageType::kPostMessage: return sizeof(PostMessage);
    case MessageType::kOpenEventConnection:
    case MessageType::kEventConnection: return sizeof(EventConnection);
    case MessageType::kGetSintEventfd:
    case MessageType::kSintEventfd: return sizeof(SintEventfd);
    case MessageType::kPing:
    case MessageType::kPong: return sizeof(Ping);
    case MessageType::kChannelState: return sizeof(ChannelState);
    case MessageType::kStop: return 0;
    case MessageType::kInjectFault: return sizeof(InjectFault);
    case MessageType::kControlRequest:
    case MessageType::kControlResponse: return sizeof(ControlText);
    case MessageType::kKvpPreset: return sizeof(KvpPreset);
    case MessageType::kHeartbeat: return sizeof(Heartbeat);
    case MessageType::kGuestLog: return sizeof(GuestLog);
    case MessageType::kDisk: return sizeof(Disk);
    }
    return ~0u;  // unknown type
}

inline constexpr uint32_t kMaxBodyBytes = sizeof(ControlText) > sizeof(Hello) ? sizeof(ControlText) : sizeof(Hello);
inline constexpr uint32_t kMaxMessageBytes = sizeof(Header) + kMaxBodyBytes;
static_assert(sizeof(PostMessage) <= kMaxBodyBytes && sizeof(ChannelState) <= kMaxBodyBytes &&
              sizeof(KvpPreset) <= kMaxBodyBytes && sizeof(GuestLog) <= kMaxBodyBytes);

}  // namespace hvkvm::root::link
