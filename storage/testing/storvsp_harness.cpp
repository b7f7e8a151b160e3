#include "storage/testing/storvsp_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>
#include <future>
#include <stdexcept>

#include "hvkvm/abi/synic.h"
#include "hypercalls/message_endpoint.h"
#include "kvm/kvm_error.h"

namespace hvkvm::storage::testing {

namespace {

constexpr uint64_t kSiefpBase = 0x10000;  // one event-flag page per VP from here
constexpr int kMessageTimeoutMs = 5000;

vmm::UniqueFd make_eventfd() {
    vmm::UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) vmm::throw_errno("eventfd");
    return fd;
}

void signal_eventfd(int fd) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(fd, &one, sizeof one);
}

void drain_eventfd(int fd) {
    uint64_t count;
    [[maybe_unused]] ssize_t got = ::read(fd, &count, sizeof count);
}

bool wait_readable(int fd, int timeout_ms) {
    pollfd event{fd, POLLIN, 0};
    int ready;
    do ready = ::poll(&event, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
    return ready > 0;
}

root::StorvspDisk open_disk(const DiskSpec& spec) {
    const int flags = (spec.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    bool direct = spec.direct;
    vmm::UniqueFd fd(::open(spec.path.c_str(), flags | (direct ? O_DIRECT : 0)));
    if (!fd.valid() && direct && errno == EINVAL) {  // a file system without O_DIRECT (tmpfs)
        direct = false;
        fd.reset(::open(spec.path.c_str(), flags));
    }
    if (!fd.valid()) vmm::throw_errno("open disk image " + spec.path);
    struct stat status {};
    if (::fstat(fd.get(), &status) < 0) vmm::throw_errno("fstat " + spec.path);
    return root::StorvspDisk{spec.id, std::move(fd), static_cast<uint64_t>(status.st_size), spec.read_only, direct, spec.fault};
}

}  // namespace

// --- Host -------------------------------------------------------------------------------------

StorvspHost::StorvspHost(const HarnessOptions& options)
    : vcpus_(options.vcpus),
      memory_(vmm::GuestMemory::create(vmm::MemoryLayout::for_ram(options.ram_mib << 20))),
      host_messages_event_(make_eventfd()),
      work_event_(make_eventfd()),
      stop_event_(make_eventfd()) {
    synic_.magic = vmm::SynicSharedState::kMagic;
    synic_.vp_count = vcpus_;
    std::vector<vmm::UniqueFd> host_sint_events;
    for (uint32_t vp = 0; vp < vcpus_; ++vp) {
        synic_.siefp_gpa[vp] = kSiefpBase + uint64_t{vp} * vmbus::kHvPageSize;
        sint_events_guest_.push_back(make_eventfd());
        host_sint_events.emplace_back(::dup(sint_events_guest_.back().get()));
    }
    scratch_gpa_ = kSiefpBase + uint64_t{vcpus_} * vmbus::kHvPageSize;
    int sockets[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) < 0) vmm::throw_errno("socketpair");
    guest_messages_guest_end_.reset(sockets[0]);
    guest_messages_host_end_.reset(sockets[1]);

    signals_ = std::make_unique<root::GuestSignals>(memory_, synic_, std::move(host_sint_events));
    services_ = std::make_unique<root::VspServices>(root::VspServices{loop_, memory_, *signals_, *this, 0});
    host_ = std::make_unique<root::VmbusHost>(*services_, *this);
    if (!options.disks.empty()) {
        std::vector<int> files;
        for (const DiskSpec& spec : options.disks) {
            disks_.push_back(open_disk(spec));
            files.push_back(disks_.back().fd.get());
        }
        engine_ = std::make_unique<IoEngine>(files, options.io_depth);
        storvsp_ = std::make_unique<root::Storvsp>(*services_, std::move(disks_), *engine_, vcpus_, options.poll_window);
        host_->add(storvsp_->primary());
    }
    loop_.watch(guest_messages_host_end_.get(), [this] { on_guest_message_readable(); });
    loop_.watch(work_event_.get(), [this] { run_posted_work(); });
    loop_.watch(stop_event_.get(), [this] { loop_.stop(); });
    thread_ = std::thread([this] { loop_.run(); });
}

StorvspHost::~StorvspHost() {
    signal_eventfd(stop_event_.get());
    thread_.join();
    host_.reset();  // closes every channel (waiting for their I/O)
    storvsp_.reset();
    engine_.reset();
}

