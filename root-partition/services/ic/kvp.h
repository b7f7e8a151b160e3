// The KVP (data exchange) service. The host keeps the external pool: pairs from the config
// (`kvp`, pushed when the channel opens) and from `vmm ctl ... kvp set`, each sent to the guest
// as a SET. `kvp get KEY` asks the guest for KEY in its guest, auto and external pools, in that
// order; `kvp list` enumerates those pools; `kvp delete KEY` removes a host pair. Requests wait
// in a bounded queue and go to the guest one at a time (Hyper-V's rule: one KVP transaction in
// flight).
#pragma once

#include <deque>
#include <map>
#include <string>

#include "services/ic/ic_service.h"

namespace hvkvm::root::ic {

class KvpService final : public IcService {
public:
    static constexpr size_t kMaxHostPairs = 64;     // the guest's external pool holds as many
    static constexpr size_t kMaxQueuedJobs = 32;
    static constexpr uint32_t kMaxListedPerPool = 64;
    static constexpr size_t kListedValueBytes = 200;  // longer values are cut in listings
    static constexpr size_t kMaxListingBytes = 3000;  // an answer must fit one link message

    KvpService() : IcService(wire::kKvp) {}

    // A pair from the config: kept, and sent whenever the channel opens. False (with the reason)
    // if the key or value does not fit the wire, or the pool is full.
    bool preset(const std::string& key, const std::string& value, std::string& error, Clock::time_point now);

    bool control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) override;
    nlohmann::json describe() const override;

private:
    enum class JobKind { kSet, kGet, kDelete, kList };
    struct Job {
        JobKind kind;
        std::string key, value;
        ControlReply reply;  // empty for pushes nobody waits for
        size_t pool = 0;     // kGet, kList: position in the pool order
        uint32_t index = 0;  // kList: next enumeration index
        nlohmann::json listing = nlohmann::json::object();
        size_t listed_bytes = 0;
        bool truncated = false;
    };

    void on_ready(Clock::time_point now) override;
    bool on_answer(const wire::Message& answer, Clock::time_point now) override;
    void on_failed(const char* why, Clock::time_point now) override;
    void on_closed() override;

    bool store(const std::string& key, const std::string& value, std::string& error);
    void enqueue(Job job, ControlReply& reply);
    // Starts the next transaction of the queue's first job, completing jobs that cannot start.
    void pump(Clock::time_point now);
    bool start(Job& job, Clock::time_point now);
    // Whether `job` is finished after this answer.
    bool advance(Job& job, uint32_t status, const wire::KvpRecord& answer);
    void finish(nlohmann::json answer);

    std::map<std::string, std::string> host_pairs_;
    std::deque<Job> jobs_;
    wire::KvpRecord in_flight_;  // the request of the outstanding transaction
    uint64_t sets_delivered_ = 0;
};

}  // namespace hvkvm::root::ic
