#include "host/workload.h"

#include <algorithm>
#include <fmt/format.h>
#include <set>

#include "core/crc32c.h"
#include "core/volume.h"
#include "host/file_device.h"
#include "host/host_platform.h"
#include "host/volume_handle.h"

namespace txfs::host {
namespace {

const char* const kFiles[] = {"/a", "/d/b"};
const char* const kKeys[] = {"S", "S/T"};
constexpr uint64_t kVolumeId = 0x7478667363726173ull;

// The independent model: what the committed state must contain.
struct Model {
    std::set<std::string> directories;
    std::map<std::string, std::string> files;
    std::map<std::string, std::map<std::string, std::pair<ValueType, std::string>>> keys;

    std::string dump() const {
        std::vector<std::string> lines;
        for (const auto& directory : directories) lines.push_back("D " + directory);
        for (const auto& [path, content] : files)
            lines.push_back(fmt::format("F {} {} {:08x}", path, content.size(), crc32c(content.data(), content.size())));
        for (const auto& [key, values] : keys) {
            lines.push_back("K " + key);
            for (const auto& [name, value] : values)
                lines.push_back(fmt::format("V {}:{} {} {} {:08x}", key, name, value_type_name(value.first), value.second.size(),
                                            crc32c(value.second.data(), value.second.size())));
        }
        std::sort(lines.begin(), lines.end());
        std::string text;
        for (const auto& line : lines) text += line + "\n";
        return text;
    }
};

std::string content(uint32_t seed, uint32_t size) {
    std::string bytes(size, '\0');
    for (uint32_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((seed * 131 + i * 7 + i / kBlockSize) & 0xff);
    return bytes;
}

// Runs ops against a volume and the model side by side; any unexpected status is a failure.
class Executor {
public:
    Executor(Volume& volume, RecordingDevice& device, WorkloadRun& run) : volume_(volume), device_(device), run_(run) {}

    bool execute(const Op& op, uint32_t sequence) {
        sequence_ = sequence;
        switch (op.kind) {
            case OpKind::kCheckpoint: return expect(volume_.checkpoint(), "checkpoint");
            case OpKind::kRollback: return rollback_op();
            case OpKind::kConflict: return conflict_op();
            default: break;
        }
        Model next = committed_;
        Transaction* tx = nullptr;
        if (!expect(volume_.begin(&tx), "begin")) return false;
        bool changed = false;
        if (!apply(op, tx, next, &changed)) {
            volume_.rollback(tx);
            return false;
        }
        if (!changed) {
            volume_.rollback(tx);
            return true;
        }
        if (!expect(volume_.commit(tx), "commit")) return false;
        committed_ = next;
        return snapshot();
    }

    bool snapshot() {
        const std::string state = committed_.dump();
        const std::string live = dump_volume(volume_);
        if (live != state) return fail("live state differs from the model:\n--- live\n" + live + "--- model\n" + state);
        run_.snapshots.push_back(Snapshot{state, device_.flush_count()});
        return true;
    }

private:
    bool fail(const std::string& what) {
        if (run_.failure.empty()) run_.failure = fmt::format("op {}: {}", sequence_, what);
        return false;
    }
    bool expect(Status status, const char* what) {
        return status == Status::kOk || fail(fmt::format("{} returned {}", what, status_name(status)));
    }

    bool ensure_file(Transaction* tx, Model& model, const std::string& path) {
        if (path.rfind("/d/", 0) == 0 && !model.directories.count("/d")) {
            if (!expect(volume_.create_directory(tx, "/d"), "mkdir /d")) return false;
            model.directories.insert("/d");
        }
        if (!model.files.count(path)) {
            if (!expect(volume_.create_file(tx, path.c_str()), "create")) return false;
            model.files[path];
        }
        return true;
    }

    bool ensure_key(Transaction* tx, Model& model, const std::string& key) {
        for (const std::string& prefix : {std::string("S"), key}) {
            if (model.keys.count(prefix)) continue;
            if (!expect(volume_.create_key(tx, prefix.c_str()), "create key")) return false;
            model.keys[prefix];
        }
        return true;
    }

    bool write(Transaction* tx, Model& model, const std::string& path, uint64_t offset, const std::string& data) {
        if (!ensure_file(tx, model, path)) return false;
        if (!expect(volume_.write_file(tx, path.c_str(), offset, data.data(), data.size()), "write")) return false;
        std::string& file = model.files[path];
        if (file.size() < offset + data.size()) file.resize(offset + data.size(), '\0');
        file.replace(offset, data.size(), data);
        return true;
    }

    bool set_value(Transaction* tx, Model& model, const std::string& key, ValueType type, const std::string& data) {
        if (!ensure_key(tx, model, key)) return false;
        if (!expect(volume_.set_value(tx, key.c_str(), "v", type, data.data(), data.size()), "set value")) return false;
        model.keys[key]["v"] = {type, data};
        return true;
    }

    bool remove_file(Transaction* tx, Model& model, const std::string& path) {
        if (!model.files.count(path)) return true;
        if (!expect(volume_.remove(tx, path.c_str()), "remove")) return false;
        model.files.erase(path);
        return true;
    }

    bool apply(const Op& op, Transaction* tx, Model& model, bool* changed) {
        const std::string file = kFiles[op.target % 2];
        const std::string key = kKeys[op.target % 2];
        *changed = true;
        switch (op.kind) {
            case OpKind::kWrite:
                if (!ensure_file(tx, model, file) || !expect(volume_.truncate_file(tx, file.c_str(), 0), "truncate")) return false;
                model.files[file].clear();
                return write(tx, model, file, 0, content(sequence_, op.size));
            case OpKind::kAppend: {
                const uint64_t end = model.files.count(file) ? model.files[file].size() : 0;
                return write(tx, model, file, end, content(sequence_, op.size));
            }
            case OpKind::kTruncate:
                if (!model.files.count(file)) return *changed = false, true;
                if (!expect(volume_.truncate_file(tx, file.c_str(), op.size), "truncate")) return false;
                model.files[file].resize(op.size, '\0');
                return true;
            case OpKind::kDelete:
                if (!model.files.count(file)) return *changed = false, true;
                return remove_file(tx, model, file);
            case OpKind::kSetValue: {
                const ValueType type = op.size == 4 ? ValueType::kU32 : op.size == 300 ? ValueType::kString : ValueType::kBinary;
                return set_value(tx, model, key, type, content(sequence_, op.size));
            }
            case OpKind::kDeleteKey: {
                if (!model.keys.count(key)) return *changed = false, true;
                if (!expect(volume_.delete_key_tree(tx, key.c_str()), "delete key tree")) return false;
                for (auto it = model.keys.begin(); it != model.keys.end();)
                    it = (it->first == key || it->first.rfind(key + "/", 0) == 0) ? model.keys.erase(it) : std::next(it);
                return true;
            }
            case OpKind::kMulti:  // a file, a registry value and a delete, atomically
                return write(tx, model, kFiles[0], 0, content(sequence_, 5000)) &&
                       set_value(tx, model, kKeys[1], ValueType::kU64, content(sequence_, 8)) &&
                       remove_file(tx, model, kFiles[1]);
            default:
                return fail("unexpected op");
        }
    }

    bool rollback_op() {
        Model scratch = committed_;
        Transaction* tx = nullptr;
        if (!expect(volume_.begin(&tx), "begin")) return false;
        if (!write(tx, scratch, kFiles[0], 0, content(sequence_, 7000)) ||
            !set_value(tx, scratch, kKeys[0], ValueType::kU32, content(sequence_, 4))) {
            volume_.rollback(tx);
            return false;
        }
        volume_.rollback(tx);
        if (dump_volume(volume_) != committed_.dump()) return fail("rolled-back changes are visible");
        return true;
    }

    // Two transactions write the same file: the second must get a conflict, not wait or win.
    bool conflict_op() {
        Model next = committed_;
        Transaction* first = nullptr;
        Transaction* second = nullptr;
        if (!expect(volume_.begin(&first), "begin") || !expect(volume_.begin(&second), "begin")) return false;
        bool ok = write(first, next, kFiles[0], 0, content(sequence_, 2000));
        if (ok) {
            const Status status = volume_.write_file(second, kFiles[0], 0, "x", 1);
            const Status create_status = volume_.create_file(second, kFiles[0]);
            if (status != Status::kConflict && create_status != Status::kConflict)
                ok = fail(fmt::format("second writer got {} / {}, not a conflict", status_name(status), status_name(create_status)));
        }
        volume_.rollback(second);
        if (!ok) {
            volume_.rollback(first);
            return false;
        }
        if (!expect(volume_.commit(first), "commit")) return false;
        committed_ = next;
        return snapshot();
    }

    Volume& volume_;
    RecordingDevice& device_;
    WorkloadRun& run_;
    Model committed_;
    uint32_t sequence_ = 0;
};

std::vector<uint8_t> formatted_image(const CrashGeometry& geometry) {
    MemoryDevice device(geometry.bytes);
    HostPlatform platform;
    FormatOptions options;
    options.inode_count = geometry.inodes;
    options.log_blocks = geometry.log_blocks;
    options.volume_id = kVolumeId;
    if (Volume::format(device, platform, options) != Status::kOk) return {};
    return device.bytes();
}

MountOptions crash_mount_options(bool read_only) {
    MountOptions options;
    options.read_only = read_only;
    options.repair_worker = false;
    return options;
}

std::string check_errors(Volume& volume) {
    std::string errors;
    CheckSummary summary;
    volume.check(
        [](void* context, Finding finding, const char* message) {
            if (finding == Finding::kError) *static_cast<std::string*>(context) += std::string("  fsck: ") + message + "\n";
        },
        &errors, &summary);
    return errors;
}

}  // namespace

std::string describe(const Op& op) {
    switch (op.kind) {
        case OpKind::kWrite: return fmt::format("write({},{})", kFiles[op.target % 2], op.size);
        case OpKind::kAppend: return fmt::format("append({},{})", kFiles[op.target % 2], op.size);
        case OpKind::kTruncate: return fmt::format("truncate({},{})", kFiles[op.target % 2], op.size);
        case OpKind::kDelete: return fmt::format("delete({})", kFiles[op.target % 2]);
        case OpKind::kSetValue: return fmt::format("set({}:v,{} bytes)", kKeys[op.target % 2], op.size);
        case OpKind::kDeleteKey: return fmt::format("delete-tree({})", kKeys[op.target % 2]);
        case OpKind::kMulti: return "multi(write /a + set S/T:v + delete /d/b)";
        case OpKind::kRollback: return "rollback(write /a + set S:v)";
        case OpKind::kCheckpoint: return "checkpoint";
        case OpKind::kConflict: return "conflict(2 writers of /a)";
    }
    return "?";
}

std::string describe(const std::vector<Op>& ops) {
    std::string text;
    for (const Op& op : ops) text += (text.empty() ? "" : "; ") + describe(op);
    return text;
}

std::vector<Op> standard_ops() {
    std::vector<Op> ops;
    for (int file = 0; file < 2; ++file)
        for (uint32_t size : {100u, 5000u, 45000u}) ops.push_back({OpKind::kWrite, file, size});
    ops.push_back({OpKind::kAppend, 0, 3000});
    ops.push_back({OpKind::kAppend, 1, 3000});
    ops.push_back({OpKind::kTruncate, 0, 1000});
    ops.push_back({OpKind::kTruncate, 1, 0});
    ops.push_back({OpKind::kDelete, 0, 0});
    ops.push_back({OpKind::kDelete, 1, 0});
    ops.push_back({OpKind::kSetValue, 0, 4});
    ops.push_back({OpKind::kSetValue, 1, 300});
    ops.push_back({OpKind::kSetValue, 1, 6000});
    ops.push_back({OpKind::kDeleteKey, 0, 0});
    ops.push_back({OpKind::kMulti, 0, 0});
    ops.push_back({OpKind::kRollback, 0, 0});
    ops.push_back({OpKind::kCheckpoint, 0, 0});
    ops.push_back({OpKind::kConflict, 0, 0});
    return ops;
}

Op random_op(std::mt19937_64& random) {
    static const std::vector<Op> ops = standard_ops();
    Op op = ops[random() % ops.size()];
    if (op.kind == OpKind::kWrite || op.kind == OpKind::kAppend) op.size = 1 + static_cast<uint32_t>(random() % 50000);
    if (op.kind == OpKind::kTruncate) op.size = static_cast<uint32_t>(random() % 20000);
    return op;
}

WorkloadRun run_workload(const std::vector<Op>& ops, const CrashGeometry& geometry) {
    WorkloadRun run;
    std::vector<uint8_t> base = formatted_image(geometry);
    if (base.empty()) {
        run.failure = "mkfs failed";
        return run;
    }
    run.device = std::make_unique<RecordingDevice>(std::move(base));
    run.snapshots.push_back(Snapshot{"", 0});  // the empty volume (the dump of nothing)
    HostPlatform platform;
    Volume* mounted = nullptr;
    if (Status status = Volume::mount(*run.device, platform, crash_mount_options(false), &mounted); status != Status::kOk) {
        run.failure = std::string("mount after mkfs: ") + status_name(status);
        return run;
    }
    VolumePtr volume(mounted);
    Executor executor(*volume, *run.device, run);
    for (size_t index = 0; index < ops.size(); ++index)
        if (!executor.execute(ops[index], static_cast<uint32_t>(index + 1))) break;
    return run;
}

std::string check_crash_state(const WorkloadRun& run, const std::vector<uint8_t>& image, size_t epoch, bool read_only_check,
                              bool crash_recovery, uint64_t* recovery_states) {
    // The last snapshot durable in this epoch, and the one whose commit may have been under way.
    size_t durable = 0;
    for (size_t i = 0; i < run.snapshots.size(); ++i)
        if (run.snapshots[i].acked_at <= epoch) durable = i;
    std::vector<const std::string*> acceptable{&run.snapshots[durable].state};
    if (durable + 1 < run.snapshots.size()) acceptable.push_back(&run.snapshots[durable + 1].state);
    auto allowed = [&](const std::string& state) {
        return std::any_of(acceptable.begin(), acceptable.end(), [&](const std::string* s) { return *s == state; });
    };
    auto expected_text = [&] {
        std::string text;
        for (const std::string* state : acceptable) text += "--- acceptable\n" + *state;
        return text;
    };
    // Mounts `device`, runs fsck and returns the contents; "" in *problem if all went well.
    HostPlatform platform;
    auto recover = [&](BlockDevice& device, bool read_only, std::string* problem) {
        Volume* mounted = nullptr;
        if (Status status = Volume::mount(device, platform, crash_mount_options(read_only), &mounted); status != Status::kOk) {
            *problem = fmt::format("mount failed: {}", status_name(status));
            return std::string();
        }
        VolumePtr volume(mounted);
        if (std::string errors = check_errors(*volume); !errors.empty()) *problem = "fsck found errors:\n" + errors;
        return dump_volume(*volume);
    };

    std::string problem;
    if (read_only_check) {
        MemoryDevice device(image.size());
        device.bytes() = image;
        const std::string state = recover(device, true, &problem);
        if (!problem.empty()) return "read-only mount: " + problem;
        if (!allowed(state)) return "read-only mount: recovered state is not a committed state:\n--- recovered\n" + state + expected_text();
    }
    // The read-write recovery runs on a recording device only when its own crashes are checked.
    std::unique_ptr<RecordingDevice> recording;
    MemoryDevice after(0);
    if (crash_recovery) recording = std::make_unique<RecordingDevice>(image);
    else after.bytes() = image;
    const std::string recovered = recover(recording ? static_cast<BlockDevice&>(*recording) : after, false, &problem);
    if (!problem.empty()) return "mount: " + problem;
    if (!allowed(recovered)) return "mount: recovered state is not a committed state:\n--- recovered\n" + recovered + expected_text();

    // Recovery must itself leave a clean volume: mount once more after the read-write recovery.
    if (recording) after.bytes() = recording->contents();
    {
        Volume* again = nullptr;
        if (Status status = Volume::mount(after, platform, crash_mount_options(false), &again); status != Status::kOk)
            return fmt::format("second mount failed: {}", status_name(status));
        VolumePtr volume(again);
        if (volume->stats().records_replayed != 0) return "second mount replayed records: recovery did not checkpoint";
        if (std::string errors = check_errors(*volume); !errors.empty()) return "second mount: fsck found errors:\n" + errors;
        if (dump_volume(*volume) != recovered) return "second mount: state changed";
    }
    if (!crash_recovery) return "";
    // A power cut during recovery: every state of the recovery's writes must recover to the same.
    CrashStateOptions options;
    options.exhaustive_limit = 4;
    options.random_subsets = 2;
    std::string failure;
    const uint64_t visited = enumerate_crash_states(*recording, options, [&](const std::vector<uint8_t>& state, size_t, const std::string& what) {
        MemoryDevice crashed(state.size());
        crashed.bytes() = state;
        std::string recovery_problem;
        const std::string contents = recover(crashed, false, &recovery_problem);
        if (!recovery_problem.empty()) failure = "crash during recovery (" + what + "): " + recovery_problem;
        else if (contents != recovered) failure = "crash during recovery (" + what + "): contents differ:\n" + contents + "--- expected\n" + recovered;
        return failure.empty();
    });
    if (recovery_states) *recovery_states += visited;
    return failure;
}

void CrashReport::merge(const CrashReport& other) {
    workloads += other.workloads;
    states += other.states;
    violations += other.violations;
    recovery_states += other.recovery_states;
    for (const auto& example : other.examples)
        if (examples.size() < 5) examples.push_back(example);
}

CrashReport check_workload(const std::vector<Op>& ops, const CrashGeometry& geometry, const CrashCheckOptions& options) {
    CrashReport report;
    report.workloads = 1;
    const WorkloadRun run = run_workload(ops, geometry);
    if (!run.failure.empty()) {
        ++report.violations;
        report.examples.push_back("workload [" + describe(ops) + "] failed without a crash: " + run.failure);
        return report;
    }
    enumerate_crash_states(*run.device, options.states, [&](const std::vector<uint8_t>& image, size_t epoch, const std::string& what) {
        const bool crash_recovery = options.recovery_crash_every && (report.states + 1) % options.recovery_crash_every == 0;
        ++report.states;
        const std::string problem = check_crash_state(run, image, epoch, options.read_only_check, crash_recovery, &report.recovery_states);
        if (!problem.empty()) {
            ++report.violations;
            if (report.examples.size() < 5)
                report.examples.push_back("workload [" + describe(ops) + "], crash state " + what + ": " + problem);
        }
        return true;
    });
    return report;
}

CrashReport check_all_workloads(size_t length, size_t stride, const CrashGeometry& geometry, const CrashCheckOptions& options,
                                const std::function<void(const CrashReport&)>& progress) {
    const std::vector<Op> ops = standard_ops();
    CrashReport total;
    std::vector<size_t> digits(length, 0);
    for (uint64_t counter = 0;; ++counter) {
        if (counter % (stride ? stride : 1) == 0) {
            std::vector<Op> workload;
            for (size_t digit : digits) workload.push_back(ops[digit]);
            total.merge(check_workload(workload, geometry, options));
            if (progress && total.workloads % 50 == 0) progress(total);
        }
        size_t position = 0;
        while (position < length && ++digits[position] == ops.size()) digits[position++] = 0;
        if (position == length) break;
    }
    return total;
}

CrashReport check_random_workloads(uint64_t states, size_t length, uint64_t seed, const CrashGeometry& geometry,
                                   const std::function<void(const CrashReport&)>& progress) {
    std::mt19937_64 random(seed);
    CrashReport total;
    std::vector<uint8_t> image;
    while (total.states < states) {
        std::vector<Op> workload;
        for (size_t i = 0; i < length; ++i) workload.push_back(random_op(random));
        const WorkloadRun run = run_workload(workload, geometry);
        ++total.workloads;
        if (!run.failure.empty()) {
            ++total.violations;
            if (total.examples.size() < 5) total.examples.push_back("workload [" + describe(workload) + "] failed: " + run.failure);
            continue;
        }
        for (int sample = 0; sample < 100 && total.states < states; ++sample) {
            size_t epoch;
            std::string what;
            random_crash_state(*run.device, random, image, &epoch, &what);
            ++total.states;
            const std::string problem = check_crash_state(run, image, epoch, false);
            if (!problem.empty()) {
                ++total.violations;
                if (total.examples.size() < 5)
                    total.examples.push_back("workload [" + describe(workload) + "], crash state " + what + ": " + problem);
            }
        }
        if (progress && total.workloads % 20 == 0) progress(total);
    }
    return total;
}

}  // namespace txfs::host
