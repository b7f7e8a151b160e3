// Writes seed inputs for storage-fuzz-vstor-packets (its input format: fuzz_vstor_packets.cpp), so
// that fuzzing starts from a ready session and well-formed SRBs: make_seeds DIRECTORY.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "storage/scsi/scsi_defs.h"
#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/services/storage.h"

namespace wire = hvkvm::vmbus::services::storage;
namespace scsi = hvkvm::storage::scsi;
using Bytes = std::vector<uint8_t>;

namespace {

template <typename T>
void append(Bytes& bytes, const T& value) {
    const auto* begin = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), begin, begin + sizeof value);
}

// One packet record: control, payload size, payload, transaction id, [ranges], outcome.
void append_packet(Bytes& input, const wire::Packet& packet, bool gpa_direct, uint32_t length, uint64_t first_pfn,
                   uint8_t outcome = 0) {
    input.push_back(static_cast<uint8_t>(1 | 2 | (gpa_direct ? 4 : 0)));
    input.push_back(wire::kPacketSize);
    append(input, packet);
    append(input, uint16_t{7});
    if (gpa_direct) {
        const uint32_t pages = static_cast<uint32_t>(hvkvm::vmbus::gpa_range_pfn_count(length, 0));
        input.push_back(1);
        input.push_back(static_cast<uint8_t>(1 + pages));
        append(input, hvkvm::vmbus::GpaRangeHeader{length, 0});
        for (uint32_t i = 0; i < pages; ++i) append(input, first_pfn + i);
    }
    input.push_back(outcome);
}

wire::Packet srb(std::vector<uint8_t> cdb, uint8_t data_in, uint32_t length) {
    wire::Packet packet{};
    packet.operation = wire::Operation::kExecuteSrb;
    packet.flags = wire::kFlagRequestCompletion;
    packet.srb.cdb_length = static_cast<uint8_t>(cdb.size());
    std::memcpy(packet.srb.cdb, cdb.data(), cdb.size());
    packet.srb.data_in = data_in;
    packet.srb.data_transfer_length = length;
    return packet;
}

void write_file(const std::filesystem::path& path, const Bytes& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const std::filesystem::path directory = argv[1];
    std::filesystem::create_directories(directory);

    Bytes initialization{0};
    for (auto operation : {wire::Operation::kBeginInitialization, wire::Operation::kQueryProtocolVersion,
                           wire::Operation::kQueryProperties, wire::Operation::kCreateSubChannels,
                           wire::Operation::kEndInitialization}) {
        wire::Packet packet{};
        packet.operation = operation;
        packet.flags = wire::kFlagRequestCompletion;
        packet.version.major_minor = wire::kVersionWin10;
        if (operation == wire::Operation::kCreateSubChannels) packet.sub_channel_count = 2;
        append_packet(initialization, packet, false, 0, 0, 1);
    }
    write_file(directory / "initialization", initialization);

    Bytes io{1};  // ready from the start
    std::vector<uint8_t> read10 = {scsi::kRead10, 0, 0, 0, 0, 8, 0, 0, 16, 0};
    append_packet(io, srb(read10, wire::kDataIn, 8192), true, 8192, 2);
    std::vector<uint8_t> write16(16, 0);
    write16[0] = scsi::kWrite16;
    write16[1] = 0x08;
    write16[13] = 8;
    append_packet(io, srb(write16, wire::kDataOut, 4096), true, 4096, 5, 1);
    append_packet(io, srb({scsi::kInquiry, 1, 0x83, 0, 255, 0}, wire::kDataIn, 255), true, 255, 3);
    append_packet(io, srb({scsi::kModeSense6, 0, 0x3f, 0, 192, 0}, wire::kDataIn, 192), true, 192, 3);
    append_packet(io, srb({scsi::kSynchronizeCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, wire::kDataNone, 0), false, 0, 0, 2);
    write_file(directory / "io", io);

    Bytes unmap{1};
    append_packet(unmap, srb({scsi::kUnmap, 0, 0, 0, 0, 0, 0, 0, 40, 0}, wire::kDataOut, 40), true, 40, 7, 3);
    write_file(directory / "unmap", unmap);
    return 0;
}
