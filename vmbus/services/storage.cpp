#include "vmbus/services/storage.h"

namespace hvkvm::vmbus::services::storage {

const char* operation_name(uint32_t operation) {
    switch (static_cast<Operation>(operation)) {
        case Operation::kCompleteIo: return "COMPLETE_IO";
        case Operation::kRemoveDevice: return "REMOVE_DEVICE";
        case Operation::kExecuteSrb: return "EXECUTE_SRB";
        case Operation::kResetLun: return "RESET_LUN";
        case Operation::kResetAdapter: return "RESET_ADAPTER";
        case Operation::kResetBus: return "RESET_BUS";
        case Operation::kBeginInitialization: return "BEGIN_INITIALIZATION";
        case Operation::kEndInitialization: return "END_INITIALIZATION";
        case Operation::kQueryProtocolVersion: return "QUERY_PROTOCOL_VERSION";
        case Operation::kQueryProperties: return "QUERY_PROPERTIES";
        case Operation::kEnumerateBus: return "ENUMERATE_BUS";
        case Operation::kFcHbaData: return "FC_HBA_DATA";
        case Operation::kCreateSubChannels: return "CREATE_SUB_CHANNELS";
    }
    return "unknown";
}

const char* srb_status_name(uint8_t srb_status) {
    switch (srb_status_code(srb_status)) {
        case kSrbStatusPending: return "pending";
        case kSrbStatusSuccess: return "success";
        case kSrbStatusAborted: return "aborted";
        case kSrbStatusError: return "error";
        case kSrbStatusInvalidRequest: return "invalid request";
        case kSrbStatusTimeout: return "timeout";
        case kSrbStatusSelectionTimeout: return "selection timeout";
        case kSrbStatusBusReset: return "bus reset";
        case kSrbStatusDataOverrun: return "data overrun";
        case kSrbStatusInvalidLun: return "invalid LUN";
        case kSrbStatusInternalError: return "internal error";
    }
    return "unknown";
}

}  // namespace hvkvm::vmbus::services::storage
