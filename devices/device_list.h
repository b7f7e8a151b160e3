// The partition's devices: every catalog type the config wants, built in catalog order, started
// and stopped together. Owns the devices; destroying the list joins their worker threads.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "device.h"

namespace hvkvm::devices {

class DeviceList {
public:
    DeviceList(std::span<const DeviceType* const> catalog, DeviceContext& context);
    ~DeviceList();
    DeviceList(const DeviceList&) = delete;
    DeviceList& operator=(const DeviceList&) = delete;

    void start_all();
    void reset_all();
    void stop_all();  // reverse order; idempotent

    // The first device's answer to a management request, or nullopt if none takes it.
    std::optional<nlohmann::json> control(const nlohmann::json& request);
    // True if a device asked the guest to shut down in order.
    bool request_guest_shutdown();
    // Every device's fields for `vmm ctl ... status`.
    void add_status(nlohmann::json& status) const;

    // (device name, report line) for devices with something to say.
    std::vector<std::pair<std::string, std::string>> reports() const;
    size_t size() const { return devices_.size(); }
    std::vector<std::string> names() const;

private:
    std::vector<std::unique_ptr<Device>> devices_;
    bool started_ = false;
};

}  // namespace hvkvm::devices
