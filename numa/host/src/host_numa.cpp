#include "hvkvm/numa/host/host_numa.h"

#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>

namespace hvkvm::numa::host {
namespace {

// Node masks passed to the kernel cover 1024 nodes, the largest MAX_NUMNODES x86-64 builds with.
constexpr size_t kKernelNodeMaskBits = 1024;
constexpr size_t kBitsPerWord = 8 * sizeof(unsigned long);
using KernelNodeMask = std::array<unsigned long, kKernelNodeMaskBits / kBitsPerWord>;
// The kernel reads maxnode - 1 bits (a historical off-by-one that libnuma also compensates for).
constexpr unsigned long kKernelMaxNode = kKernelNodeMaskBits + 1;

struct BitmaskDeleter {
    void operator()(bitmask* mask) const { numa_bitmask_free(mask); }
};
using Bitmask = std::unique_ptr<bitmask, BitmaskDeleter>;

[[noreturn]] void fail(int error, const std::string& what) { throw HostNumaError(error, what); }

void require_numa_support() {
    if (numa_available() < 0) fail(ENOSYS, "the host kernel has no NUMA support (numa_available failed)");
}

std::vector<uint32_t> cpus_of_node(uint32_t node) {
    Bitmask cpus(numa_allocate_cpumask());
    if (numa_node_to_cpus(static_cast<int>(node), cpus.get()) < 0)
        fail(errno, "reading the CPUs of host NUMA node " + std::to_string(node));
    std::vector<uint32_t> list;
    for (unsigned int cpu = 0; cpu < cpus->size; ++cpu)
        if (numa_bitmask_isbitset(cpus.get(), cpu)) list.push_back(cpu);
    return list;
}

std::string describe_ids(const std::vector<HostNode>& nodes) {
    std::string text;
    for (const HostNode& node : nodes) text += (text.empty() ? "" : ", ") + std::to_string(node.id);
    return text.empty() ? "none" : text;
}

HostNode find_node(uint32_t node) {
    std::vector<HostNode> nodes = host_nodes();
    for (HostNode& candidate : nodes)
        if (candidate.id == node) return std::move(candidate);
    fail(ENODEV, "host NUMA node " + std::to_string(node) + " does not exist (this host has node(s) " +
                     describe_ids(nodes) + ")");
}

HostNode find_memory_node(uint32_t node) {
    HostNode found = find_node(node);
    if (found.memory_bytes == 0) fail(EINVAL, "host NUMA node " + std::to_string(node) + " has no memory");
    if (!found.memory_allowed)
        fail(EPERM, "host NUMA node " + std::to_string(node) + " is outside this process's cpuset (cpuset.mems)");
    return found;
}

size_t page_size() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

std::vector<uint32_t> cpus_in(const cpu_set_t& set) {
    std::vector<uint32_t> list;
    for (uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) list.push_back(cpu);
    return list;
}

cpu_set_t node_cpu_set(uint32_t node) {
    HostNode found = find_node(node);
    if (found.cpus.empty()) fail(EINVAL, "host NUMA node " + std::to_string(node) + " has no CPUs to pin to");
    cpu_set_t set;
    CPU_ZERO(&set);
    for (uint32_t cpu : found.cpus)
        if (cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
    return set;
}

}  // namespace

std::vector<HostNode> host_nodes() {
    require_numa_support();
    std::vector<HostNode> nodes;
    for (int id = 0; id <= numa_max_node(); ++id) {
        if (!numa_bitmask_isbitset(numa_nodes_ptr, static_cast<unsigned int>(id))) continue;
        HostNode node;
        node.id = static_cast<uint32_t>(id);
        long long size = numa_node_size64(id, nullptr);
        node.memory_bytes = size > 0 ? static_cast<uint64_t>(size) : 0;
        node.memory_allowed = numa_bitmask_isbitset(numa_all_nodes_ptr, static_cast<unsigned int>(id));
        node.cpus = cpus_of_node(node.id);
        nodes.push_back(std::move(node));
    }
    return nodes;
}

void bind_memory_to_node(void* address, size_t size, uint32_t node) {
    find_memory_node(node);
    if (reinterpret_cast<uintptr_t>(address) % page_size() != 0)
        fail(EINVAL, "binding memory to host NUMA node " + std::to_string(node) + ": start is not page-aligned");
    KernelNodeMask mask{};
    mask[node / kBitsPerWord] = 1ul << (node % kBitsPerWord);
    if (::mbind(address, size, MPOL_BIND, mask.data(), kKernelMaxNode, MPOL_MF_MOVE | MPOL_MF_STRICT) != 0)
        fail(errno, "mbind of " + std::to_string(size >> 20) + " MiB to host NUMA node " + std::to_string(node));
}

MemoryPolicy memory_policy_at(const void* address) {
    KernelNodeMask mask{};
    int mode = 0;
    if (::get_mempolicy(&mode, mask.data(), kKernelMaxNode, const_cast<void*>(address), MPOL_F_ADDR) != 0)
        fail(errno, "get_mempolicy(MPOL_F_ADDR)");
    MemoryPolicy policy;
    policy.mode = mode;
    for (uint32_t node = 0; node < kKernelNodeMaskBits; ++node)
        if ((mask[node / kBitsPerWord] >> (node % kBitsPerWord)) & 1) policy.nodes.push_back(node);
    return policy;
}

std::vector<int> nodes_of_pages(const void* address, size_t size) {
    const size_t page = page_size();
    const uintptr_t first = reinterpret_cast<uintptr_t>(address) & ~(page - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(address) + size;
    std::vector<void*> pages;
    for (uintptr_t at = first; at < end; at += page) pages.push_back(reinterpret_cast<void*>(at));
    std::vector<int> status(pages.size(), 0);
    // With no target nodes, move_pages only reports where each page is.
    if (::move_pages(0, pages.size(), pages.data(), nullptr, status.data(), 0) != 0) fail(errno, "move_pages (query)");
    return status;
}

void pin_current_thread_to_node(uint32_t node) {
    cpu_set_t set = node_cpu_set(node);
    if (::sched_setaffinity(0, sizeof(set), &set) != 0)
        fail(errno, "pinning a thread to the CPUs of host NUMA node " + std::to_string(node));
}

void pin_thread_to_node(pthread_t thread, uint32_t node) {
    cpu_set_t set = node_cpu_set(node);
    if (int error = ::pthread_setaffinity_np(thread, sizeof(set), &set); error != 0)
        fail(error, "pinning a thread to the CPUs of host NUMA node " + std::to_string(node));
}

std::vector<uint32_t> current_thread_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) fail(errno, "sched_getaffinity");
    return cpus_in(set);
}

}  // namespace hvkvm::numa::host
