#include "fs/txfs/update.h"

#include <stdarg.h>

#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "lib/format.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::fs {
namespace {

constexpr const char* kComponents[kComponentCount] = {"hvkernel", "hvstorage", "hvnetwork",
                                                       "hvvideo",  "hvinput",   "hvtime"};
constexpr const char* kDirectories[] = {"/Windows", "/Windows/System32"};
constexpr const char* kKeys[] = {"Software", "Software/Hvkvm", "Software/Hvkvm/Update",
                                 "Software/Hvkvm/Update/Components"};
constexpr const char* kUpdateKey = "Software/Hvkvm/Update";
constexpr const char* kComponentsKey = "Software/Hvkvm/Update/Components";

// Sizes from under one block to four blocks, so updates move direct blocks of several files.
uint64_t component_size(uint32_t index) { return 1200 + uint64_t{index} * 2900; }
constexpr uint64_t kLargestComponent = 1200 + uint64_t{kComponentCount - 1} * 2900;

void component_path(uint32_t index, char (&path)[64]) {
    format(path, sizeof(path), "/Windows/System32/%s.dll", kComponents[index]);
}

// The file's whole content for a version: a header line the host can read, then printable filler
// that differs per version and component (so a stale block is always noticed).
uint64_t fill_component(uint8_t* bytes, uint32_t index, uint64_t version) {
    const uint64_t size = component_size(index);
    const size_t header = format(reinterpret_cast<char*>(bytes), size, "hvkvm update version=%lu component=%s\n",
                                 version, kComponents[index]);
    for (uint64_t i = header; i < size; ++i)
        bytes[i] = i % 64 == 63 ? '\n' : static_cast<uint8_t>('a' + (i + version * 7 + index) % 26);
    return size;
}

class HeapBytes {
public:
    explicit HeapBytes(size_t bytes) : data_(static_cast<uint8_t*>(mm::allocate(bytes, 512))) {}
    ~HeapBytes() { mm::free(data_); }
    HeapBytes(const HeapBytes&) = delete;
    HeapBytes& operator=(const HeapBytes&) = delete;
    uint8_t* data() const { return data_; }

private:
    uint8_t* data_;
};

bool created_or_present(txfs::Status status) {
    return status == txfs::Status::kOk || status == txfs::Status::kAlreadyExists;
}

txfs::Status write_component(txfs::Volume& volume, txfs::Transaction* tx, uint32_t index, uint64_t version,
                             uint8_t* scratch, uint64_t* bytes) {
    char path[64];
    component_path(index, path);
    txfs::Status status = volume.create_file(tx, path);
    if (!created_or_present(status)) return status;
    const uint64_t size = fill_component(scratch, index, version);
    if ((status = volume.truncate_file(tx, path, 0)) != txfs::Status::kOk) return status;
    if ((status = volume.write_file(tx, path, 0, scratch, size)) != txfs::Status::kOk) return status;
    *bytes += size;
    char text[24];
    const size_t length = format(text, sizeof(text), "%lu", version);
    return volume.set_value(tx, kComponentsKey, kComponents[index], txfs::ValueType::kString, text, length);
}

txfs::Status stage_update(txfs::Volume& volume, txfs::Transaction* tx, uint64_t version, const UpdateOptions& options,
                          uint8_t* scratch, UpdateResult& result) {
    txfs::Status status = txfs::Status::kOk;
    for (const char* directory : kDirectories)
        if (!created_or_present(status = volume.create_directory(tx, directory))) return status;
    for (const char* key : kKeys)
        if (!created_or_present(status = volume.create_key(tx, key))) return status;
    for (uint32_t i = 0; i < kComponentCount; ++i) {
        if ((status = write_component(volume, tx, i, version, scratch, &result.bytes)) != txfs::Status::kOk) return status;
        if (options.print_progress)
            kprint("txfs update: version %lu: [%u/%u] /Windows/System32/%s.dll (%lu bytes) and its registry value staged\n",
                   version, i + 1, kComponentCount, kComponents[i], component_size(i));
    }
    const uint32_t components = kComponentCount;
    if ((status = volume.set_value(tx, kUpdateKey, "Components", txfs::ValueType::kU32, &components, 4)) != txfs::Status::kOk)
        return status;
    return volume.set_value(tx, kUpdateKey, "Version", txfs::ValueType::kU64, &version, 8);
}

__attribute__((format(printf, 2, 3))) void set_problem(InstalledUpdate* installed, const char* format_string, ...) {
    va_list arguments;
    va_start(arguments, format_string);
    format_v(installed->problem, sizeof(installed->problem), format_string, arguments);
    va_end(arguments);
    installed->consistent = false;
}

// Whether component `index` is on the volume as `version` wants: its file and its value both
// present with the version's content, or (version 0) both absent.
bool check_component(txfs::Volume& volume, uint32_t index, uint64_t version, uint8_t* expected, uint8_t* actual,
                     InstalledUpdate* installed) {
    char path[64];
    component_path(index, path);
    const uint64_t size = component_size(index);
    size_t read = 0;
    const txfs::Status file = volume.read_file(nullptr, path, 0, actual, size + 1, &read);
    char text[24];
    size_t length = sizeof(text) - 1;
    txfs::ValueType type;
    const txfs::Status value = volume.get_value(nullptr, kComponentsKey, kComponents[index], &type, text, &length);
    if (version == 0) {
        if (file == txfs::Status::kNotFound && value == txfs::Status::kNotFound) return true;
        set_problem(installed, "no version installed, yet %s is %s and its value %s", path, txfs::status_name(file),
                    txfs::status_name(value));
        return false;
    }
    if (file != txfs::Status::kOk || value != txfs::Status::kOk) {
        set_problem(installed, "version %lu: %s: file %s, value %s", version, path, txfs::status_name(file),
                    txfs::status_name(value));
        return false;
    }
    fill_component(expected, index, version);
    if (read != size || memcmp(expected, actual, size) != 0) {
        set_problem(installed, "version %lu: %s holds %lu bytes not of this version (\"%.40s\")", version, path, read,
                    reinterpret_cast<const char*>(actual));
        return false;
    }
    char wanted[24];
    const size_t wanted_length = format(wanted, sizeof(wanted), "%lu", version);
    if (type != txfs::ValueType::kString || length != wanted_length || memcmp(text, wanted, length) != 0) {
        text[length] = '\0';
        set_problem(installed, "version %lu: value %s is \"%s\"", version, kComponents[index], text);
        return false;
    }
    return true;
}

}  // namespace

