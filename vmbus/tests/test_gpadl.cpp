// GPADLs split into header and body messages by the guest side and reassembled by the host side:
// single- and multi-message GPADLs at the message boundaries, and a hostile guest's bodies.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "vmbus/protocol/gpadl.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::protocol;

namespace {

// One range covering `pages` pages, PFNs 1000, 1001, ...
std::vector<uint64_t> one_range(uint32_t pages) {
    std::vector<uint64_t> words(1 + pages);
    const GpaRangeHeader header{pages * kHvPageSize, 0};
    std::memcpy(words.data(), &header, 8);
    for (uint32_t i = 0; i < pages; ++i) words[1 + i] = 1000 + i;
    return words;
}

struct Transfer {
    std::vector<MessageBuffer> messages;
    std::vector<uint64_t> storage;
    GpadlAssembler assembler;
};

// Splits `words` into messages, parses them as the host would and feeds them to an assembler.
void transfer(Transfer& t, const std::vector<uint64_t>& words, uint32_t range_count) {
    GpadlMessageSplitter splitter;
    REQUIRE(splitter.start(7, 0xe1e10, GpaRangeList{words.data(), static_cast<uint32_t>(words.size()), range_count}) ==
            GpadlError::kNone);
    MessageBuffer message;
    while (splitter.next(message)) t.messages.push_back(message);
    CHECK(t.messages.size() == splitter.message_count());
    for (size_t i = 0; i < t.messages.size(); ++i) {
        GuestMessage parsed;
        REQUIRE(parse_guest_message(t.messages[i].bytes, t.messages[i].size, parsed) == ParseError::kNone);
        if (i == 0) {
            REQUIRE(parsed.type == MessageType::kGpadlHeader);
            t.storage.resize(GpadlAssembler::words_needed(parsed.gpadl_header));
            REQUIRE(t.assembler.start(parsed.gpadl_header, t.storage.data(), t.storage.size()) == GpadlError::kNone);
        } else {
            REQUIRE(parsed.type == MessageType::kGpadlBody);
            CHECK_FALSE(t.assembler.is_complete());
            REQUIRE(t.assembler.add_body(parsed.gpadl_body) == GpadlError::kNone);
        }
    }
}

GpadlHeaderMessage header_message(uint32_t gpadl, uint16_t range_count, const std::vector<uint64_t>& all_words,
                                  uint32_t carried) {
    GpadlHeaderMessage message{};
    message.fixed.gpadl = gpadl;
    message.fixed.range_count = range_count;
    message.fixed.range_buflen = static_cast<uint16_t>(all_words.size() * 8);
    message.word_count = carried;
    for (uint32_t i = 0; i < carried; ++i) message.words[i] = all_words[i];
    return message;
}

GpadlBodyMessage body_message(uint32_t gpadl, const uint64_t* words, uint32_t count) {
    GpadlBodyMessage message{};
    message.fixed.gpadl = gpadl;
    message.word_count = count;
    for (uint32_t i = 0; i < count; ++i) message.words[i] = words[i];
    return message;
}

}  // namespace

TEST_CASE("gpadl: 26 PFNs fit the header alone, 27 need a body", "[vmbus][gpadl]") {
    Transfer fits;
    transfer(fits, one_range(26), 1);
    CHECK(fits.messages.size() == 1);
    CHECK(fits.messages[0].size == 20 + 27 * 8);
    CHECK(fits.assembler.is_complete());
    CHECK(fits.assembler.body_count() == 0);

    Transfer spills;
    transfer(spills, one_range(27), 1);
    REQUIRE(spills.messages.size() == 2);
    CHECK(spills.messages[1].size == 16 + 8);
    CHECK(spills.assembler.is_complete());
    CHECK(spills.assembler.ranges().total_bytes() == 27 * 4096);
}

TEST_CASE("gpadl: a body holds 28 PFNs", "[vmbus][gpadl]") {
    Transfer exact;
    transfer(exact, one_range(26 + 28), 1);
    CHECK(exact.messages.size() == 2);
    CHECK(exact.messages[1].size == kMaxMessageSize);
    Transfer over;
    transfer(over, one_range(26 + 28 + 1), 1);
    CHECK(over.messages.size() == 3);
}

TEST_CASE("gpadl: a 16 MiB buffer crosses 146 body messages intact", "[vmbus][gpadl]") {
    const auto words = one_range(4096);
    Transfer t;
    transfer(t, words, 1);
    CHECK(t.messages.size() == 1 + 146);
    REQUIRE(t.assembler.is_complete());
    CHECK(t.assembler.child_relid() == 7);
    CHECK(t.assembler.gpadl() == 0xe1e10);
    const GpaRangeList ranges = t.assembler.ranges();
    CHECK(std::vector<uint64_t>(ranges.words, ranges.words + ranges.word_count) == words);
    GpaRangeCursor cursor = ranges.cursor();
    GpaRange range;
    REQUIRE(cursor.next(range));
    CHECK(range.pfn_count == 4096);
    CHECK(range.pfns[4095] == 1000 + 4095);
}

TEST_CASE("gpadl: several ranges travel together", "[vmbus][gpadl]") {
    std::vector<uint64_t> words = one_range(30);
    const auto second = one_range(3);
    words.insert(words.end(), second.begin(), second.end());
    Transfer t;
    transfer(t, words, 2);
    REQUIRE(t.assembler.is_complete());
    CHECK(t.assembler.ranges().range_count == 2);
    CHECK(t.assembler.ranges().total_bytes() == 33 * 4096);
}

