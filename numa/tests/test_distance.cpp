// SLIT rules for distance matrices: every rule at its boundary, and the location reported.
#include <catch2/catch.hpp>

#include "hvkvm/numa/distance.h"
#include "test_support.h"

namespace hvkvm::numa::test {
namespace {

DistanceCheck check_with(uint32_t row, uint32_t column, uint8_t value, Symmetry symmetry = Symmetry::kAllowed) {
    DistanceMatrix distances = uniform_distances(4, 20);
    distances.set(row, column, value);
    return check_distances(distances, 4, symmetry);
}

TEST_CASE("distances: node count 1..kMaxNodes is accepted, 0 and kMaxNodes + 1 are not") {
    CHECK(check_distances(uniform_distances(1, 20), 1, Symmetry::kRequired).ok());
    CHECK(check_distances(uniform_distances(kMaxNodes, 20), kMaxNodes, Symmetry::kRequired).ok());
    CHECK(check_distances(uniform_distances(kMaxNodes, 20), kMaxNodes + 1, Symmetry::kRequired).problem ==
          DistanceProblem::kNodeCountOutOfRange);
    CHECK(check_distances(uniform_distances(1, 20), 0, Symmetry::kRequired).problem ==
          DistanceProblem::kNodeCountOutOfRange);
}

TEST_CASE("distances: the diagonal must be exactly 10") {
    CHECK(check_with(2, 2, 10).ok());
    for (uint8_t wrong : {uint8_t{0}, uint8_t{9}, uint8_t{11}, uint8_t{255}}) {
        DistanceCheck check = check_with(2, 2, wrong);
        CHECK(check.problem == DistanceProblem::kDiagonalNotLocal);
        CHECK(check.row == 2);
        CHECK(check.column == 2);
    }
}

TEST_CASE("distances: remote entries are 11..254 or 255, never 10 or below") {
    CHECK(check_with(1, 3, 11).ok());
    CHECK(check_with(1, 3, 254).ok());
    CHECK(check_with(1, 3, 255).ok());
    DistanceCheck ten = check_with(1, 3, 10);
    CHECK(ten.problem == DistanceProblem::kRemoteAsLocal);
    CHECK((ten.row == 1 && ten.column == 3));
    CHECK(check_with(1, 3, 9).problem == DistanceProblem::kReserved);
    CHECK(check_with(1, 3, 0).problem == DistanceProblem::kReserved);
}

TEST_CASE("distances: asymmetry is reported at the upper-triangle entry when symmetry is required") {
    CHECK(check_with(3, 1, 30, Symmetry::kAllowed).ok());
    DistanceCheck check = check_with(3, 1, 30, Symmetry::kRequired);
    CHECK(check.problem == DistanceProblem::kAsymmetric);
    CHECK((check.row == 1 && check.column == 3));
    // Unreachable one way only is asymmetric too.
    CHECK(check_with(0, 2, 255, Symmetry::kRequired).problem == DistanceProblem::kAsymmetric);
}

TEST_CASE("distances: a value problem is reported before an asymmetry elsewhere") {
    DistanceMatrix distances = uniform_distances(3, 20);
    distances.set(0, 1, 30);  // asymmetric
    distances.set(2, 1, 5);   // reserved, later in row order
    DistanceCheck check = check_distances(distances, 3, Symmetry::kRequired);
    CHECK(check.problem == DistanceProblem::kReserved);
    CHECK((check.row == 2 && check.column == 1));
}

TEST_CASE("distances: entries outside node_count x node_count are not looked at") {
    DistanceMatrix distances = uniform_distances(2, 20);
    distances.set(2, 2, 0);
    distances.set(0, 5, 3);
    CHECK(check_distances(distances, 2, Symmetry::kRequired).ok());
}

TEST_CASE("distances: every problem has its own explanation") {
    const DistanceProblem problems[] = {DistanceProblem::kNodeCountOutOfRange, DistanceProblem::kDiagonalNotLocal,
                                        DistanceProblem::kReserved, DistanceProblem::kRemoteAsLocal,
                                        DistanceProblem::kAsymmetric};
    for (DistanceProblem a : problems)
        for (DistanceProblem b : problems)
            if (a != b) CHECK(std::string(explain(a)) != explain(b));
    CHECK(std::string(explain(DistanceProblem::kRemoteAsLocal)).find("11..254") != std::string::npos);
}

}  // namespace
}  // namespace hvkvm::numa::test
