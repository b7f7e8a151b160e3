#include "host/host_platform.h"

namespace hvkvm::vmm {

HostPlatform detect_host_platform(const std::filesystem::path& sysfs_module_dir) {
    std::error_code error;
    return HostPlatform{std::filesystem::is_directory(sysfs_module_dir / "kvm_pvm", error)};
}

GuestCpuMode resolve_cpu_mode(CpuMode requested, const HostPlatform& host) {
    switch (requested) {
    case CpuMode::kAuto: return host.pvm ? GuestCpuMode::kPvm : GuestCpuMode::kClassic;
    case CpuMode::kClassic: return GuestCpuMode::kClassic;
    case CpuMode::kPvm:
        if (!host.pvm)
            throw ConfigError("machine.cpu_mode",
                              "\"pvm\" needs a PVM host, but this host's KVM is not PVM (/sys/module/kvm_pvm is absent)");
        return GuestCpuMode::kPvm;
    }
    return GuestCpuMode::kClassic;
}

const char* to_string(GuestCpuMode mode) { return mode == GuestCpuMode::kPvm ? "pvm" : "classic"; }

}  // namespace hvkvm::vmm
