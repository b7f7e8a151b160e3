// The host's NUMA nodes, and placing guest memory and vCPU threads on them: memory ranges bound
// to a node with mbind (read back with get_mempolicy and move_pages), threads pinned to a
// node's CPUs. Host only; built on libnuma (numa.h for the topology, numaif.h for the system
// calls). Every failure is a HostNumaError whose message names the node and what is wrong.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace hvkvm::numa::host {

class HostNumaError : public std::system_error {
public:
    HostNumaError(int error, const std::string& what) : std::system_error(error, std::generic_category(), what) {}
};

struct HostNode {
    uint32_t id = 0;
    uint64_t memory_bytes = 0;         // 0 for a CPU-only node
    bool memory_allowed = false;       // this process may allocate there (its cpuset's mems)
    std::vector<uint32_t> cpus;        // host CPU numbers, ascending
};

// Nodes that exist on this host, ascending by id. Throws if the kernel has no NUMA support.
std::vector<HostNode> host_nodes();

// Binds the pages of [address, address + size) (page-aligned start) to host node `node` with
// MPOL_BIND: later faults allocate there and nowhere else. Pages already present elsewhere are
// migrated, and the call fails if one cannot be (MPOL_MF_MOVE | MPOL_MF_STRICT). For a shared
// memfd mapping the policy belongs to the file's pages, so every mapping of them follows it.
// Throws for a node that does not exist, has no memory or is outside this process's cpuset.
void bind_memory_to_node(void* address, size_t size, uint32_t node);

// The policy in force at `address`, as get_mempolicy(MPOL_F_ADDR) reports it.
struct MemoryPolicy {
    int mode = 0;                 // MPOL_DEFAULT, MPOL_BIND, MPOL_PREFERRED, ...
    std::vector<uint32_t> nodes;  // the policy's nodes, ascending
};
MemoryPolicy memory_policy_at(const void* address);

// For each page of [address, address + size), the node it is on (move_pages without moving),
// or a negative errno: -ENOENT for a page not yet touched.
std::vector<int> nodes_of_pages(const void* address, size_t size);

// Restricts a thread to the CPUs of host node `node` (throws if the node has none, or none that
// this process may use).
void pin_current_thread_to_node(uint32_t node);
void pin_thread_to_node(pthread_t thread, uint32_t node);

// The CPUs the calling thread may run on, ascending.
std::vector<uint32_t> current_thread_cpus();

}  // namespace hvkvm::numa::host
