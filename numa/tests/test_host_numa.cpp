// Host NUMA placement on the real host: binding a memfd mapping (as the VMM maps guest RAM) to a
// node, reading the policy and the pages' nodes back, pinning threads, and the errors for nodes
// that do not exist. Written for any host; this machine has one node (0).
#include <catch2/catch.hpp>

#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <thread>

#include "hvkvm/numa/host/host_numa.h"

namespace hvkvm::numa::test {
namespace {

using Catch::Matchers::Contains;
using host::HostNode;
using host::HostNumaError;

// A shared memfd mapping like the VMM's guest RAM, unmapped and closed at the end of the test.
class MemfdMapping {
public:
    explicit MemfdMapping(size_t size) : size_(size) {
        fd_ = ::memfd_create("numa-test", MFD_CLOEXEC);
        REQUIRE(fd_ >= 0);
        REQUIRE(::ftruncate(fd_, static_cast<off_t>(size)) == 0);
        address_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
        REQUIRE(address_ != MAP_FAILED);
    }
    ~MemfdMapping() {
        if (address_ != MAP_FAILED) ::munmap(address_, size_);
        if (fd_ >= 0) ::close(fd_);
    }
    MemfdMapping(const MemfdMapping&) = delete;
    MemfdMapping& operator=(const MemfdMapping&) = delete;

    char* bytes() const { return static_cast<char*>(address_); }
    size_t size() const { return size_; }

private:
    size_t size_;
    int fd_ = -1;
    void* address_ = MAP_FAILED;
};

// The host's nodes, or nullopt (with the reason printed as a skip) if it has no NUMA support.
std::optional<std::vector<HostNode>> nodes_or_skip() {
    try {
        return host::host_nodes();
    } catch (const HostNumaError& error) {
        WARN("SKIPPED: " << error.what());
        return std::nullopt;
    }
}

// The first node this process may allocate on, which must exist on any host with NUMA support.
const HostNode& usable_memory_node(const std::vector<HostNode>& nodes) {
    auto found = std::find_if(nodes.begin(), nodes.end(),
                              [](const HostNode& node) { return node.memory_bytes > 0 && node.memory_allowed; });
    REQUIRE(found != nodes.end());
    return *found;
}

uint32_t absent_node(const std::vector<HostNode>& nodes) { return nodes.back().id + 1; }

TEST_CASE("host numa: nodes are listed ascending, with memory and disjoint CPUs") {
    auto nodes = nodes_or_skip();
    if (!nodes) return;
    REQUIRE_FALSE(nodes->empty());
    usable_memory_node(*nodes);
    std::vector<uint32_t> all_cpus;
    for (size_t i = 0; i < nodes->size(); ++i) {
        if (i > 0) CHECK((*nodes)[i - 1].id < (*nodes)[i].id);
        CHECK(std::is_sorted((*nodes)[i].cpus.begin(), (*nodes)[i].cpus.end()));
        all_cpus.insert(all_cpus.end(), (*nodes)[i].cpus.begin(), (*nodes)[i].cpus.end());
    }
    std::sort(all_cpus.begin(), all_cpus.end());
    CHECK(std::adjacent_find(all_cpus.begin(), all_cpus.end()) == all_cpus.end());
    CHECK(all_cpus.size() >= 1);
}

TEST_CASE("host numa: a memfd mapping bound to a node reads back as bound, and its pages land there") {
    auto nodes = nodes_or_skip();
    if (!nodes) return;
    const HostNode& node = usable_memory_node(*nodes);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    MemfdMapping memory(64 * page);

    CHECK(host::memory_policy_at(memory.bytes()).mode == MPOL_DEFAULT);
    host::bind_memory_to_node(memory.bytes(), memory.size(), node.id);

    host::MemoryPolicy policy = host::memory_policy_at(memory.bytes() + 17 * page);
    CHECK(policy.mode == MPOL_BIND);
    CHECK(policy.nodes == std::vector<uint32_t>{node.id});

    // Nothing is allocated until touched.
    std::vector<int> before = host::nodes_of_pages(memory.bytes(), memory.size());
    REQUIRE(before.size() == 64);
    CHECK(std::count(before.begin(), before.end(), -ENOENT) == 64);

    for (size_t offset = 0; offset < memory.size(); offset += page) memory.bytes()[offset] = 1;
    std::vector<int> after = host::nodes_of_pages(memory.bytes(), memory.size());
    REQUIRE(after.size() == 64);
    CHECK(std::count(after.begin(), after.end(), static_cast<int>(node.id)) == 64);
}

TEST_CASE("host numa: binding to a node that does not exist is a clear error") {
    auto nodes = nodes_or_skip();
    if (!nodes) return;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    MemfdMapping memory(4 * page);
    for (uint32_t missing : {absent_node(*nodes), 5000u}) {
        const std::string expected = "host NUMA node " + std::to_string(missing) + " does not exist";
        CHECK_THROWS_WITH(host::bind_memory_to_node(memory.bytes(), memory.size(), missing), Contains(expected));
        CHECK_THROWS_WITH(host::pin_current_thread_to_node(missing), Contains(expected));
    }
    // The policy is untouched by the failed calls.
    CHECK(host::memory_policy_at(memory.bytes()).mode == MPOL_DEFAULT);
}

TEST_CASE("host numa: an unaligned start is refused before mbind sees it") {
    auto nodes = nodes_or_skip();
    if (!nodes) return;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    MemfdMapping memory(4 * page);
    CHECK_THROWS_WITH(host::bind_memory_to_node(memory.bytes() + 8, page, usable_memory_node(*nodes).id),
                      Contains("not page-aligned"));
}

TEST_CASE("host numa: a thread pinned to a node runs only on that node's CPUs") {
    auto nodes = nodes_or_skip();
    if (!nodes) return;
    const HostNode* node_with_cpus = nullptr;
    for (const HostNode& node : *nodes)
        if (!node.cpus.empty() && !node_with_cpus) node_with_cpus = &node;
    REQUIRE(node_with_cpus != nullptr);

    // A fresh thread, so that the test runner's own affinity is not changed.
    std::vector<uint32_t> allowed_before, pinned;
    std::string failure;
    std::thread worker([&] {
        try {
            allowed_before = host::current_thread_cpus();
            host::pin_current_thread_to_node(node_with_cpus->id);
            pinned = host::current_thread_cpus();
        } catch (const std::exception& error) {
            failure = error.what();
        }
    });
    worker.join();
    REQUIRE(failure.empty());
    std::vector<uint32_t> expected;
    std::set_intersection(node_with_cpus->cpus.begin(), node_with_cpus->cpus.end(), allowed_before.begin(),
                          allowed_before.end(), std::back_inserter(expected));
    CHECK(pinned == expected);

    // Pinning another thread by its handle, as the VMM would pin a vCPU thread it started.
    std::atomic<bool> release{false};
    std::thread other([&] {
        while (!release.load()) std::this_thread::yield();
    });
    host::pin_thread_to_node(other.native_handle(), node_with_cpus->id);
    cpu_set_t set;
    CPU_ZERO(&set);
    const int read_error = ::pthread_getaffinity_np(other.native_handle(), sizeof(set), &set);
    release = true;
    other.join();
    REQUIRE(read_error == 0);
    std::vector<uint32_t> observed;
    for (uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) observed.push_back(cpu);
    CHECK(observed == expected);
}

}  // namespace
}  // namespace hvkvm::numa::test
