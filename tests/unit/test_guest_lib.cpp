// Guest-kernel library code, compiled for the host from the same sources the guest uses.
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "kernel/cmdline.h"
#include "lib/format.h"

using hvkvm::guest::Cmdline;
using hvkvm::guest::StringView;

namespace {

template <typename... Args>
void check_like_libc(const char* format, Args... args) {
    char ours[128], libc[128];
    const size_t our_length = hvkvm::guest::format(ours, sizeof ours, format, args...);
    const int libc_length = std::snprintf(libc, sizeof libc, format, args...);
    INFO("format \"" << format << "\"");
    CHECK(std::string(ours) == std::string(libc));
    CHECK(our_length == static_cast<size_t>(libc_length));
}

}  // namespace

TEST_CASE("format matches the C library", "[guest-lib]") {
    check_like_libc("plain text");
    check_like_libc("%d %i %u", -42, 17, 4000000000u);
    check_like_libc("%ld %lu %lld %llu", -9000000000l, 18000000000ul, -1ll, ~0ull);
    check_like_libc("%x %X %#x %#X %#o %o", 0xbeefu, 0xbeefu, 0x1fu, 0x1fu, 8u, 0u);
    check_like_libc("%lx %016lx %#018lx", 0xdeadbeefcafeul, 0x1234ul, 0xfffful);
    check_like_libc("[%5d] [%-5d] [%05d] [%+d] [% d] [%+05d]", 42, 42, 42, 42, 42, -42);
    check_like_libc("[%.3d] [%8.3d] [%-8.3x] [%.0d]", 7, 7, 0xa, 0);
    check_like_libc("[%s] [%10s] [%-10s] [%.2s] [%*s] [%-*s]", "abc", "abc", "abc", "abc", 6, "ab", 6, "ab");
    check_like_libc("[%c%c] [%3c] [%-3c]", 'o', 'k', 'x', 'y');
    check_like_libc("%hhu %hd %hu %zu %zd", 300, 70000, 70000, size_t{123}, ptrdiff_t{-5});
    check_like_libc("100%% done %d", 1);
    check_like_libc("%d", -2147483647 - 1);
    check_like_libc("%lld", -9223372036854775807ll - 1);
    check_like_libc("%.*s|", 3, "abcdef");
    check_like_libc("%p %p", reinterpret_cast<void*>(0x1000), reinterpret_cast<void*>(0xffff800000000000));
}

TEST_CASE("format truncates but reports the full length", "[guest-lib]") {
    char buffer[8];
    CHECK(hvkvm::guest::format(buffer, sizeof buffer, "%s-%d", "abcdef", 12345) == 12);
    CHECK(std::string(buffer) == "abcdef-");
    CHECK(hvkvm::guest::format(nullptr, 0, "%d", 123) == 3);
    char one[1] = {'x'};
    CHECK(hvkvm::guest::format(one, 1, "abc") == 3);
    CHECK(one[0] == '\0');
}

TEST_CASE("the kernel command line is split into words and key=value pairs", "[guest-lib]") {
    const Cmdline cmdline(StringView("  test=sched.* selftest crash=page-fault  empty= "));
    bool found = false;
    CHECK(cmdline.value("test", &found) == "sched.*");
    CHECK(found);
    CHECK(cmdline.value("crash") == "page-fault");
    CHECK(cmdline.has("selftest"));
    CHECK(cmdline.value("selftest", &found).empty());
    CHECK(found);
    CHECK(cmdline.has("empty"));
    CHECK_FALSE(cmdline.has("tes"));
    CHECK_FALSE(cmdline.has("sched.*"));
    int words = 0;
    cmdline.for_each_word([&](StringView) { ++words; });
    CHECK(words == 4);
}

TEST_CASE("StringView basics", "[guest-lib]") {
    StringView text("key=value");
    CHECK(text.size() == 9);
    CHECK(text.find('=') == 3);
    CHECK(text.find('x') == StringView::npos);
    CHECK(text.substr(4) == "value");
    CHECK(text.substr(20).empty());
    CHECK(text.starts_with("key"));
    CHECK_FALSE(text.starts_with("value"));
}

TEST_CASE("guest lib: parse_decimal takes 0 .. 2^64 - 1 exactly", "[guest-lib]") {
    uint64_t value = 1;
    CHECK(hvkvm::guest::parse_decimal("0", value));
    CHECK(value == 0);
    CHECK(hvkvm::guest::parse_decimal("18446744073709551615", value));  // 2^64 - 1 fits
    CHECK(value == ~uint64_t{0});
    CHECK(hvkvm::guest::parse_decimal("18446744073709551609", value));
    CHECK_FALSE(hvkvm::guest::parse_decimal("18446744073709551616", value));  // 2^64: one past
    CHECK_FALSE(hvkvm::guest::parse_decimal("184467440737095516150", value));
    CHECK_FALSE(hvkvm::guest::parse_decimal("", value));
    CHECK_FALSE(hvkvm::guest::parse_decimal("12a", value));
    CHECK_FALSE(hvkvm::guest::parse_decimal("-1", value));
}