uint64_t* StorvspHost::event_flags(uint32_t vp) const {
    auto flags = memory_.translate(synic_.siefp_gpa[vp] + uint64_t{abi::synic::kVmbusSint} * abi::synic::kEventFlagBytesPerSint,
                                   abi::synic::kEventFlagBytesPerSint);
    return reinterpret_cast<uint64_t*>(flags->data());
}

std::optional<std::vector<uint8_t>> StorvspHost::take_host_message() {
    std::lock_guard lock(mutex_);
    if (host_messages_.empty()) return std::nullopt;
    std::vector<uint8_t> message = std::move(host_messages_.front());
    host_messages_.pop_front();
    return message;
}

int StorvspHost::signal_event(uint32_t connection_id) const {
    std::lock_guard lock(mutex_);
    auto found = signal_events_.find(connection_id);
    return found == signal_events_.end() ? -1 : found->second.get();
}

void StorvspHost::on_host(const std::function<void()>& work) {
    std::promise<void> done;
    {
        std::lock_guard lock(mutex_);
        work_.push_back([&] {
            work();
            done.set_value();
        });
    }
    signal_eventfd(work_event_.get());
    done.get_future().wait();
}

nlohmann::json StorvspHost::report() {
    nlohmann::json report;
    on_host([&] { report = storvsp_->report(); });
    return report;
}

void StorvspHost::run_posted_work() {
    drain_eventfd(work_event_.get());
    for (;;) {
        std::function<void()> work;
        {
            std::lock_guard lock(mutex_);
            if (work_.empty()) return;
            work = std::move(work_.front());
            work_.pop_front();
        }
        work();
    }
}

void StorvspHost::post_message(uint32_t, uint32_t, uint32_t, std::span<const uint8_t> payload) {
    {
        std::lock_guard lock(mutex_);
        host_messages_.emplace_back(payload.begin(), payload.end());
    }
    signal_eventfd(host_messages_event_.get());
}

vmm::UniqueFd StorvspHost::open_event_connection(uint32_t connection_id) {
    std::lock_guard lock(mutex_);
    auto found = signal_events_.find(connection_id);
    if (found == signal_events_.end()) found = signal_events_.emplace(connection_id, make_eventfd()).first;
    return vmm::UniqueFd(::dup(found->second.get()));
}

void StorvspHost::on_guest_message_readable() {
    vmm::PostedMessage message{};
    const ssize_t received = ::recv(guest_messages_host_end_.get(), &message, sizeof message, MSG_DONTWAIT);
    if (received < static_cast<ssize_t>(vmm::kPostedMessageHeaderSize)) return;
    const uint32_t size = std::min<uint32_t>(message.payload_size, static_cast<uint32_t>(received) - vmm::kPostedMessageHeaderSize);
    host_->on_guest_message(message.payload, size);
}

// --- Guest ------------------------------------------------------------------------------------

FakeStorvsc::FakeStorvsc(StorvspHost& host)
    : host_(host), client_(*this, *this, vmbus::channel::ClientConfig{}), next_free_gpa_(host.scratch_gpa()) {}

void FakeStorvsc::send(uint32_t connection_id, const vmbus::protocol::MessageBuffer& message) {
    vmm::PostedMessage posted{};
    posted.connection_id = connection_id;
    posted.message_type = abi::synic::kMessageTypeVmbus;
    posted.payload_size = message.size;
    std::memcpy(posted.payload, message.bytes, message.size);
    if (::send(host_.guest_message_socket(), &posted, vmm::kPostedMessageHeaderSize + message.size, MSG_NOSIGNAL) < 0)
        vmm::throw_errno("post a guest channel message");
}

void FakeStorvsc::offer(const vmbus::protocol::OfferChannel& offer) { offer_relids_.push_back(offer.child_relid); }

void FakeStorvsc::poll_messages() {
    drain_eventfd(host_.host_message_event());
    while (auto message = host_.take_host_message())
        client_.handle_message(message->data(), static_cast<uint32_t>(message->size()));
}

void FakeStorvsc::wait_for_message(const std::function<bool()>& done) {
    poll_messages();
    while (!done()) {
        if (!wait_readable(host_.host_message_event(), kMessageTimeoutMs))
            throw std::runtime_error("the host did not answer a channel message within 5 s");
        poll_messages();
    }
}

