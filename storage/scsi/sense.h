// Sense data: what a CHECK CONDITION reports, in fixed format (SPC-4 4.5.3), with the optional
// INFORMATION field (the first LBA a failed transfer did not move) and the sense-key specific
// field pointer (which CDB or parameter-list byte, and bit, was invalid).
#pragma once

#include <cstdint>

#include "storage/scsi/scsi_defs.h"

namespace hvkvm::storage::scsi {

inline constexpr uint32_t kFixedSenseLength = 18;

struct FieldPointer {
    bool in_cdb = true;      // else in the parameter list (data-out buffer)
    uint16_t byte = 0;
    int8_t bit = -1;         // 0..7, or -1: the whole byte
};

struct Sense {
    uint8_t key = kSenseNoSense;
    AdditionalSense code{0, 0};
    bool has_information = false;
    uint32_t information = 0;  // low 32 bits of an LBA (fixed format carries 4 bytes)
    bool has_field = false;
    FieldPointer field;

    static Sense of(uint8_t key, AdditionalSense code) {
        Sense sense;
        sense.key = key;
        sense.code = code;
        return sense;
    }
    static Sense invalid_cdb_field(uint16_t byte, int8_t bit = -1) {
        Sense sense = of(kSenseIllegalRequest, kInvalidFieldInCdb);
        sense.has_field = true;
        sense.field = {true, byte, bit};
        return sense;
    }
    static Sense invalid_parameter_field(uint16_t byte, int8_t bit = -1) {
        Sense sense = of(kSenseIllegalRequest, kInvalidFieldInParameterList);
        sense.has_field = true;
        sense.field = {false, byte, bit};
        return sense;
    }
    Sense& with_information(uint64_t value) {
        has_information = true;
        information = static_cast<uint32_t>(value);
        return *this;
    }
};

// Writes the fixed-format sense (kFixedSenseLength bytes, fewer if `capacity` is smaller) and
// returns the bytes written.
uint32_t encode_fixed_sense(const Sense& sense, uint8_t* out, uint32_t capacity);

}  // namespace hvkvm::storage::scsi
