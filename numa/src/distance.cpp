#include "hvkvm/numa/distance.h"

namespace hvkvm::numa {
namespace {

DistanceProblem check_entry(uint32_t row, uint32_t column, uint8_t distance) {
    if (row == column) return distance == kLocalDistance ? DistanceProblem::kNone : DistanceProblem::kDiagonalNotLocal;
    if (distance < kLocalDistance) return DistanceProblem::kReserved;
    if (distance == kLocalDistance) return DistanceProblem::kRemoteAsLocal;
    return DistanceProblem::kNone;  // 11..254 remote, 255 unreachable
}

}  // namespace

DistanceCheck check_distances(const DistanceMatrix& distances, uint32_t node_count, Symmetry symmetry) {
    if (node_count == 0 || node_count > kMaxNodes) return {DistanceProblem::kNodeCountOutOfRange, 0, 0};
    for (uint32_t row = 0; row < node_count; ++row) {
        for (uint32_t column = 0; column < node_count; ++column) {
            DistanceProblem problem = check_entry(row, column, distances.at(row, column));
            if (problem != DistanceProblem::kNone) return {problem, row, column};
        }
    }
    if (symmetry == Symmetry::kRequired) {
        for (uint32_t row = 0; row < node_count; ++row)
            for (uint32_t column = row + 1; column < node_count; ++column)
                if (distances.at(row, column) != distances.at(column, row))
                    return {DistanceProblem::kAsymmetric, row, column};
    }
    return {};
}

const char* explain(DistanceProblem problem) {
    switch (problem) {
    case DistanceProblem::kNone: return "valid";
    case DistanceProblem::kNodeCountOutOfRange: return "the node count must be 1..16";
    case DistanceProblem::kDiagonalNotLocal: return "must be 10, the distance from a node to itself";
    case DistanceProblem::kReserved: return "0..9 are reserved; remote is 11..254, unreachable 255";
    case DistanceProblem::kRemoteAsLocal: return "10 means local; remote is 11..254, unreachable 255";
    case DistanceProblem::kAsymmetric: return "differs from the mirrored entry; distances must be symmetric";
    }
    return "unknown problem";
}
static_assert(kMaxNodes == 16, "explain(kNodeCountOutOfRange) states the limit");

}  // namespace hvkvm::numa
