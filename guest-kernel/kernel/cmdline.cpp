#include "kernel/cmdline.h"

namespace hvkvm::guest {

StringView Cmdline::value(StringView key, bool* found) const {
    StringView result;
    bool seen = false;
    for_each_word([&](StringView word) {
        if (seen) return;
        const size_t equals = word.find('=');
        const StringView word_key = word.substr(0, equals);
        if (!(word_key == key)) return;
        seen = true;
        result = equals == StringView::npos ? StringView() : word.substr(equals + 1);
    });
    if (found) *found = seen;
    return result;
}

bool Cmdline::has(StringView key) const {
    bool found = false;
    value(key, &found);
    return found;
}

}  // namespace hvkvm::guest
