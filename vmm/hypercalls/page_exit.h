// Which PIO exits are hypercalls. The hypercall page's ports (kHypercallPort and the two
// doorbells) are answered in registers (RAX, and RCX for doorbells), which is only sound for the
// page's own `out %eax, $port`: any other access (a string instruction above all, which KVM
// completes from its registers after the exit; another size; the same `out` elsewhere in guest
// code) is an ordinary access to a port no device claims, and leaves every register alone.
#pragma once

#include <cstdint>

#include "exits/guest_code.h"
#include "exits/pio_exit.h"

namespace hvkvm::vmm {

class Hypervisor;

bool is_hypercall_page_port(uint16_t port);

// True if `exit` came from the enabled hypercall page's `out` to its port. `code` is what guest
// memory holds at the vCPU's RIP and `dx` the guest's DX. Hosts differ in where RIP points at a
// plain OUT's exit: hardware-virtualized KVM leaves it on the instruction (and skips it on
// re-entry), PVM hosts have already moved past it; KVM's emulator (string I/O) leaves it on the
// instruction. So: if the instruction at RIP explains the exit, it is the one, and must be the
// page's non-string `out`; otherwise RIP must sit right after the page's `out`.
bool is_hypercall_page_out(const PioExit& exit, const GuestCode& code, uint16_t dx, const Hypervisor& hypervisor);

}  // namespace hvkvm::vmm