TEST_CASE("gpadl: the splitter refuses what range_buflen cannot describe", "[vmbus][gpadl]") {
    GpadlMessageSplitter splitter;
    const auto largest = one_range(kGpadlMaxWords - 1);  // 8191 words: range_buflen 65528
    CHECK(splitter.start(1, 1, GpaRangeList{largest.data(), static_cast<uint32_t>(largest.size()), 1}) == GpadlError::kNone);
    MessageBuffer header;
    REQUIRE(splitter.next(header));
    GuestMessage parsed;
    REQUIRE(parse_guest_message(header.bytes, header.size, parsed) == ParseError::kNone);
    CHECK(parsed.gpadl_header.fixed.range_buflen == 65528);
    const auto too_large = one_range(kGpadlMaxWords);
    CHECK(splitter.start(1, 1, GpaRangeList{too_large.data(), static_cast<uint32_t>(too_large.size()), 1}) == GpadlError::kTooLarge);
    auto trailing = one_range(2);
    trailing.push_back(0);
    CHECK(splitter.start(1, 1, GpaRangeList{trailing.data(), static_cast<uint32_t>(trailing.size()), 1}) == GpadlError::kBadRanges);
}

TEST_CASE("gpadl: the assembler bounds a hostile guest's GPADL", "[vmbus][gpadl]") {
    const auto words = one_range(40);  // 41 words: header 27 + body 14
    std::vector<uint64_t> storage(64);
    GpadlAssembler assembler;

    SECTION("storage for exactly the announced words, and one word less") {
        CHECK(assembler.start(header_message(5, 1, words, 27), storage.data(), 40) == GpadlError::kTooLarge);
        CHECK_FALSE(assembler.is_in_progress());
        CHECK(assembler.start(header_message(5, 1, words, 27), storage.data(), 41) == GpadlError::kNone);
        CHECK(assembler.is_in_progress());
    }
    SECTION("a body exactly completing it, and one word past it") {
        REQUIRE(assembler.start(header_message(5, 1, words, 27), storage.data(), 64) == GpadlError::kNone);
        GpadlAssembler other;
        REQUIRE(other.start(header_message(5, 1, words, 27), storage.data(), 64) == GpadlError::kNone);
        std::vector<uint64_t> longer(words.begin() + 27, words.end());
        longer.push_back(0);
        CHECK(other.add_body(body_message(5, longer.data(), 15)) == GpadlError::kOverflow);
        CHECK_FALSE(other.is_in_progress());  // abandoned
        CHECK(other.add_body(body_message(5, longer.data(), 1)) == GpadlError::kNotStarted);
        CHECK(assembler.add_body(body_message(5, words.data() + 27, 14)) == GpadlError::kNone);
        CHECK(assembler.is_complete());
        CHECK(assembler.add_body(body_message(5, words.data(), 1)) == GpadlError::kAlreadyComplete);
    }
    SECTION("bodies for another GPADL or none at all") {
        CHECK(assembler.add_body(body_message(5, words.data(), 1)) == GpadlError::kNotStarted);
        REQUIRE(assembler.start(header_message(5, 1, words, 27), storage.data(), 64) == GpadlError::kNone);
        CHECK(assembler.add_body(body_message(6, words.data() + 27, 14)) == GpadlError::kWrongGpadl);
        CHECK(assembler.is_in_progress());  // a stray body does not spoil the right one
        CHECK(assembler.add_body(body_message(5, words.data() + 27, 14)) == GpadlError::kNone);
        CHECK(assembler.is_complete());
    }
    SECTION("ranges that do not add up are refused once complete") {
        auto short_pfns = words;
        const GpaRangeHeader header{41 * kHvPageSize, 0};  // needs 41 PFNs, has 40
        std::memcpy(short_pfns.data(), &header, 8);
        REQUIRE(assembler.start(header_message(5, 1, short_pfns, 27), storage.data(), 64) == GpadlError::kNone);
        CHECK(assembler.add_body(body_message(5, short_pfns.data() + 27, 14)) == GpadlError::kBadRanges);
        CHECK_FALSE(assembler.is_complete());
        CHECK(assembler.ranges().words == nullptr);
    }
    SECTION("unused trailing words are refused") {
        auto trailing = one_range(2);
        trailing.push_back(0);
        CHECK(assembler.start(header_message(5, 1, trailing, 4), storage.data(), 64) == GpadlError::kBadRanges);
    }
    SECTION("a range count the words cannot hold") {
        CHECK(assembler.start(header_message(5, 30, words, 27), storage.data(), 64) == GpadlError::kNone);
        CHECK(assembler.add_body(body_message(5, words.data() + 27, 14)) == GpadlError::kBadRanges);
    }
}

TEST_CASE("gpa ranges: appending checks what it writes", "[vmbus][gpadl]") {
    uint64_t words[4] = {};
    const uint64_t pfns[] = {5, 6, 7};
    CHECK(append_gpa_range(words, 4, 0, 8192, 1, pfns) == 4);  // 3 pages touched: exactly fills
    CHECK(append_gpa_range(words, 3, 0, 8192, 1, pfns) == 0);
    CHECK(append_gpa_range(words, 4, 0, 0, 0, pfns) == 0);
    CHECK(append_gpa_range(words, 4, 0, 1, 4096, pfns) == 0);
    uint32_t used = 0;
    CHECK(validate_gpa_ranges(words, 4, 1, used) == GpaRangeError::kNone);
    CHECK(used == 4);
    CHECK(validate_gpa_ranges(words, 3, 1, used) == GpaRangeError::kMissingPfns);
    CHECK(std::string(gpa_range_error_name(GpaRangeError::kOffsetPastPage)).find("offset") != std::string::npos);
}
