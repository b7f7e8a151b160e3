// SLIT: N localities (the guest's nodes) and their N x N distances.
#include "hvkvm/numa/distance.h"
#include "parser_internal.h"

namespace hvkvm::acpi::detail {

Status parse_slit(const TableRef& slit, ParsedTables& out) {
    if (Status status = check_table_shape(slit, kSlitRevision, sizeof(SlitHeader)); !status) return status;
    SlitHeader header{};
    copy_bytes(&header, slit.bytes, sizeof(header));
    const uint64_t count = header.locality_count;
    if (count == 0 || count > numa::kMaxNodes)
        return Status::failure("SLIT: %llu localities; 1..%u are supported", as_ull(count), numa::kMaxNodes);
    const uint64_t expected_length = sizeof(SlitHeader) + count * count;
    if (slit.length != expected_length)
        return Status::failure("SLIT: length %u, but %llu localities need %llu", slit.length, as_ull(count),
                               as_ull(expected_length));

    const uint32_t nodes = static_cast<uint32_t>(count);
    numa::DistanceMatrix& distances = out.topology.distances;
    for (uint32_t from = 0; from < nodes; ++from)
        for (uint32_t to = 0; to < nodes; ++to) distances.set(from, to, slit.bytes[sizeof(SlitHeader) + from * nodes + to]);
    numa::DistanceCheck check = numa::check_distances(distances, nodes, numa::Symmetry::kAllowed);
    if (!check.ok())
        return Status::failure("SLIT entry [%u][%u] = %u: %s", check.row, check.column, distances.at(check.row, check.column),
                               numa::explain(check.problem));
    out.topology.node_count = nodes;
    return Status::ok();
}

}  // namespace hvkvm::acpi::detail
