// Crash-consistency testing: small workloads of transactions over a few files and registry keys,
// an independent model of what each committed transaction leaves, and a checker that mounts
// every crash state of a workload and compares it with the model.
//
// Oracle: a state recorded in epoch e (after e flushes) must equal the model after the last
// transaction acknowledged by flush <= e, or, if a commit was in progress, after that one: never
// a mix, never a rolled-back or failed transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/format.h"
#include "host/crash_device.h"

namespace txfs::host {

enum class OpKind { kWrite, kAppend, kTruncate, kDelete, kSetValue, kDeleteKey, kMulti, kRollback, kCheckpoint, kConflict };

struct Op {
    OpKind kind;
    int target = 0;  // file index, key index or value type, by kind
    uint32_t size = 0;
};

std::string describe(const Op& op);
std::string describe(const std::vector<Op>& ops);
// The concrete operations exhaustive workloads are built from.
std::vector<Op> standard_ops();
Op random_op(std::mt19937_64& random);

// Volume geometry of the crash tests: small, so the log wraps and checkpoints happen often.
struct CrashGeometry {
    uint64_t bytes = 192 * kBlockSize;
    uint32_t inodes = 64;
    uint32_t log_blocks = 32;
};

struct Snapshot {
    std::string state;   // canonical dump (dump_volume format)
    uint64_t acked_at;   // flush count when the commit returned
};

struct WorkloadRun {
    std::unique_ptr<RecordingDevice> device;
    std::vector<Snapshot> snapshots;  // [0] is the empty volume
    std::string failure;              // non-empty: the workload itself misbehaved (no crash needed)
};

WorkloadRun run_workload(const std::vector<Op>& ops, const CrashGeometry& geometry);

struct CrashCheckOptions {
    CrashStateOptions states;
    bool read_only_check = true;  // also mount read-only (the fsck path) before the read-write mount
    // Every Nth crash state (0: none) also has its recovery crashed: each crash state of the
    // recovery's own writes must mount to exactly what the recovery produced.
    uint64_t recovery_crash_every = 0;
};

struct CrashReport {
    uint64_t workloads = 0;
    uint64_t states = 0;
    uint64_t violations = 0;
    uint64_t recovery_states = 0;  // crash states taken during recovery (not counted in states)
    std::vector<std::string> examples;  // the first few violations, described
    void merge(const CrashReport& other);
};

// Checks one crash image of `run` taken in `epoch`; returns "" or what was wrong. With
// crash_recovery, also checks every crash state of the recovery (counted in *recovery_states).
std::string check_crash_state(const WorkloadRun& run, const std::vector<uint8_t>& image, size_t epoch, bool read_only_check,
                              bool crash_recovery = false, uint64_t* recovery_states = nullptr);

// Every crash state of one workload.
CrashReport check_workload(const std::vector<Op>& ops, const CrashGeometry& geometry, const CrashCheckOptions& options);

// Every workload of exactly `length` standard ops (ops^length of them), or every `stride`-th.
CrashReport check_all_workloads(size_t length, size_t stride, const CrashGeometry& geometry, const CrashCheckOptions& options,
                                const std::function<void(const CrashReport&)>& progress);

// `states` random crash states of random workloads of `length` ops.
CrashReport check_random_workloads(uint64_t states, size_t length, uint64_t seed, const CrashGeometry& geometry,
                                   const std::function<void(const CrashReport&)>& progress);

}  // namespace txfs::host
