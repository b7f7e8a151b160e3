// Node distances with ACPI SLIT semantics: distance[from][to] is the relative cost of memory
// access from node `from` to memory on node `to`, normalised so that local access is 10.
//   10        the diagonal, and only the diagonal (Linux rejects a SLIT whose off-diagonal
//             entries are 10 or less, since then "remote" would be no slower than local)
//   11..254   remote
//   255       unreachable: CPUs of `from` cannot use memory of `to` at all
//   0..9      reserved by ACPI
// ACPI allows asymmetric matrices; the VMM's config is symmetric unless it says otherwise.
#pragma once

#include <stdint.h>

#include "hvkvm/numa/limits.h"

namespace hvkvm::numa {

inline constexpr uint8_t kLocalDistance = 10;
inline constexpr uint8_t kMinRemoteDistance = 11;
inline constexpr uint8_t kMaxRemoteDistance = 254;
inline constexpr uint8_t kUnreachableDistance = 255;

// A node_count x node_count matrix in the top-left corner of fixed storage. The count is held
// by whoever owns the matrix (Topology, the SLIT), so that there is one place it is stated.
struct DistanceMatrix {
    uint8_t entry[kMaxNodes][kMaxNodes] = {};

    constexpr uint8_t at(uint32_t from, uint32_t to) const { return entry[from][to]; }
    constexpr void set(uint32_t from, uint32_t to, uint8_t distance) { entry[from][to] = distance; }
    constexpr void set_symmetric(uint32_t a, uint32_t b, uint8_t distance) {
        entry[a][b] = distance;
        entry[b][a] = distance;
    }
};

enum class Symmetry {
    kRequired,  // distance[a][b] must equal distance[b][a]
    kAllowed,   // asymmetric matrices are fine (the SLIT allows them)
};

enum class DistanceProblem {
    kNone,
    kNodeCountOutOfRange,  // node_count is 0 or above kMaxNodes
    kDiagonalNotLocal,     // distance[i][i] != 10
    kReserved,             // an off-diagonal entry below 10
    kRemoteAsLocal,        // an off-diagonal entry of exactly 10
    kAsymmetric,           // distance[row][column] != distance[column][row] where symmetry is required
};

// The first problem found, scanning rows then columns; `row` and `column` locate it (both 0 for
// kNodeCountOutOfRange). A caller adds its own context: "numa.distances[1][2]: <explanation>".
struct DistanceCheck {
    DistanceProblem problem = DistanceProblem::kNone;
    uint32_t row = 0;
    uint32_t column = 0;

    bool ok() const { return problem == DistanceProblem::kNone; }
};

DistanceCheck check_distances(const DistanceMatrix& distances, uint32_t node_count, Symmetry symmetry);

// Why a problem is one, as a phrase ("must be 10: the distance from a node to itself").
const char* explain(DistanceProblem problem);

constexpr bool is_reachable(uint8_t distance) { return distance != kUnreachableDistance; }

}  // namespace hvkvm::numa
