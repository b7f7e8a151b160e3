#include "control/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "kvm/kvm_error.h"

namespace hvkvm::vmm {
namespace {

sockaddr_un address_of(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string text = path.string();
    if (text.size() >= sizeof address.sun_path)
        throw HostError(ENAMETOOLONG, fmt::format("control socket path {} is longer than {} bytes", text, sizeof address.sun_path - 1));
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    return address;
}

UniqueFd stream_socket() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw_errno("socket for the control socket");
    return fd;
}

bool someone_listens(const std::filesystem::path& path) {
    UniqueFd probe = stream_socket();
    const sockaddr_un address = address_of(path);
    return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

void remove_stale_socket(const std::filesystem::path& path) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) return;  // nothing there
    if (!S_ISSOCK(status.st_mode))
        throw HostError(EEXIST, fmt::format("{} exists and is not a socket", path.string()));
    if (someone_listens(path)) throw HostError(EADDRINUSE, fmt::format("{} is in use by a running vmm", path.string()));
    ::unlink(path.c_str());
}

struct Client {
    UniqueFd fd;
    std::string pending;  // bytes of an unfinished line
};

std::string answer_line(const ControlServer::Handler& handler, const std::string& line) {
    nlohmann::json answer;
    const nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded() || !request.is_object() || !request.contains("command") || !request["command"].is_string())
        answer = {{"ok", false}, {"error", "expected a JSON object with a string \"command\""}};
    else
        answer = handler(request);
    return answer.dump() + "\n";
}

// Blocking write of a whole answer with a short deadline: a client that does not read is dropped.
bool write_all(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t written = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written > 0) {
            done += static_cast<size_t>(written);
            continue;
        }
        if (written < 0 && errno == EINTR) continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd writable{fd, POLLOUT, 0};
            if (::poll(&writable, 1, 1000) > 0) continue;
        }
        return false;
    }
    return true;
}

}  // namespace

ControlServer::ControlServer(const std::filesystem::path& path, Handler handler)
    : path_(path), handler_(std::move(handler)), listener_(stream_socket()), stop_event_(::eventfd(0, EFD_CLOEXEC)) {
    if (!stop_event_.valid()) throw_errno("eventfd for the control socket");
    remove_stale_socket(path_);
    const sockaddr_un address = address_of(path_);
    const mode_t previous = ::umask(0077);  // the socket file is the owner's only
    const int bound = ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    ::umask(previous);
    if (bound < 0) throw_errno(fmt::format("cannot bind the control socket {}", path_.string()));
    if (::listen(listener_.get(), 8) < 0) throw_errno("listen on the control socket");
    thread_ = std::thread([this] { serve(); });
}

ControlServer::~ControlServer() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(stop_event_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    ::unlink(path_.c_str());
}

void ControlServer::serve() {
    std::vector<Client> clients;
    for (;;) {
        std::vector<pollfd> fds{{stop_event_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
        for (const Client& client : clients) fds.push_back({client.fd.get(), POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[0].revents) return;
        if (fds[1].revents & POLLIN) {
            UniqueFd accepted(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (accepted.valid() && clients.size() < kMaxClients) clients.push_back({std::move(accepted), {}});
        }
        for (size_t i = 0; i < clients.size(); ++i) {
            if (!fds[i + 2].revents) continue;
            Client& client = clients[i];
            char buffer[4096];
            const ssize_t received = ::recv(client.fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            bool keep = received > 0 || (received < 0 && (errno == EAGAIN || errno == EINTR));
            if (received > 0) client.pending.append(buffer, static_cast<size_t>(received));
            size_t newline;
            while (keep && (newline = client.pending.find('\n')) != std::string::npos) {
                const std::string line = client.pending.substr(0, newline);
                client.pending.erase(0, newline + 1);
                keep = write_all(client.fd.get(), answer_line(handler_, line));
            }
            if (keep && client.pending.size() > kMaxLine) {
                write_all(client.fd.get(), R"({"ok":false,"error":"request line too long"})" "\n");
                keep = false;
            }
            if (!keep) client.fd.reset();
        }
        std::erase_if(clients, [](const Client& client) { return !client.fd.valid(); });
    }
}

std::string control_request(const std::filesystem::path& path, const std::string& request_line) {
    UniqueFd fd = stream_socket();
    const sockaddr_un address = address_of(path);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0)
        throw_errno(fmt::format("cannot connect to {}", path.string()));
    const std::string line = request_line + "\n";
    if (!write_all(fd.get(), line)) throw_errno("send the request");
    std::string answer;
    char buffer[4096];
    for (;;) {
        pollfd readable{fd.get(), POLLIN, 0};
        if (::poll(&readable, 1, 10'000) <= 0) throw HostError(ETIMEDOUT, "no answer within 10 s");
        const ssize_t received = ::recv(fd.get(), buffer, sizeof buffer, 0);
        if (received < 0 && errno == EINTR) continue;
        if (received <= 0) throw HostError(ECONNRESET, "the VM closed the control socket without answering");
        answer.append(buffer, static_cast<size_t>(received));
        if (answer.find('\n') != std::string::npos) return answer.substr(0, answer.find('\n'));
    }
}

}  // namespace hvkvm::vmm