txfs::Status install_update(GuestVolume& volume, uint64_t version, const UpdateOptions& options, UpdateResult* result) {
    *result = {};
    HeapBytes scratch(kLargestComponent);
    if (!scratch.data()) return txfs::Status::kNoMemory;
    const uint64_t start = time::now_ns();
    const uint64_t flushes_before = volume.disk().stats().flushes;
    txfs::Volume& v = volume.volume();
    txfs::Transaction* tx = nullptr;
    txfs::Status status = v.begin(&tx);
    if (status != txfs::Status::kOk) return status;
    if (options.print_progress) kprint("txfs update: version %lu: transaction begun\n", version);
    status = stage_update(v, tx, version, options, scratch.data(), *result);
    if (status != txfs::Status::kOk) {
        v.rollback(tx);
        return status;
    }
    if (options.print_progress) kprint("txfs update: version %lu: committing\n", version);
    status = v.commit(tx);
    result->commit_ns = time::now_ns() - start;
    result->device_flushes = volume.disk().stats().flushes - flushes_before;
    return status;
}

txfs::Status read_installed_update(GuestVolume& volume, InstalledUpdate* installed) {
    *installed = {};
    txfs::Volume& v = volume.volume();
    uint64_t version = 0;
    size_t length = sizeof(version);
    txfs::ValueType type;
    const txfs::Status status = v.get_value(nullptr, kUpdateKey, "Version", &type, &version, &length);
    if (status == txfs::Status::kOk && (type != txfs::ValueType::kU64 || length != 8 || version == 0)) {
        set_problem(installed, "Version value is malformed");
        installed->present = true;
        return txfs::Status::kOk;
    }
    if (status != txfs::Status::kOk && status != txfs::Status::kNotFound) return status;
    installed->present = status == txfs::Status::kOk;
    installed->version = installed->present ? version : 0;
    HeapBytes expected(kLargestComponent + 1), actual(kLargestComponent + 1);
    if (!expected.data() || !actual.data()) return txfs::Status::kNoMemory;
    installed->consistent = true;
    for (uint32_t i = 0; i < kComponentCount && installed->consistent; ++i)
        check_component(v, i, installed->version, expected.data(), actual.data(), installed);
    return txfs::Status::kOk;
}

}  // namespace hvkvm::guest::fs
