// The one place where the VMM decides what kind of KVM it runs on. A PVM host (module kvm_pvm)
// runs guest supervisor code at native speed only after the guest converts each vCPU; on other
// hosts (VMX/SVM) the guest must not try to convert.
#pragma once

#include <filesystem>

#include "config/config.h"

namespace hvkvm::vmm {

enum class GuestCpuMode { kPvm, kClassic };

struct HostPlatform {
    bool pvm = false;  // /dev/kvm is PVM
};

HostPlatform detect_host_platform(const std::filesystem::path& sysfs_module_dir = "/sys/module");

// Resolves machine.cpu_mode against the host. Throws ConfigError("machine.cpu_mode", ...) when the
// configuration asks for PVM on a host that does not have it.
GuestCpuMode resolve_cpu_mode(CpuMode requested, const HostPlatform& host);

const char* to_string(GuestCpuMode mode);

}  // namespace hvkvm::vmm
