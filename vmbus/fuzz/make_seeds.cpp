// Writes seed inputs for the fuzz targets, made with the library's own encoders and writer so that
// fuzzing starts from well-formed rings and conversations: make_seeds DIRECTORY.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "vmbus/protocol/gpadl.h"
#include "vmbus/protocol/message_codec.h"
#include "vmbus/ring/ring_writer.h"
#include "vmbus/services/ic_codec.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::protocol;
using namespace hvkvm::vmbus::ring;

namespace {

using Bytes = std::vector<uint8_t>;

void append(Bytes& bytes, const void* data, size_t size) {
    const auto* begin = static_cast<const uint8_t*>(data);
    bytes.insert(bytes.end(), begin, begin + size);
}

// A conversation entry: length byte, then the message (fuzz_messages.h; bytes from 249 are actions).
void append_message(Bytes& conversation, const MessageBuffer& message) {
    conversation.push_back(static_cast<uint8_t>(message.size));
    append(conversation, message.bytes, message.size);
}

void write_file(const std::filesystem::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes ring_seed() {
    alignas(4096) static ControlPage control{};
    static uint8_t data[kDataPageSize];
    ContiguousRingMemory memory(&control, data, sizeof(data));
    RingWriter writer;
    writer.attach(memory);
    const uint8_t payload[200] = {1, 2, 3};
    writer.write_inband(1, payload, 64, true);
    writer.write_completion(1, payload, 12);
    const uint64_t pfns[] = {0x100, 0x101, 0x102};
    const GpaRange ranges[] = {{9000, 8, pfns, 3}};
    const PayloadPiece piece{payload, 64};
    OutgoingPacket gpa;
    gpa.type = PacketType::kGpaDirect;
    gpa.transaction_id = 2;
    gpa.ranges = ranges;
    gpa.range_count = 1;
    gpa.payload = &piece;
    gpa.payload_piece_count = 1;
    writer.write(gpa);
    writer.publish();
    // The layout fuzz_ring_reader.cpp reads.
    Bytes seed;
    seed.push_back(0);  // one data page
    for (uint32_t field : {control.write_index, 0u, 0u, 0u, kFeaturePendingSendSize}) append(seed, &field, 4);
    seed.push_back(16);  // range buffer words
    for (uint32_t later : {control.write_index, control.write_index, 8u, 4088u}) append(seed, &later, 4);
    append(seed, data, sizeof(data));
    return seed;
}

Bytes guest_conversation() {
    Bytes conversation;
    InitiateContact contact{};
    contact.version_requested = kVersionWin10_5_3;
    contact.interrupt_page = kVmbusMessageSint;
    append_message(conversation, encode(contact));
    append_message(conversation, encode(RequestOffers{}));
    std::vector<uint64_t> words(1 + 40);
    const GpaRangeHeader header{40 * kHvPageSize, 0};
    std::memcpy(words.data(), &header, 8);
    for (uint32_t i = 0; i < 40; ++i) words[1 + i] = 0x2000 + i;
    GpadlMessageSplitter splitter;
    splitter.start(1, 0xe1e10, GpaRangeList{words.data(), static_cast<uint32_t>(words.size()), 1});
    MessageBuffer message;
    while (splitter.next(message)) append_message(conversation, message);
    OpenChannel open{};
    open.child_relid = 1;
    open.open_id = 1;
    open.ring_buffer_gpadl = 0xe1e10;
    open.downstream_ring_page_offset = 20;
    append_message(conversation, encode(open));
    append_message(conversation, encode(CloseChannel{{}, 1}));
    append_message(conversation, encode(GpadlTeardown{{}, 1, 0xe1e10}));
    append_message(conversation, encode(RelIdReleased{{}, 1}));
    conversation.push_back(249);  // action: rescind the first offer
    append_message(conversation, encode(Unload{}));
    return conversation;
}

Bytes host_conversation() {
    Bytes conversation;
    append_message(conversation, encode(VersionResponse{{}, 1, kConnectionSuccessful, 0, kMessageConnectionId}));
    OfferChannel offer{};
    offer.interface_type = Guid{0xba6163d9, 0x04a1, 0x4d29, {0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f}};
    offer.child_relid = 1;
    offer.monitor_id = kNoMonitorId;
    offer.interrupt_flags = kDedicatedInterrupt;
    offer.connection_id = 0x2001;
    append_message(conversation, encode(offer));
    append_message(conversation, encode(AllOffersDelivered{}));
    conversation.push_back(249);  // action: create a GPADL (0xe1e10)
    append_message(conversation, encode(GpadlCreated{{}, 1, 0xe1e10, kStatusSuccess}));
    conversation.push_back(250);  // action: open (open id 1)
    append_message(conversation, encode(OpenResult{{}, 1, 1, kStatusSuccess}));
    conversation.push_back(251);  // action: close
    conversation.push_back(252);  // action: teardown
    append_message(conversation, encode(GpadlTorndown{{}, 0xe1e10}));
    append_message(conversation, encode(RescindChannelOffer{{}, 1}));
    conversation.push_back(253);  // action: release
    conversation.push_back(254);  // action: unload
    append_message(conversation, encode(UnloadResponse{}));
    return conversation;
}

// fuzz_ic_messages.cpp's input: the KVP request an answer is read against, then a packet.
Bytes ic_seed(uint8_t operation, uint8_t pool, const services::ic::Packet& packet) {
    Bytes seed{operation, pool, 0, 0, 0, 0};
    append(seed, packet.bytes, packet.size);
    return seed;
}

std::vector<std::pair<std::string, Bytes>> ic_seeds() {
    namespace ic = services::ic;
    const ic::Versions versions{{3, 0}, {5, 0}};
    std::vector<std::pair<std::string, Bytes>> seeds;
    ic::Packet packet;
    ic::build_negotiate_request(packet, ic::kFrameworks, ic::message_versions(ic::kKvp), 1);
    seeds.emplace_back("negotiate_offer", ic_seed(0, 0, packet));
    ic::build_negotiate_response(packet, ic::request_header(ic::MessageType::kNegotiate, versions, 1), &versions);
    seeds.emplace_back("negotiate_answer", ic_seed(0, 0, packet));
    const ic::HeartbeatMessage beat{7, 1, 0};
    ic::build_packet(packet, ic::request_header(ic::MessageType::kHeartbeat, versions, 2), &beat, sizeof beat);
    seeds.emplace_back("heartbeat", ic_seed(0, 0, packet));
    ic::KvpRecord record;
    record.operation = ic::KvpOperation::kSet;
    record.key.assign("Key", 3);
    record.value.assign("value \xc3\xa9", 8);
    ic::build_kvp_request(packet, versions, 3, record);
    seeds.emplace_back("kvp_set", ic_seed(1, 0, packet));
    ic::Message request;
    ic::parse_message(packet.bytes, packet.size, request);
    record.operation = ic::KvpOperation::kGet;
    ic::build_kvp_response(packet, request, ic::kStatusSuccess, record);
    seeds.emplace_back("kvp_get_answer", ic_seed(0, 0, packet));
    ic::build_guest_log(packet, versions, ic::GuestLogLevel::kWarning, 2, "a log line", 10);
    seeds.emplace_back("guest_log", ic_seed(0, 0, packet));
    return seeds;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    const std::filesystem::path root = argv[1];
    for (const char* target : {"ring_reader", "guest_messages", "host_messages", "ic_messages"}) {
        std::filesystem::create_directories(root / target);
    }
    write_file(root / "ring_reader" / "three_packets", ring_seed());
    write_file(root / "guest_messages" / "conversation", guest_conversation());
    write_file(root / "host_messages" / "conversation", host_conversation());
    for (const auto& [name, seed] : ic_seeds()) write_file(root / "ic_messages" / name, seed);
    return 0;
}
