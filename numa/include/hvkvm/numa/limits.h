// Limits of the virtual NUMA model, shared by the VMM (config, ACPI builder) and the guest
// (ACPI parser, allocator). Every limit is checked where outside input enters: the config, the
// ACPI parser. Tests exercise each one at the exact fit and one past.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"

namespace hvkvm::numa {

// 16 nodes: more than any current two- or four-socket host exposes (sub-NUMA clustering gives
// at most 8 on the largest parts), and with at most 64 vCPUs a guest with more nodes would have
// fewer than four vCPUs per node. It keeps the SLIT (16 x 16 bytes) and the fallback orders
// (16 x 16 node ids) small enough for the guest to hold in fixed arrays, and a node set in 32 bits.
inline constexpr uint32_t kMaxNodes = 16;
static_assert(kMaxNodes == abi::kMaxReportedNumaNodes, "the guest reports every node's counters");

// One bit per vCPU in a CpuSet; the same limit as the boot ABI's.
inline constexpr uint32_t kMaxCpus = abi::kMaxVcpus;
static_assert(kMaxCpus <= 64, "CpuSet holds the vCPUs in one 64-bit word");

// Each node's memory may be split by the 32-bit MMIO hole, so two ranges per node.
inline constexpr uint32_t kMaxMemoryRanges = 2 * kMaxNodes;

// Node ids are 0..node_count-1; this marks "no node".
inline constexpr uint32_t kNoNode = 0xffffffffu;

// A set of node ids, one bit per node.
using NodeMask = uint32_t;
static_assert(kMaxNodes <= 32, "NodeMask holds the nodes in 32 bits");

constexpr NodeMask node_bit(uint32_t node) { return NodeMask{1} << node; }
constexpr bool contains(NodeMask mask, uint32_t node) { return (mask & node_bit(node)) != 0; }

}  // namespace hvkvm::numa
