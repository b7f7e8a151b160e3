// Host conveniences around the core's C-style API: an owning Volume handle, listing into
// std::vector, and a canonical text dump of everything a volume holds (used as the oracle of
// the crash tests and by `txfs dump`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/volume.h"

namespace txfs::host {

struct VolumeCloser {
    void operator()(Volume* volume) const { Volume::destroy(volume); }  // no checkpoint: a "power cut"
};
using VolumePtr = std::unique_ptr<Volume, VolumeCloser>;

std::vector<NodeInfo> list_directory(Volume& volume, Transaction* tx, const std::string& path, Status* status = nullptr);
std::vector<NodeInfo> list_key(Volume& volume, Transaction* tx, const std::string& key, Status* status = nullptr);
// Whole file; status receives the first error.
std::string read_whole_file(Volume& volume, Transaction* tx, const std::string& path, Status* status = nullptr);
std::string read_value(Volume& volume, Transaction* tx, const std::string& key, const std::string& name,
                       ValueType* type = nullptr, Status* status = nullptr);

// One line per directory, file, key and value, sorted: "F /d/b <size> <crc32c>", "V S/T v <type>
// <size> <crc32c>" and so on. Offline objects show as "... OFFLINE"; read errors as "ERROR".
std::string dump_volume(Volume& volume, Transaction* tx = nullptr);

const char* node_type_name(NodeType type);
const char* value_type_name(ValueType type);

}  // namespace txfs::host
