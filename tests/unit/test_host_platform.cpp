#include <catch2/catch.hpp>

#include "host/host_platform.h"
#include "temp_dir.h"

using namespace hvkvm::vmm;

TEST_CASE("a PVM host is recognised by its kernel module", "[host]") {
    hvkvm::test::TempDir sysfs;
    CHECK_FALSE(detect_host_platform(sysfs.path()).pvm);
    std::filesystem::create_directory(sysfs.path() / "kvm_pvm");
    CHECK(detect_host_platform(sysfs.path()).pvm);
}

TEST_CASE("machine.cpu_mode resolves against the host", "[host]") {
    const HostPlatform pvm_host{true}, classic_host{false};
    CHECK(resolve_cpu_mode(CpuMode::kAuto, pvm_host) == GuestCpuMode::kPvm);
    CHECK(resolve_cpu_mode(CpuMode::kAuto, classic_host) == GuestCpuMode::kClassic);
    CHECK(resolve_cpu_mode(CpuMode::kClassic, pvm_host) == GuestCpuMode::kClassic);
    CHECK(resolve_cpu_mode(CpuMode::kPvm, pvm_host) == GuestCpuMode::kPvm);
    CHECK_THROWS_WITH(resolve_cpu_mode(CpuMode::kPvm, classic_host),
                      Catch::StartsWith("machine.cpu_mode: \"pvm\" needs a PVM host"));
}
