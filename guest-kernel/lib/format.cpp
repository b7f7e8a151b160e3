#include "lib/format.h"

#include <stdint.h>

namespace hvkvm::guest {
namespace {

class Output {
public:
    Output(char* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {}
    void put(char c) {
        if (length_ + 1 < capacity_) buffer_[length_] = c;
        ++length_;
    }
    void repeat(char c, int count) {
        for (int i = 0; i < count; ++i) put(c);
    }
    size_t finish() {
        if (capacity_) buffer_[length_ < capacity_ ? length_ : capacity_ - 1] = '\0';
        return length_;
    }

private:
    char* buffer_;
    size_t capacity_;
    size_t length_ = 0;
};

struct Spec {
    bool left = false, zero = false, plus = false, space = false, alternate = false;
    int width = 0;
    int precision = -1;
    int length = 0;  // -2 hh, -1 h, 0 int, 1 long, 2 long long / size_t / intmax_t / ptrdiff_t
};

const char* parse_spec(const char* f, Spec& spec, va_list& arguments) {
    for (;; ++f) {
        if (*f == '-') spec.left = true;
        else if (*f == '0') spec.zero = true;
        else if (*f == '+') spec.plus = true;
        else if (*f == ' ') spec.space = true;
        else if (*f == '#') spec.alternate = true;
        else break;
    }
    if (*f == '*') {
        spec.width = va_arg(arguments, int);
        if (spec.width < 0) spec.left = true, spec.width = -spec.width;
        ++f;
    } else {
        while (*f >= '0' && *f <= '9') spec.width = spec.width * 10 + (*f++ - '0');
    }
    if (*f == '.') {
        ++f;
        spec.precision = 0;
        if (*f == '*') {
            spec.precision = va_arg(arguments, int);
            ++f;
        } else {
            while (*f >= '0' && *f <= '9') spec.precision = spec.precision * 10 + (*f++ - '0');
        }
    }
    if (f[0] == 'h' && f[1] == 'h') {
        spec.length = -2;
        f += 2;
    } else if (f[0] == 'h') {
        spec.length = -1;
        f += 1;
    } else if (f[0] == 'l' && f[1] == 'l') {
        spec.length = 2;
        f += 2;
    } else if (f[0] == 'l') {
        spec.length = 1;
        f += 1;
    } else if (f[0] == 'z' || f[0] == 'j' || f[0] == 't') {
        spec.length = 2;
        f += 1;
    }
    return f;
}

uint64_t unsigned_argument(const Spec& spec, va_list& arguments) {
    switch (spec.length) {
    case -2: return static_cast<unsigned char>(va_arg(arguments, unsigned));
    case -1: return static_cast<unsigned short>(va_arg(arguments, unsigned));
    case 0: return va_arg(arguments, unsigned);
    case 1: return va_arg(arguments, unsigned long);
    default: return va_arg(arguments, unsigned long long);
    }
}

int64_t signed_argument(const Spec& spec, va_list& arguments) {
    switch (spec.length) {
    case -2: return static_cast<signed char>(va_arg(arguments, int));
    case -1: return static_cast<short>(va_arg(arguments, int));
    case 0: return va_arg(arguments, int);
    case 1: return va_arg(arguments, long);
    default: return va_arg(arguments, long long);
    }
}

void emit_number(Output& out, const Spec& spec, uint64_t magnitude, bool negative, unsigned base, bool upper,
                 const char* prefix) {
    char digits[24];
    int count = 0;
    const char* alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    while (magnitude) digits[count++] = alphabet[magnitude % base], magnitude /= base;
    if (count == 0 && spec.precision != 0) digits[count++] = '0';

    const char sign = negative ? '-' : spec.plus ? '+' : spec.space ? ' ' : '\0';
    int prefix_length = 0;
    while (prefix[prefix_length]) ++prefix_length;
    const int precision_zeros = spec.precision > count ? spec.precision - count : 0;
    const int body = count + precision_zeros + prefix_length + (sign ? 1 : 0);
    int padding = spec.width > body ? spec.width - body : 0;
    const bool zero_pad = spec.zero && !spec.left && spec.precision < 0;

    if (!spec.left && !zero_pad) out.repeat(' ', padding);
    if (sign) out.put(sign);
    for (int i = 0; i < prefix_length; ++i) out.put(prefix[i]);
    if (zero_pad) out.repeat('0', padding);
    out.repeat('0', precision_zeros);
    while (count) out.put(digits[--count]);
    if (spec.left) out.repeat(' ', padding);
}

void emit_string(Output& out, const Spec& spec, const char* text) {
    if (!text) text = "(null)";
    int length = 0;
    while (text[length] && (spec.precision < 0 || length < spec.precision)) ++length;
    const int padding = spec.width > length ? spec.width - length : 0;
    if (!spec.left) out.repeat(' ', padding);
    for (int i = 0; i < length; ++i) out.put(text[i]);
    if (spec.left) out.repeat(' ', padding);
}

}  // namespace

size_t format_v(char* buffer, size_t capacity, const char* f, va_list incoming) {
    va_list arguments;
    va_copy(arguments, incoming);
    Output out(buffer, capacity);
    while (*f) {
        if (*f != '%') {
            out.put(*f++);
            continue;
        }
        ++f;
        Spec spec;
        f = parse_spec(f, spec, arguments);
        switch (*f) {
        case 'd':
        case 'i': {
            const int64_t value = signed_argument(spec, arguments);
            const uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
            emit_number(out, spec, magnitude, value < 0, 10, false, "");
            break;
        }
        case 'u': emit_number(out, spec, unsigned_argument(spec, arguments), false, 10, false, ""); break;
        case 'o': {
            const uint64_t value = unsigned_argument(spec, arguments);
            emit_number(out, spec, value, false, 8, false, spec.alternate && value ? "0" : "");
            break;
        }
        case 'x':
        case 'X': {
            const uint64_t value = unsigned_argument(spec, arguments);
            const bool upper = *f == 'X';
            emit_number(out, spec, value, false, 16, upper, spec.alternate && value ? (upper ? "0X" : "0x") : "");
            break;
        }
        case 'p': {
            Spec pointer = spec;
            pointer.length = 2;
            const auto value = reinterpret_cast<uintptr_t>(va_arg(arguments, void*));
            emit_number(out, pointer, value, false, 16, false, "0x");
            break;
        }
        case 's': emit_string(out, spec, va_arg(arguments, const char*)); break;
        case 'c': {
            const char text[2] = {static_cast<char>(va_arg(arguments, int)), '\0'};
            Spec single = spec;
            single.precision = 1;
            emit_string(out, single, text);
            break;
        }
        case '%': out.put('%'); break;
        case '\0': --f; break;  // a lone '%' at the end
        default: out.put('%'), out.put(*f); break;
        }
        ++f;
    }
    va_end(arguments);
    return out.finish();
}

size_t format(char* buffer, size_t capacity, const char* f, ...) {
    va_list arguments;
    va_start(arguments, f);
    const size_t length = format_v(buffer, capacity, f, arguments);
    va_end(arguments);
    return length;
}

}  // namespace hvkvm::guest