uint32_t FakeStorvsc::connect() {
    client_.connect();
    wait_for_message([this] { return offers_done_; });
    for (uint32_t relid : offer_relids_) {
        const auto* offered = client_.offer(relid);
        if (offered->interface_type == wire::kScsiInterfaceType && offered->sub_channel_index == 0) return relid;
    }
    return 0;
}

uint64_t FakeStorvsc::allocate(uint32_t pages) {
    const uint64_t gpa = next_free_gpa_;
    next_free_gpa_ += uint64_t{pages} * vmbus::kHvPageSize;
    if (!host_.memory().translate(gpa, uint64_t{pages} * vmbus::kHvPageSize)) throw std::runtime_error("fake guest out of RAM");
    return gpa;
}

uint8_t* FakeStorvsc::host(uint64_t gpa) const {
    return reinterpret_cast<uint8_t*>(host_.memory().translate(gpa, 1)->data());
}

GuestChannel& FakeStorvsc::open(uint32_t relid, uint32_t target_vp, uint32_t ring_pages, uint32_t answer_ring_pages) {
    if (answer_ring_pages == 0) answer_ring_pages = ring_pages;
    const uint32_t total_pages = ring_pages + answer_ring_pages;
    auto channel = std::make_unique<GuestChannel>();
    channel->relid = relid;
    channel->target_vp = target_vp;
    channel->ring_pages = ring_pages;
    channel->ring_gpa = allocate(total_pages);
    const auto* offered = client_.offer(relid);
    if (offered == nullptr) throw std::runtime_error(fmt::format("no offer for relid {}", relid));
    channel->connection_id = offered->connection_id;
    channel->sub_channel_index = offered->sub_channel_index;
    channel->outgoing_memory = std::make_unique<vmbus::ring::ContiguousRingMemory>(
        reinterpret_cast<vmbus::ring::ControlPage*>(host(channel->ring_gpa)), host(channel->ring_gpa + vmbus::kHvPageSize),
        (ring_pages - 1) * vmbus::kHvPageSize);
    const uint64_t incoming_gpa = channel->ring_gpa + uint64_t{ring_pages} * vmbus::kHvPageSize;
    channel->incoming_memory = std::make_unique<vmbus::ring::ContiguousRingMemory>(
        reinterpret_cast<vmbus::ring::ControlPage*>(host(incoming_gpa)), host(incoming_gpa + vmbus::kHvPageSize),
        (answer_ring_pages - 1) * vmbus::kHvPageSize);
    if (channel->outgoing.attach(*channel->outgoing_memory) != vmbus::ring::RingError::kOk ||
        channel->incoming.attach(*channel->incoming_memory) != vmbus::ring::RingError::kOk)
        throw std::runtime_error("cannot attach the guest's rings");

    std::vector<uint64_t> words(1 + total_pages);
    const vmbus::GpaRangeHeader header{total_pages * vmbus::kHvPageSize, 0};
    std::memcpy(words.data(), &header, sizeof header);
    for (uint32_t i = 0; i < total_pages; ++i) words[1 + i] = (channel->ring_gpa >> vmbus::kHvPageShift) + i;
    uint32_t gpadl = 0;
    if (client_.create_gpadl(relid, vmbus::GpaRangeList{words.data(), static_cast<uint32_t>(words.size()), 1}, gpadl) !=
        vmbus::channel::ClientError::kNone)
        throw std::runtime_error("create_gpadl refused");
    wait_for_message([&] { return gpadls_.count(gpadl) != 0; });
    if (gpadls_[gpadl] != vmbus::protocol::kStatusSuccess) throw std::runtime_error("the host refused the ring GPADL");
    ring_gpadls_[relid] = gpadl;
    open_results_.erase(relid);
    if (client_.open(relid, gpadl, ring_pages, target_vp) != vmbus::channel::ClientError::kNone)
        throw std::runtime_error("open refused by the client");
    wait_for_message([&] { return open_results_.count(relid) != 0; });
    if (open_results_[relid] != vmbus::protocol::kStatusSuccess) throw std::runtime_error("the host refused the open");
    channel->incoming.mask_signals();
    channels_.push_back(std::move(channel));
    return *channels_.back();
}

