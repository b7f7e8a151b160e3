// The kernel command line: space-separated words, each `key` or `key=value`.
#pragma once

#include "lib/string_view.h"

namespace hvkvm::guest {

class Cmdline {
public:
    explicit Cmdline(StringView text) : text_(text) {}

    // The value of the first `key=value` word; `found` says whether the key occurs at all
    // (a bare `key` is found with an empty value).
    StringView value(StringView key, bool* found = nullptr) const;
    bool has(StringView key) const;
    StringView text() const { return text_; }

    // Calls visit(word) for each word.
    template <typename Visitor>
    void for_each_word(Visitor visit) const {
        size_t i = 0;
        while (i < text_.size()) {
            while (i < text_.size() && text_[i] == ' ') ++i;
            size_t end = i;
            while (end < text_.size() && text_[end] != ' ') ++end;
            if (end > i) visit(text_.substr(i, end - i));
            i = end;
        }
    }

private:
    StringView text_;
};

}  // namespace hvkvm::guest
