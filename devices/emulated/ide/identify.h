// IDENTIFY DEVICE data for one emulated disk (abi/ata.h IdentifyWord): what the controller
// offers (LBA28 and LBA48, PIO modes 0-4, multiword DMA 0-2, Ultra DMA 0-5, write cache, FLUSH
// CACHE (EXT)) and its current settings.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace hvkvm::devices::ide {

struct DriveSettings {
    bool write_cache = true;
    // The selected transfer modes (SET FEATURES): at most one of these is set.
    int8_t multiword_dma_mode = -1;
    int8_t ultra_dma_mode = 2;
};

inline constexpr uint8_t kMaxPioMode = 4;
inline constexpr uint8_t kMaxMultiwordDmaMode = 2;
inline constexpr uint8_t kMaxUltraDmaMode = 5;

using IdentifyData = std::array<uint16_t, 256>;

// `serial` is the disk's id (the first 20 characters).
IdentifyData build_identify(std::string_view serial, uint64_t sectors, const DriveSettings& settings);

}  // namespace hvkvm::devices::ide
