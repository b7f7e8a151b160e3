// The registry: hierarchical keys with typed values, enumeration, subtree deletion, transacted
// together with files.
#include <catch2/catch.hpp>
#include <cstdio>

#include "core/crc32c.h"

#include "fixture.h"

using namespace txfs;
using txfs::test::Fixture;
using txfs::test::pattern;

TEST_CASE("Registry keys hold typed values - enumerate lists subkeys then values") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_key(tx, "Software") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Software/Contoso") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Software/Contoso") == Status::kAlreadyExists);
    REQUIRE(f.volume->create_key(tx, "Missing/Child") == Status::kNotFound);
    REQUIRE(f.volume->set_value(tx, "Missing", "v", ValueType::kString, "x", 1) == Status::kNotFound);  // found by fuzzing
    const uint32_t u32 = 7;
    const uint64_t u64 = 1ull << 40;
    const std::string text = "Contoso", blob = pattern(9000, 1);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "U32", ValueType::kU32, &u32, 4) == Status::kOk);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "U64", ValueType::kU64, &u64, 8) == Status::kOk);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "Name", ValueType::kString, text.data(), text.size()) == Status::kOk);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "Blob", ValueType::kBinary, blob.data(), blob.size()) == Status::kOk);
    // Sizes of fixed-width types are checked exactly.
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "Bad", ValueType::kU32, &u64, 8) == Status::kInvalidArgument);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "Bad", ValueType::kU64, &u32, 4) == Status::kInvalidArgument);
    REQUIRE(f.volume->set_value(tx, "Software/Contoso", "Bad", ValueType::kNone, &u32, 4) == Status::kInvalidArgument);
    // A subkey and a value may share a name, as in the Windows registry.
    REQUIRE(f.volume->create_key(tx, "Software/Contoso/Name") == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);

    f.crash_and_remount();
    const auto entries = host::list_key(*f.volume, nullptr, "Software/Contoso");
    REQUIRE(entries.size() == 5);
    REQUIRE(entries[0].type == NodeType::kKey);
    REQUIRE(std::string(entries[0].name) == "Name");
    ValueType type;
    REQUIRE(host::read_value(*f.volume, nullptr, "Software/Contoso", "U64", &type) == std::string(reinterpret_cast<const char*>(&u64), 8));
    REQUIRE(type == ValueType::kU64);
    REQUIRE(host::read_value(*f.volume, nullptr, "Software/Contoso", "Name", &type) == text);
    REQUIRE(type == ValueType::kString);
    REQUIRE(host::read_value(*f.volume, nullptr, "Software/Contoso", "Blob") == blob);
    uint8_t small[2];
    size_t length = sizeof(small);
    REQUIRE(f.volume->get_value(nullptr, "Software/Contoso", "U32", &type, small, &length) == Status::kTooLarge);
    REQUIRE(length == 4);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Deleting a key tree removes its values and subkeys in one transaction") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_key(tx, "A") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "A/B") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "A/B/C") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Keep") == Status::kOk);
    for (const char* key : {"A", "A/B", "A/B/C", "Keep"})
        REQUIRE(f.volume->set_value(tx, key, "v", ValueType::kString, "data", 4) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    tx = f.begin();
    REQUIRE(f.volume->delete_key_tree(tx, "A") == Status::kOk);
    REQUIRE(host::list_key(*f.volume, tx, "").size() == 1);
    REQUIRE(host::list_key(*f.volume, nullptr, "").size() == 2);  // not yet committed
    REQUIRE(f.volume->delete_key_tree(tx, "") == Status::kInvalidArgument);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    f.remount();
    REQUIRE(host::dump_volume(*f.volume) == "K Keep\nV Keep:v string 4 " + [] {
        char hex[16];
        std::snprintf(hex, sizeof(hex), "%08x", crc32c("data", 4));
        return std::string(hex);
    }() + "\n");
    REQUIRE(f.fsck_errors() == 0);
}

namespace {

// One "update": replace both DLLs and record the version in the registry, in one transaction.
Transaction* stage_update(Fixture& f, const std::string& version) {
    Transaction* tx = f.begin();
    for (const char* dll : {"/system/a.dll", "/system/b.dll"}) {
        const std::string content = std::string(dll) + " " + version + " " + pattern(20000, version.size()).substr(0, 20000);
        REQUIRE(f.volume->truncate_file(tx, dll, 0) == Status::kOk);
        REQUIRE(f.volume->write_file(tx, dll, 0, content.data(), content.size()) == Status::kOk);
    }
    REQUIRE(f.volume->set_value(tx, "Software/Update", "Version", ValueType::kString, version.data(), version.size()) == Status::kOk);
    return tx;
}

}  // namespace

TEST_CASE("Files and registry values commit or roll back together (the Windows Update pattern)") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_directory(tx, "/system") == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/system/a.dll") == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/system/b.dll") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Software") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Software/Update") == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.volume->commit(stage_update(f, "1.0")) == Status::kOk);
    const std::string installed = host::dump_volume(*f.volume);

    f.volume->rollback(stage_update(f, "2.0"));
    REQUIRE(host::dump_volume(*f.volume) == installed);

    // A reader during the update sees 1.0 everywhere until the commit returns.
    Transaction* update = stage_update(f, "3.0");
    REQUIRE(host::read_value(*f.volume, nullptr, "Software/Update", "Version") == "1.0");
    REQUIRE(f.get("/system/a.dll").find(" 1.0 ") != std::string::npos);
    REQUIRE(f.volume->commit(update) == Status::kOk);
    f.crash_and_remount();
    REQUIRE(host::read_value(*f.volume, nullptr, "Software/Update", "Version") == "3.0");
    REQUIRE(f.get("/system/a.dll").find(" 3.0 ") != std::string::npos);
    REQUIRE(f.get("/system/b.dll").find(" 3.0 ") != std::string::npos);
    REQUIRE(f.fsck_errors() == 0);
}
