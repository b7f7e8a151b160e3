// The instructions the VMM writes into the guest's hypercall page (see hypercall_page.S).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace hvkvm::vmm {

std::span<const uint8_t> hypercall_page_code();

// Fills a guest page with the code, then int3 padding. The code goes first, over itself: when the
// guest re-enables the page it is calling through on other vCPUs, those vCPUs see the same bytes
// at every instant (nothing but the padding, which no call reaches, is ever rewritten).
void write_hypercall_page(std::span<std::byte> page);

// The page's `out %eax, $port` instructions are this long.
inline constexpr size_t kHypercallPageOutLength = 2;

// Offset in the page of its `out` to `port` (kHypercallPort, kSignalEventPort, kKickVpPort);
// nullopt for any other port.
std::optional<size_t> hypercall_page_out_offset(uint16_t port);

}  // namespace hvkvm::vmm