void FakeStorvsc::close(GuestChannel& channel) {
    client_.close(channel.relid);
    const uint32_t gpadl = ring_gpadls_[channel.relid];
    if (client_.teardown_gpadl(gpadl) != vmbus::channel::ClientError::kNone) return;
    wait_for_message([&] { return std::find(torn_down_.begin(), torn_down_.end(), gpadl) != torn_down_.end(); });
}

void FakeStorvsc::signal_host(GuestChannel& channel) {
    const int event = host_.signal_event(channel.connection_id);
    if (event < 0) throw std::runtime_error("no event connection for the channel");
    signal_eventfd(event);
    ++channel.signals_sent;
}

void FakeStorvsc::publish(GuestChannel& channel) {
    if (channel.outgoing.publish()) signal_host(channel);
}

bool FakeStorvsc::send(GuestChannel& channel, const GuestPacket& packet, uint64_t transaction_id, bool publish_now) {
    vmbus::ring::PayloadPiece piece{&packet.packet, packet.payload_size};
    std::vector<vmbus::GpaRange> ranges;
    for (const RangeSpec& spec : packet.ranges)
        ranges.push_back(vmbus::GpaRange{spec.byte_count, spec.byte_offset, spec.pfns.data(), static_cast<uint32_t>(spec.pfns.size())});
    vmbus::ring::OutgoingPacket outgoing;
    outgoing.type = ranges.empty() ? vmbus::ring::PacketType::kInBand : vmbus::ring::PacketType::kGpaDirect;
    outgoing.transaction_id = transaction_id;
    outgoing.completion_requested = packet.completion_requested;
    outgoing.ranges = ranges.data();
    outgoing.range_count = static_cast<uint32_t>(ranges.size());
    outgoing.payload = &piece;
    outgoing.payload_piece_count = 1;
    const vmbus::ring::RingError error = channel.outgoing.write(outgoing);
    if (error == vmbus::ring::RingError::kFull) return false;
    if (error != vmbus::ring::RingError::kOk)
        throw std::runtime_error(fmt::format("guest ring write: {}", vmbus::ring::ring_error_name(error)));
    if (publish_now) publish(channel);
    return true;
}

uint32_t FakeStorvsc::collect(GuestChannel& channel, std::vector<Answer>& answers) {
    uint32_t count = 0;
    for (;;) {
        vmbus::ring::IncomingPacket packet;
        const vmbus::ring::RingError error = channel.incoming.next(packet);
        if (error == vmbus::ring::RingError::kEmpty) break;
        if (error != vmbus::ring::RingError::kOk)
            throw std::runtime_error(fmt::format("guest ring read: {}", vmbus::ring::ring_error_name(error)));
        Answer answer;
        answer.transaction_id = packet.transaction_id;
        answer.completion = packet.type == vmbus::ring::PacketType::kCompletion;
        answer.size = packet.payload_size;
        channel.incoming.copy_payload(packet, 0, &answer.packet, std::min<uint32_t>(packet.payload_size, sizeof answer.packet));
        answers.push_back(answer);
        ++count;
    }
    if (channel.incoming.release()) signal_host(channel);  // the host waits for room to answer
    return count;
}

bool FakeStorvsc::wait_for_signal(GuestChannel& channel, int timeout_ms) {
    if (channel.incoming.arm_signal()) {  // something arrived before the mask was cleared
        channel.incoming.mask_signals();
        return true;
    }
    const bool signalled = wait_readable(host_.sint_event(channel.target_vp), timeout_ms);
    if (signalled) {
        drain_eventfd(host_.sint_event(channel.target_vp));
        uint64_t* flags = host_.event_flags(channel.target_vp);
        __atomic_fetch_and(&flags[channel.relid / 64], ~(uint64_t{1} << (channel.relid % 64)), __ATOMIC_SEQ_CST);
    }
    channel.incoming.mask_signals();
    return signalled;
}

Answer FakeStorvsc::call(GuestChannel& channel, const GuestPacket& packet, uint64_t transaction_id) {
    while (!send(channel, packet, transaction_id)) {
        std::vector<Answer> answers;
        collect(channel, answers);
        for (const Answer& answer : answers) early_answers_[answer.transaction_id] = answer;
        if (!wait_for_signal(channel, kMessageTimeoutMs)) throw std::runtime_error("the guest's ring stayed full");
    }
    for (;;) {
        auto early = early_answers_.find(transaction_id);
        if (early != early_answers_.end()) {
            Answer answer = early->second;
            early_answers_.erase(early);
            return answer;
        }
        std::vector<Answer> answers;
        collect(channel, answers);
        for (const Answer& answer : answers) early_answers_[answer.transaction_id] = answer;
        if (early_answers_.count(transaction_id) != 0) continue;
        if (!wait_for_signal(channel, kMessageTimeoutMs))
            throw std::runtime_error(fmt::format("no answer to transaction {} within 5 s", transaction_id));
    }
}

