// The control socket (config `control.socket`): a Unix stream socket on which `vmm ctl` and
// scripts send one JSON object per line and read one JSON object per line back. Served by one
// thread; every request goes to a handler (the Machine) and its answer is written back. Clients
// are untrusted in the sense that nothing they send may disturb the VM: lines are bounded, a
// malformed one gets an error answer, a client that does not read its answers is dropped.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class ControlServer {
public:
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
    static constexpr size_t kMaxLine = 16 * 1024;
    static constexpr size_t kMaxClients = 16;

    // Binds `path` (0600). A stale socket file (nobody listening) is replaced; a live one, or any
    // other kind of file, is an error (HostError).
    ControlServer(const std::filesystem::path& path, Handler handler);
    ~ControlServer();  // stops the thread, closes clients, removes the socket file
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

private:
    void serve();

    std::filesystem::path path_;
    Handler handler_;
    UniqueFd listener_;
    UniqueFd stop_event_;
    std::thread thread_;
};

// For `vmm ctl`: connects, sends `request`, returns the answer line. Throws HostError when the
// socket cannot be reached or closes without answering.
std::string control_request(const std::filesystem::path& path, const std::string& request_line);

}  // namespace hvkvm::vmm
