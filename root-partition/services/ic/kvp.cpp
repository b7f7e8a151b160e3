#include "services/ic/kvp.h"

#include <fmt/format.h>
#include <vector>

namespace hvkvm::root::ic {
namespace {

using wire::KvpOperation;
using wire::KvpPool;

// `kvp get` asks the pools in this order; `kvp list` lists them in this order.
constexpr KvpPool kGetOrder[] = {KvpPool::kGuest, KvpPool::kAuto, KvpPool::kExternal};
constexpr KvpPool kListOrder[] = {KvpPool::kExternal, KvpPool::kGuest, KvpPool::kAuto};
constexpr size_t kPoolsAsked = std::size(kGetOrder);

const char* pool_name(KvpPool pool) {
    switch (pool) {
    case KvpPool::kExternal: return "external";
    case KvpPool::kGuest: return "guest";
    case KvpPool::kAuto: return "auto";
    case KvpPool::kAutoExternal: return "auto-external";
    }
    return "?";
}

// Why `text` cannot travel as a key (max_units 255) or value (1023), or "" if it can.
std::string wire_problem(const std::string& text, uint32_t max_units, const char* what) {
    if (text.empty() && max_units == wire::kKvpMaxKeyUnits) return fmt::format("the {} is empty", what);
    std::vector<uint8_t> utf16((max_units + 1) * 2);
    if (wire::utf8_to_utf16(text.data(), static_cast<uint32_t>(text.size()), utf16.data(),
                            static_cast<uint32_t>(utf16.size())) == 0)
        return fmt::format("the {} is not valid UTF-8 without NUL, or longer than {} UTF-16 units", what, max_units);
    return {};
}

// A value cut for a listing, never inside a UTF-8 sequence.
std::string listed(const std::string& value) {
    if (value.size() <= KvpService::kListedValueBytes) return value;
    size_t cut = KvpService::kListedValueBytes;
    while (cut > 0 && (static_cast<uint8_t>(value[cut]) & 0xc0) == 0x80) --cut;
    return value.substr(0, cut) + "...";
}

wire::KvpRecord record(KvpOperation operation, KvpPool pool, const std::string& key, const std::string& value = {}) {
    wire::KvpRecord r;
    r.operation = operation;
    r.pool = pool;
    r.key.assign(key.data(), static_cast<uint32_t>(key.size()));
    r.value.assign(value.data(), static_cast<uint32_t>(value.size()));
    return r;
}

}  // namespace

bool KvpService::store(const std::string& key, const std::string& value, std::string& error) {
    error = wire_problem(key, wire::kKvpMaxKeyUnits, "key");
    if (error.empty()) error = wire_problem(value, wire::kKvpMaxValueUnits, "value");
    if (error.empty() && !host_pairs_.count(key) && host_pairs_.size() >= kMaxHostPairs)
        error = fmt::format("the external pool is full ({} pairs)", kMaxHostPairs);
    if (!error.empty()) return false;
    host_pairs_[key] = value;
    return true;
}

bool KvpService::preset(const std::string& key, const std::string& value, std::string& error, Clock::time_point now) {
    if (!store(key, value, error)) return false;
    if (is_ready()) {
        ControlReply nobody;
        enqueue(Job{JobKind::kSet, key, value, nullptr}, nobody);
        pump(now);
    }
    return true;
}

void KvpService::enqueue(Job job, ControlReply& reply) {
    if (jobs_.size() >= kMaxQueuedJobs) {
        if (reply) reply({{"ok", false}, {"error", "too many KVP requests are waiting for the guest"}});
        return;
    }
    job.reply = std::move(reply);
    jobs_.push_back(std::move(job));
}

bool KvpService::control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) {
    const std::string command = request.value("command", "");
    if (command == "kvp-preset") {  // the config's pairs, from the VMM
        ControlReply answer = std::move(reply);
        std::string error;
        if (preset(request.value("key", ""), request.value("value", ""), error, now)) answer({{"ok", true}});
        else answer({{"ok", false}, {"error", error}});
        return true;
    }
    JobKind kind;
    if (command == "kvp-set") kind = JobKind::kSet;
    else if (command == "kvp-get") kind = JobKind::kGet;
    else if (command == "kvp-delete") kind = JobKind::kDelete;
    else if (command == "kvp-list") kind = JobKind::kList;
    else return false;
    ControlReply answer = std::move(reply);
    const std::string key = request.value("key", "");
    const std::string value = request.value("value", "");
    std::string error;
    if (kind == JobKind::kSet && !store(key, value, error)) {
        answer({{"ok", false}, {"error", error}});
        return true;
    }
    if (kind == JobKind::kDelete) host_pairs_.erase(key);
    if (kind == JobKind::kGet) error = wire_problem(key, wire::kKvpMaxKeyUnits, "key");
    if (!error.empty()) {
        answer({{"ok", false}, {"error", error}});
        return true;
    }
    if (!is_ready()) {
        // The host's own pool changed and reaches the guest when it opens the channel; questions
        // for the guest need the guest.
        if (kind == JobKind::kSet || kind == JobKind::kDelete)
            answer({{"ok", true}, {"delivered", false}, {"note", "the guest gets the external pool when it opens the KVP channel"}});
        else
            answer({{"ok", false}, {"error", "no KVP service: the guest has not opened the KVP channel"}});
        return true;
    }
    enqueue(Job{kind, key, value, nullptr}, answer);
    pump(now);
    return true;
}