wire::ChannelProperties FakeStorvsc::initialize(GuestChannel& primary, std::vector<uint16_t> versions) {
    uint64_t transaction = 0xfff0;
    auto expect_success = [&](const GuestPacket& packet, const char* what) {
        const Answer answer = call(primary, packet, ++transaction);
        if (answer.packet.operation != wire::Operation::kCompleteIo || answer.packet.status != wire::kStatusSuccess)
            throw std::runtime_error(fmt::format("{} failed: status {:#x}", what, answer.packet.status));
        return answer;
    };
    expect_success(operation(wire::Operation::kBeginInitialization), "BEGIN_INITIALIZATION");
    bool accepted = false;
    for (uint16_t version : versions) {
        const wire::ProtocolVersion body{version, 0};
        const Answer answer = call(primary, operation(wire::Operation::kQueryProtocolVersion, &body, sizeof body), ++transaction);
        if (answer.packet.status == wire::kStatusSuccess) {
            accepted = true;
            break;
        }
    }
    if (!accepted) throw std::runtime_error("no protocol version accepted");
    const Answer properties = expect_success(operation(wire::Operation::kQueryProperties), "QUERY_PROPERTIES");
    expect_success(operation(wire::Operation::kEndInitialization), "END_INITIALIZATION");
    return properties.packet.properties;
}

uint32_t FakeStorvsc::create_sub_channels(GuestChannel& primary, uint16_t count) {
    const size_t before = offer_relids_.size();
    const Answer answer = call(primary, operation(wire::Operation::kCreateSubChannels, &count, sizeof count), 0xabc0);
    if (answer.packet.status == wire::kStatusSuccess) {
        wait_for_message([&] {
            uint32_t subs = 0;
            for (size_t i = before; i < offer_relids_.size(); ++i) subs += client_.offer(offer_relids_[i])->sub_channel_index != 0;
            return subs >= count;
        });
    }
    return answer.packet.status;
}

GuestPacket FakeStorvsc::operation(wire::Operation operation, const void* body, uint32_t body_size) {
    GuestPacket packet;
    packet.packet.operation = operation;
    packet.packet.flags = wire::kFlagRequestCompletion;
    if (body != nullptr) std::memcpy(packet.packet.body, body, std::min(body_size, wire::kPacketBodySize));
    return packet;
}

GuestPacket FakeStorvsc::srb(const std::vector<uint8_t>& cdb, uint8_t data_in, uint64_t data_gpa, uint32_t length,
                             uint8_t lun, uint8_t path, uint8_t target) {
    GuestPacket packet = operation(wire::Operation::kExecuteSrb);
    wire::ScsiRequest& request = packet.packet.srb;
    request.length = sizeof(wire::ScsiRequest);
    request.path_id = path;
    request.target_id = target;
    request.lun = lun;
    request.cdb_length = static_cast<uint8_t>(cdb.size());
    request.sense_info_length = wire::kSenseBufferSize;
    request.data_in = data_in;
    request.data_transfer_length = length;
    std::memcpy(request.cdb, cdb.data(), std::min<size_t>(cdb.size(), wire::kCdbMaxLength));
    request.srb_flags = wire::kSrbFlagDisableSynchTransfer |
                        (data_in == wire::kDataIn ? wire::kSrbFlagDataIn : data_in == wire::kDataOut ? wire::kSrbFlagDataOut : 0);
    if (length != 0) {
        RangeSpec range;
        range.byte_offset = static_cast<uint32_t>(data_gpa % vmbus::kHvPageSize);
        range.byte_count = length;
        const uint64_t pages = vmbus::gpa_range_pfn_count(length, range.byte_offset);
        for (uint64_t i = 0; i < pages; ++i) range.pfns.push_back((data_gpa >> vmbus::kHvPageShift) + i);
        packet.ranges.push_back(std::move(range));
    }
    return packet;
}

}  // namespace hvkvm::storage::testing
