#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

// The services log a hostile guest's first misdeed of each kind; the tests provoke them all on
// purpose, so only errors are shown.
int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::err);
    return Catch::Session().run(argc, argv);
}
