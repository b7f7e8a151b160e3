#include "device_list.h"

namespace hvkvm::devices {

DeviceList::DeviceList(std::span<const DeviceType* const> catalog, DeviceContext& context) {
    for (const DeviceType* type : catalog)
        if (type->wanted(context.config)) devices_.push_back(type->create(context));
}

DeviceList::~DeviceList() {
    stop_all();
    // Destroyed last-built first, so a device may rely on those built before it.
    while (!devices_.empty()) devices_.pop_back();
}

void DeviceList::start_all() {
    for (auto& device : devices_) device->start();
    started_ = true;
}

void DeviceList::reset_all() {
    for (auto& device : devices_) device->reset();
}

void DeviceList::stop_all() {
    if (!started_) return;
    started_ = false;
    for (auto it = devices_.rbegin(); it != devices_.rend(); ++it) (*it)->stop();
}

std::optional<nlohmann::json> DeviceList::control(const nlohmann::json& request) {
    for (auto& device : devices_)
        if (auto answer = device->control(request)) return answer;
    return std::nullopt;
}

bool DeviceList::request_guest_shutdown() {
    bool asked = false;
    for (auto& device : devices_) asked |= device->request_guest_shutdown();
    return asked;
}

void DeviceList::add_status(nlohmann::json& status) const {
    for (const auto& device : devices_) device->add_status(status);
}

std::vector<std::pair<std::string, std::string>> DeviceList::reports() const {
    std::vector<std::pair<std::string, std::string>> lines;
    for (const auto& device : devices_)
        if (std::string line = device->report(); !line.empty()) lines.emplace_back(device->name(), std::move(line));
    return lines;
}

std::vector<std::string> DeviceList::names() const {
    std::vector<std::string> result;
    for (const auto& device : devices_) result.emplace_back(device->name());
    return result;
}

}  // namespace hvkvm::devices
