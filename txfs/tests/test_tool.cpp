// The `txfs` host tool: commands and documented exit statuses on good and bad images.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Result {
    int status;
    std::string output;
};

Result run(const std::string& arguments) {
    const std::string command = std::string(TXFS_TOOL) + " " + arguments + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string output;
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

struct ScratchDir {
    ScratchDir() {
        char pattern[] = "/tmp/txfs-tool-XXXXXX";
        REQUIRE(::mkdtemp(pattern));
        path = pattern;
    }
    ~ScratchDir() { std::system(("rm -rf " + path).c_str()); }
    std::string path;
};

}  // namespace

TEST_CASE("txfs tool: mkfs - put - set - ls - cat - dump and a clean fsck") {
    ScratchDir dir;
    const std::string image = dir.path + "/vol.img";
    REQUIRE(run("mkfs " + image + " --size 8M --inodes 256 --log-blocks 128").status == 0);
    REQUIRE(run("put " + image + " /etc/motd < /dev/null").status == 0);
    std::ofstream(dir.path + "/in.txt") << "hello txfs\n";
    REQUIRE(run("put " + image + " /etc/hello < " + dir.path + "/in.txt").status == 0);
    REQUIRE(run("set " + image + " Software/Contoso Version u32 42").status == 0);
    REQUIRE(run("cat " + image + " /etc/hello").output == "hello txfs\n");
    const Result ls = run("ls " + image + " /etc");
    REQUIRE(ls.status == 0);
    REQUIRE(ls.output.find("hello") != std::string::npos);
    REQUIRE(run("ls " + image + " --registry Software/Contoso").output.find("Version (u32) = 42") != std::string::npos);
    const Result dump = run("dump " + image);
    REQUIRE(dump.status == 0);
    REQUIRE(dump.output.find("F /etc/hello 11") != std::string::npos);
    const Result fsck = run("fsck " + image);
    REQUIRE(fsck.status == 0);
    REQUIRE(fsck.output.find("0 error(s)") != std::string::npos);
}

TEST_CASE("txfs tool: exit statuses for bad input") {
    ScratchDir dir;
    REQUIRE(run("").status == 2);
    REQUIRE(run("frobnicate x").status == 2);
    REQUIRE(run("fsck " + dir.path + "/missing.img").status == 3);
    std::ofstream(dir.path + "/short.img") << "short";
    REQUIRE(run("fsck " + dir.path + "/short.img").status == 3);
    {
        std::ofstream garbage(dir.path + "/garbage.img", std::ios::binary);
        for (int i = 0; i < 200000; ++i) garbage.put(static_cast<char>(i * 7919 % 251));
    }
    const Result garbage = run("fsck " + dir.path + "/garbage.img");
    REQUIRE(garbage.status == 3);
    REQUIRE(garbage.output.find("not a valid txfs image") != std::string::npos);
    REQUIRE(run("mkfs " + dir.path + "/small.img --size 16K").status == 2);
    const std::string image = dir.path + "/vol.img";
    REQUIRE(run("mkfs " + image + " --size 4M").status == 0);
    REQUIRE(run("cat " + image + " /missing").status == 1);
}

TEST_CASE("txfs tool: fsck exits 1 on an inconsistent image") {
    ScratchDir dir;
    const std::string image = dir.path + "/vol.img";
    REQUIRE(run("mkfs " + image + " --size 4M --inodes 64 --log-blocks 64").status == 0);
    std::ofstream(dir.path + "/in.txt") << std::string(10000, 'q');
    REQUIRE(run("put " + image + " /f < " + dir.path + "/in.txt").status == 0);
    // Damage the file's first data block at home (the put unmounted cleanly, so it is written).
    std::fstream file(image, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    const size_t at = bytes.rfind(std::string(4096, 'q'));  // the home copy lies after the log's
    REQUIRE(at != std::string::npos);
    file.seekp(static_cast<std::streamoff>(at + 10));
    file.put('X');
    file.close();
    const Result fsck = run("fsck " + image);
    REQUIRE(fsck.status == 1);
    REQUIRE(fsck.output.find("checksum mismatch") != std::string::npos);
}
