// Fallback orders: hand-worked cases (docs/numa.md walks through two of them), properties every
// order has, and agreement with the independent reference on thousands of random matrices.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hvkvm/numa/fallback_order.h"
#include "reference_fallback_order.h"
#include "test_support.h"

namespace hvkvm::numa::test {
namespace {

using Orders = std::vector<std::vector<uint32_t>>;

struct Case {
    DistanceMatrix distances;
    std::vector<ReferenceNode> nodes;

    uint32_t node_count() const { return static_cast<uint32_t>(nodes.size()); }
    FallbackInput input() const {
        FallbackInput input{node_count(), 0, 0, &distances};
        for (uint32_t node = 0; node < node_count(); ++node) {
            if (nodes[node].has_memory) input.with_memory |= node_bit(node);
            if (nodes[node].has_cpus) input.with_cpus |= node_bit(node);
        }
        return input;
    }
    std::vector<std::vector<int>> distance_rows() const {
        std::vector<std::vector<int>> rows(node_count(), std::vector<int>(node_count()));
        for (uint32_t from = 0; from < node_count(); ++from)
            for (uint32_t to = 0; to < node_count(); ++to) rows[from][to] = distances.at(from, to);
        return rows;
    }
    std::string describe() const {
        std::ostringstream text;
        for (uint32_t from = 0; from < node_count(); ++from) {
            text << "node " << from << (nodes[from].has_memory ? " mem" : " ---") << (nodes[from].has_cpus ? " cpu" : " ---")
                 << " |";
            for (uint32_t to = 0; to < node_count(); ++to) text << ' ' << int(distances.at(from, to));
            text << '\n';
        }
        return text.str();
    }
};

Orders production_orders(const Case& test_case) {
    FallbackOrders orders = compute_fallback_orders(test_case.input());
    Orders result;
    for (uint32_t local = 0; local < orders.node_count; ++local)
        result.emplace_back(orders[local].nodes, orders[local].nodes + orders[local].count);
    return result;
}

Orders reference_orders(const Case& test_case) {
    return reference_fallback_orders(test_case.distance_rows(), test_case.nodes);
}

Case all_with_cpus_and_memory(DistanceMatrix distances, uint32_t node_count) {
    return Case{distances, std::vector<ReferenceNode>(node_count)};
}

void check_both(const Case& test_case, const Orders& expected) {
    INFO(test_case.describe());
    CHECK(production_orders(test_case) == expected);
    CHECK(reference_orders(test_case) == expected);
}

TEST_CASE("fallback order: one node falls back to nothing") {
    check_both(all_with_cpus_and_memory(uniform_distances(1, 20), 1), {{0}});
}

TEST_CASE("fallback order: equal distances rotate, starting above the local node") {
    // Candidates below the local node score one more, so node 1 tries 2 and 3 before 0.
    check_both(all_with_cpus_and_memory(uniform_distances(4, 20), 4),
               {{0, 1, 2, 3}, {1, 2, 3, 0}, {2, 3, 0, 1}, {3, 0, 1, 2}});
}

TEST_CASE("fallback order: a ring is walked nearest first") {
    Case ring = all_with_cpus_and_memory(distances_from_rows({{10, 20, 30, 20},  //
                                                              {20, 10, 20, 30},
                                                              {30, 20, 10, 20},
                                                              {20, 30, 20, 10}}),
                                         4);
    check_both(ring, {{0, 1, 3, 2}, {1, 2, 0, 3}, {2, 3, 1, 0}, {3, 0, 2, 1}});
}

TEST_CASE("fallback order: CPU-less memory nodes take overflow first, and loads spread it") {
    // Nodes 2 and 3 have memory but no CPUs. Node 0 puts both before node 1, taking 2 first and
    // raising its load; so node 1, facing the same tie between 2 and 3, takes 3 first.
    Case headless = all_with_cpus_and_memory(uniform_distances(4, 20), 4);
    headless.nodes[2].has_cpus = false;
    headless.nodes[3].has_cpus = false;
    check_both(headless, {{0, 2, 3, 1}, {1, 3, 2, 0}, {2, 3, 0, 1}, {3, 2, 0, 1}});
}

TEST_CASE("fallback order: a memoryless node starts with its nearest memory") {
    Case memoryless = all_with_cpus_and_memory(distances_from_rows({{10, 20, 30},  //
                                                                    {20, 10, 20},
                                                                    {30, 20, 10}}),
                                               3);
    memoryless.nodes[1].has_memory = false;
    // Node 1 appears in no order; its own order starts with node 2 (above it) among equals.
    check_both(memoryless, {{0, 2}, {2, 0}, {2, 0}});
}

TEST_CASE("fallback order: unreachable nodes are left out") {
    Case unreachable = all_with_cpus_and_memory(distances_from_rows({{10, 20, 255},  //
                                                                     {20, 10, 20},
                                                                     {255, 20, 10}}),
                                                3);
    check_both(unreachable, {{0, 1}, {1, 2, 0}, {2, 1}});
}

TEST_CASE("fallback order: asymmetric distances use the local node's row") {
    Case cycle = all_with_cpus_and_memory(distances_from_rows({{10, 30, 20},  //
                                                               {20, 10, 30},
                                                               {30, 20, 10}}),
                                          3);
    check_both(cycle, {{0, 2, 1}, {1, 0, 2}, {2, 1, 0}});
}

TEST_CASE("fallback order: the penalties can outweigh one unit of distance") {
    // From node 2, node 0 is nearer (20 vs 21) but has CPUs and sits below node 2 (20 + 2 = 22),
    // while node 3 is CPU-less and above (21 + 0): node 3 comes first, as in Linux.
    Case close = all_with_cpus_and_memory(distances_from_rows({{10, 40, 20, 40},  //
                                                               {40, 10, 40, 40},
                                                               {20, 40, 10, 21},
                                                               {40, 40, 21, 10}}),
                                          4);
    close.nodes[3].has_cpus = false;
    check_both(close, {{0, 2, 3, 1}, {1, 3, 2, 0}, {2, 3, 0, 1}, {3, 2, 0, 1}});
}

TEST_CASE("fallback order: the topology overload uses the topology's memory and CPUs") {
    Topology topology = simple_topology(3);
    topology.node_cpus[0] = CpuSet::range(0, 2);
    topology.node_cpus[1] = CpuSet();  // node 1: memory only
    topology.memory_ranges[2].node = 0;  // node 2: CPUs only
    REQUIRE(validate_topology(topology, 3, Symmetry::kRequired).is_ok());
    FallbackOrders orders = compute_fallback_orders(topology);
    REQUIRE(orders.node_count == 3);
    CHECK(std::vector<uint8_t>(orders[0].nodes, orders[0].nodes + orders[0].count) == std::vector<uint8_t>{0, 1});
    CHECK(std::vector<uint8_t>(orders[1].nodes, orders[1].nodes + orders[1].count) == std::vector<uint8_t>{1, 0});
    CHECK(std::vector<uint8_t>(orders[2].nodes, orders[2].nodes + orders[2].count) == std::vector<uint8_t>{1, 0});
}

// --- random matrices ---------------------------------------------------------------------------

// Distances drawn from a small palette, so that ties (where the penalties, the loads and the ids
// decide) are common; sometimes asymmetric, sometimes with unreachable pairs.
Case random_case(std::mt19937_64& random) {
    const uint32_t node_count = std::uniform_int_distribution<uint32_t>(1, kMaxNodes)(random);
    std::vector<uint8_t> palette;
    const uint32_t palette_size = std::uniform_int_distribution<uint32_t>(1, 5)(random);
    for (uint32_t i = 0; i < palette_size; ++i)
        palette.push_back(static_cast<uint8_t>(std::uniform_int_distribution<int>(kMinRemoteDistance, kMaxRemoteDistance)(random)));
    if (random() % 4 == 0) palette.push_back(kUnreachableDistance);
    if (random() % 3 == 0) palette.push_back(static_cast<uint8_t>(palette[0] + 1));  // off-by-one vs penalties
    const bool symmetric = random() % 2 == 0;
    auto pick = [&] { return palette[random() % palette.size()]; };

    Case test_case;
    test_case.nodes.resize(node_count);
    for (uint32_t from = 0; from < node_count; ++from) {
        test_case.distances.set(from, from, kLocalDistance);
        for (uint32_t to = symmetric ? from + 1 : 0; to < node_count; ++to) {
            if (to == from) continue;
            if (symmetric) test_case.distances.set_symmetric(from, to, pick());
            else test_case.distances.set(from, to, pick());
        }
        test_case.nodes[from].has_memory = random() % 5 != 0;
        test_case.nodes[from].has_cpus = random() % 4 != 0;
    }
    test_case.nodes[random() % node_count].has_memory = true;
    return test_case;
}

TEST_CASE("fallback order: matches the reference on 5000 random matrices") {
    std::mt19937_64 random(0x6e756d61);  // fixed seed: a failure reproduces
    const Symmetry allowed = Symmetry::kAllowed;
    for (int i = 0; i < 5000; ++i) {
        Case test_case = random_case(random);
        REQUIRE(check_distances(test_case.distances, test_case.node_count(), allowed).ok());
        INFO("matrix " << i << ":\n" << test_case.describe());
        REQUIRE(production_orders(test_case) == reference_orders(test_case));
    }
}

TEST_CASE("fallback order: every order lists each reachable memory node once, nearest groups first") {
    std::mt19937_64 random(0x7a6f6e65);
    for (int i = 0; i < 2000; ++i) {
        Case test_case = random_case(random);
        INFO("matrix " << i << ":\n" << test_case.describe());
        Orders orders = production_orders(test_case);
        REQUIRE(orders.size() == test_case.node_count());
        for (uint32_t local = 0; local < test_case.node_count(); ++local) {
            const std::vector<uint32_t>& order = orders[local];
            std::vector<uint32_t> expected_members;
            for (uint32_t node = 0; node < test_case.node_count(); ++node)
                if (test_case.nodes[node].has_memory && is_reachable(test_case.distances.at(local, node)))
                    expected_members.push_back(node);
            std::vector<uint32_t> members = order;
            std::sort(members.begin(), members.end());
            REQUIRE(members == expected_members);
            if (test_case.nodes[local].has_memory) REQUIRE(order.front() == local);
            // After the local node, distance plus penalties (at most 2) never decreases by more
            // than the penalties can account for.
            const size_t first_remote = test_case.nodes[local].has_memory ? 1 : 0;
            for (size_t k = first_remote; k + 1 < order.size(); ++k) {
                REQUIRE(test_case.distances.at(local, order[k]) <= test_case.distances.at(local, order[k + 1]) + 2);
            }
        }
    }
}

TEST_CASE("fallback order: input beyond the limits yields no orders rather than overrunning") {
    DistanceMatrix distances = uniform_distances(kMaxNodes, 20);
    CHECK(compute_fallback_orders(FallbackInput{kMaxNodes + 1, ~NodeMask{0}, 0, &distances}).node_count == 0);
    CHECK(compute_fallback_orders(FallbackInput{kMaxNodes, ~NodeMask{0}, 0, &distances}).node_count == kMaxNodes);
    CHECK(compute_fallback_orders(FallbackInput{2, 3, 0, nullptr}).node_count == 0);
}

}  // namespace
}  // namespace hvkvm::numa::test
