// The freestanding VMBus library (vmbus/, linked as hvkvm_vmbus_guest) as the guest's VMBus
// driver names it. The library lives in ::hvkvm::vmbus, which this driver's own namespace
// (hvkvm::guest::vmbus) would hide, hence the aliases.
#pragma once

#include "vmbus/channel/channel_client.h"
#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/protocol/channel_messages.h"
#include "vmbus/protocol/message_codec.h"
#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"

namespace hvkvm::guest::vmbus {

namespace protocol = ::hvkvm::vmbus::protocol;
namespace ring = ::hvkvm::vmbus::ring;
namespace client = ::hvkvm::vmbus::channel;
using ::hvkvm::vmbus::GpaRange;
using ::hvkvm::vmbus::GpaRangeList;
using ::hvkvm::vmbus::kHvPageSize;

}  // namespace hvkvm::guest::vmbus
