#include "identify.h"

#include <algorithm>

#include "hvkvm/abi/ata.h"

namespace hvkvm::devices::ide {
namespace ata = abi::ata;
namespace {

constexpr std::string_view kModel = "hvkvm IDE disk";
constexpr std::string_view kFirmware = "0.1.0";

// ATA strings: two characters per word, the first in the high byte, padded with spaces.
void put_string(IdentifyData& words, uint16_t first_word, uint32_t characters, std::string_view text) {
    for (uint32_t i = 0; i < characters; i += 2) {
        const char high = i < text.size() ? text[i] : ' ';
        const char low = i + 1 < text.size() ? text[i + 1] : ' ';
        words[first_word + i / 2] = static_cast<uint16_t>((static_cast<uint8_t>(high) << 8) | static_cast<uint8_t>(low));
    }
}

void put_sectors(IdentifyData& words, uint16_t first_word, uint32_t count, uint64_t sectors) {
    for (uint32_t i = 0; i < count; ++i) words[first_word + i] = static_cast<uint16_t>(sectors >> (16 * i));
}

uint16_t checksum_word(const IdentifyData& words) {
    uint8_t sum = ata::kIdIntegritySignature;
    for (uint32_t i = 0; i < ata::kIdIntegrity; ++i) sum = static_cast<uint8_t>(sum + (words[i] & 0xff) + (words[i] >> 8));
    const auto checksum = static_cast<uint8_t>(-sum);
    return static_cast<uint16_t>((checksum << 8) | ata::kIdIntegritySignature);
}

}  // namespace

IdentifyData build_identify(std::string_view serial, uint64_t sectors, const DriveSettings& settings) {
    IdentifyData words{};
    words[ata::kIdGeneralConfig] = 0x0040;  // fixed, not removable
    put_string(words, ata::kIdSerialNumber, ata::kIdSerialChars, serial.substr(0, ata::kIdSerialChars));
    put_string(words, ata::kIdFirmwareRevision, 8, kFirmware);
    put_string(words, ata::kIdModelNumber, ata::kIdModelChars, kModel);
    words[ata::kIdMaxMultiple] = 0;  // no READ/WRITE MULTIPLE
    words[ata::kIdCapabilities] = ata::kIdCapabilityLba | ata::kIdCapabilityDma;
    words[ata::kIdValidFields] = (1u << 1) | (1u << 2);
    put_sectors(words, ata::kIdLba28Sectors, 2, std::min<uint64_t>(sectors, ata::kLba28Limit - 1));
    const uint16_t mwdma_supported = (1u << (kMaxMultiwordDmaMode + 1)) - 1;
    const uint16_t udma_supported = (1u << (kMaxUltraDmaMode + 1)) - 1;
    words[ata::kIdMultiwordDma] = static_cast<uint16_t>(
        mwdma_supported | (settings.multiword_dma_mode >= 0 ? 1u << (8 + settings.multiword_dma_mode) : 0));
    words[ata::kIdUltraDma] = static_cast<uint16_t>(
        udma_supported | (settings.ultra_dma_mode >= 0 ? 1u << (8 + settings.ultra_dma_mode) : 0));
    words[ata::kIdPioModes] = 0x0003;  // modes 3 and 4
    words[ata::kIdMinDmaCycle] = words[ata::kIdRecommendedDmaCycle] = 120;
    words[ata::kIdMinPioCycle] = words[ata::kIdMinPioCycleIordy] = 120;
    words[ata::kIdMajorVersion] = 0x01f0;  // ATA/ATAPI-4 .. ATA8-ACS
    const uint16_t sets2 = ata::kIdWordValid | ata::kIdFlushCacheExt | ata::kIdFlushCache | ata::kIdLba48;
    words[ata::kIdCommandSets1] = ata::kIdWriteCache;
    words[ata::kIdCommandSets2] = sets2;
    words[ata::kIdCommandSetsExt] = ata::kIdWordValid;
    words[ata::kIdEnabled1] = settings.write_cache ? ata::kIdWriteCache : 0;
    words[ata::kIdEnabled2] = sets2 & ~ata::kIdWordValid;
    words[ata::kIdEnabledExt] = ata::kIdWordValid;
    put_sectors(words, ata::kIdLba48Sectors, 4, std::min<uint64_t>(sectors, ata::kLba48Limit - 1));
    words[ata::kIdSectorSize] = ata::kIdWordValid;
    words[ata::kIdIntegrity] = checksum_word(words);
    return words;
}

}  // namespace hvkvm::devices::ide
