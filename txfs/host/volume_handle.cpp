#include "host/volume_handle.h"

#include <algorithm>
#include <fmt/format.h>

#include "core/crc32c.h"

namespace txfs::host {
namespace {

void collect(void* context, const NodeInfo& entry) { static_cast<std::vector<NodeInfo>*>(context)->push_back(entry); }

std::string join(const std::string& parent, const char* name, char separator) {
    return parent.empty() || parent == "/" ? (separator == '/' && parent == "/" ? "/" : "") + std::string(name)
                                           : parent + separator + name;
}

void dump_files(Volume& volume, Transaction* tx, const std::string& path, std::vector<std::string>& lines) {
    for (const NodeInfo& entry : list_directory(volume, tx, path)) {
        const std::string child = join(path, entry.name, '/');
        if (entry.type == NodeType::kDirectory) {
            lines.push_back("D " + child);
            dump_files(volume, tx, child, lines);
            continue;
        }
        if (entry.offline) {
            lines.push_back("F " + child + " OFFLINE");
            continue;
        }
        Status status = Status::kOk;
        const std::string content = read_whole_file(volume, tx, child, &status);
        lines.push_back(status == Status::kOk ? fmt::format("F {} {} {:08x}", child, content.size(), crc32c(content.data(), content.size()))
                                              : fmt::format("F {} ERROR {}", child, status_name(status)));
    }
}

void dump_registry(Volume& volume, Transaction* tx, const std::string& key, std::vector<std::string>& lines) {
    for (const NodeInfo& entry : list_key(volume, tx, key)) {
        if (entry.type == NodeType::kKey) {
            const std::string child = join(key, entry.name, '/');
            lines.push_back("K " + child);
            dump_registry(volume, tx, child, lines);
            continue;
        }
        const std::string prefix = fmt::format("V {}:{}", key, entry.name);
        if (entry.offline) {
            lines.push_back(prefix + " OFFLINE");
            continue;
        }
        Status status = Status::kOk;
        ValueType type = ValueType::kNone;
        const std::string data = read_value(volume, tx, key, entry.name, &type, &status);
        lines.push_back(status == Status::kOk
                            ? fmt::format("{} {} {} {:08x}", prefix, value_type_name(type), data.size(), crc32c(data.data(), data.size()))
                            : fmt::format("{} ERROR {}", prefix, status_name(status)));
    }
}

}  // namespace

std::vector<NodeInfo> list_directory(Volume& volume, Transaction* tx, const std::string& path, Status* status) {
    std::vector<NodeInfo> entries;
    const Status result = volume.list_directory(tx, path.c_str(), &collect, &entries);
    if (status) *status = result;
    std::sort(entries.begin(), entries.end(), [](const NodeInfo& a, const NodeInfo& b) { return std::string(a.name) < b.name; });
    return entries;
}

std::vector<NodeInfo> list_key(Volume& volume, Transaction* tx, const std::string& key, Status* status) {
    std::vector<NodeInfo> entries;
    const Status result = volume.list_key(tx, key.c_str(), &collect, &entries);
    if (status) *status = result;
    std::stable_sort(entries.begin(), entries.end(), [](const NodeInfo& a, const NodeInfo& b) {
        return std::make_pair(a.type, std::string(a.name)) < std::make_pair(b.type, std::string(b.name));
    });
    return entries;
}

std::string read_whole_file(Volume& volume, Transaction* tx, const std::string& path, Status* status) {
    NodeInfo info;
    Status result = volume.stat(tx, path.c_str(), &info);
    std::string content;
    if (result == Status::kOk) {
        content.resize(info.size);
        size_t read = 0;
        result = volume.read_file(tx, path.c_str(), 0, content.data(), content.size(), &read);
        content.resize(read);
    }
    if (status) *status = result;
    return content;
}

std::string read_value(Volume& volume, Transaction* tx, const std::string& key, const std::string& name, ValueType* type,
                       Status* status) {
    std::string data(64, '\0');
    ValueType found = ValueType::kNone;
    size_t length = data.size();
    Status result = volume.get_value(tx, key.c_str(), name.c_str(), &found, data.data(), &length);
    if (result == Status::kTooLarge) {
        data.resize(length);
        result = volume.get_value(tx, key.c_str(), name.c_str(), &found, data.data(), &length);
    }
    data.resize(result == Status::kOk ? length : 0);
    if (type) *type = found;
    if (status) *status = result;
    return data;
}

std::string dump_volume(Volume& volume, Transaction* tx) {
    std::vector<std::string> lines;
    dump_files(volume, tx, "/", lines);
    dump_registry(volume, tx, "", lines);
    std::sort(lines.begin(), lines.end());
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    return text;
}

const char* node_type_name(NodeType type) {
    switch (type) {
        case NodeType::kDirectory: return "dir";
        case NodeType::kFile: return "file";
        case NodeType::kKey: return "key";
        case NodeType::kValue: return "value";
        case NodeType::kFree: break;
    }
    return "free";
}

const char* value_type_name(ValueType type) {
    switch (type) {
        case ValueType::kString: return "string";
        case ValueType::kU32: return "u32";
        case ValueType::kU64: return "u64";
        case ValueType::kBinary: return "binary";
        case ValueType::kNone: break;
    }
    return "none";
}

}  // namespace txfs::host