void KvpService::on_ready(Clock::time_point now) {
    // The host's pairs go first, ahead of anything queued.
    for (auto pair = host_pairs_.rbegin(); pair != host_pairs_.rend(); ++pair)
        jobs_.push_front(Job{JobKind::kSet, pair->first, pair->second, nullptr});
    pump(now);
}

void KvpService::pump(Clock::time_point now) {
    while (is_idle() && !jobs_.empty()) {
        if (start(jobs_.front(), now)) return;
        finish({{"ok", false}, {"error", "the KVP request could not be sent to the guest"}});
    }
}

bool KvpService::start(Job& job, Clock::time_point now) {
    switch (job.kind) {
    case JobKind::kSet: in_flight_ = record(KvpOperation::kSet, KvpPool::kExternal, job.key, job.value); break;
    case JobKind::kDelete: in_flight_ = record(KvpOperation::kDelete, KvpPool::kExternal, job.key); break;
    case JobKind::kGet: in_flight_ = record(KvpOperation::kGet, kGetOrder[job.pool], job.key); break;
    case JobKind::kList:
        in_flight_ = record(KvpOperation::kEnumerate, kListOrder[job.pool], {});
        in_flight_.index = job.index;
        break;
    }
    return send_request(
        [&](wire::Packet& packet, wire::Versions versions, uint8_t ic_id) {
            return wire::build_kvp_request(packet, versions, ic_id, in_flight_);
        },
        now);
}

bool KvpService::on_answer(const wire::Message& message, Clock::time_point now) {
    wire::KvpRecord answer;
    if (wire::read_kvp_response(message, in_flight_, answer) != wire::IcError::kNone) return false;
    if (!jobs_.empty() && advance(jobs_.front(), message.header.status, answer)) jobs_.pop_front();
    pump(now);
    return true;
}

bool KvpService::advance(Job& job, uint32_t status, const wire::KvpRecord& answer) {
    const bool ok = status == wire::kStatusSuccess;
    const std::string failure = fmt::format("the guest answered status {:#x}", status);
    switch (job.kind) {
    case JobKind::kSet:
    case JobKind::kDelete:
        sets_delivered_ += ok && job.kind == JobKind::kSet;
        if (job.reply) job.reply(ok ? nlohmann::json{{"ok", true}, {"key", job.key}, {"pool", "external"}}
                                    : nlohmann::json{{"ok", false}, {"error", failure}});
        return true;
    case JobKind::kGet:
        if (ok) {
            job.reply({{"ok", true}, {"key", job.key}, {"value", std::string(answer.value.bytes, answer.value.size)},
                       {"pool", pool_name(kGetOrder[job.pool])}});
            return true;
        }
        if (++job.pool < kPoolsAsked) return false;  // not in this pool: ask the next
        job.reply({{"ok", false}, {"error", fmt::format("the guest has no value for \"{}\"", job.key)}});
        return true;
    case JobKind::kList: {
        nlohmann::json& pool = job.listing[pool_name(kListOrder[job.pool])];
        if (pool.is_null()) pool = nlohmann::json::object();
        if (ok) {
            const std::string key(answer.key.bytes, answer.key.size);
            const std::string value = listed(std::string(answer.value.bytes, answer.value.size));
            job.listed_bytes += key.size() + value.size() + 8;
            if (job.listed_bytes <= kMaxListingBytes) pool[key] = value;
            else job.truncated = true;
        }
        if (ok && ++job.index < kMaxListedPerPool && !job.truncated) return false;
        job.index = 0;
        if (++job.pool < std::size(kListOrder) && !job.truncated) return false;
        job.reply({{"ok", true}, {"pools", job.listing}, {"truncated", job.truncated}});
        return true;
    }
    }
    return true;
}

void KvpService::on_failed(const char* why, Clock::time_point now) {
    finish({{"ok", false}, {"error", fmt::format("KVP request: {}", why)}});
    pump(now);
}

void KvpService::finish(nlohmann::json answer) {
    if (jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    if (job.reply) job.reply(std::move(answer));
}

void KvpService::on_closed() {
    while (!jobs_.empty()) finish({{"ok", false}, {"error", "the KVP channel closed"}});
}

nlohmann::json KvpService::describe() const {
    nlohmann::json description = IcService::describe();
    description["host_pairs"] = host_pairs_.size();
    description["sets_delivered"] = sets_delivered_;
    description["queued"] = jobs_.size();
    return description;
}

}  // namespace hvkvm::root::ic
