#include "broker/storage/io_ring.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "broker/storage/file.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::run;
using runnel::testing::temp_dir;

namespace {

int open_rw(const std::filesystem::path& p) { return ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644); }

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 31 + seed) & 0xFFU);
  return b;
}

}  // namespace

TEST_CASE("io_ring: write, fdatasync and read back") {
  temp_dir dir;
  asio::io_context io;
  io_ring ring(io);
  const int fd = open_rw(dir / "f");
  REQUIRE(fd >= 0);
  const auto data = pattern(10000, 1);
  run(io, [&]() -> asio::awaitable<void> {
    auto n = co_await ring.write(fd, data, 0);
    REQUIRE(n.has_value());
    CHECK(*n == data.size());
    CHECK_FALSE(co_await ring.fdatasync(fd));
    CHECK_FALSE(co_await ring.fsync(fd));
    std::vector<std::byte> back(data.size());
    CHECK_FALSE(co_await ring.read_exact(fd, back, 0));
    CHECK(back == data);
  }());
  CHECK(ring.in_flight() == 0);
  ::close(fd);
}

TEST_CASE("io_ring: writev gathers buffers at a position") {
  temp_dir dir;
  asio::io_context io;
  io_ring ring(io);
  const int fd = open_rw(dir / "f");
  const auto a = pattern(100, 2);
  const auto b = pattern(300, 3);
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<iovec> iov{{const_cast<std::byte*>(a.data()), a.size()}, {const_cast<std::byte*>(b.data()), b.size()}};
    auto n = co_await ring.writev(fd, iov, 4096);
    REQUIRE(n.has_value());
    CHECK(*n == 400);
  }());
  struct stat st{};
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(st.st_size == 4096 + 400);
  std::vector<std::byte> back(400);
  REQUIRE(::pread(fd, back.data(), back.size(), 4096) == 400);
  CHECK(std::equal(a.begin(), a.end(), back.begin()));
  CHECK(std::equal(b.begin(), b.end(), back.begin() + 100));
  ::close(fd);
}

TEST_CASE("io_ring: more operations than ring entries all complete") {
  temp_dir dir;
  asio::io_context io;
  io_ring ring(io, 4);  // tiny: most operations wait in user space
  const int fd = open_rw(dir / "f");
  constexpr int ops = 200;
  std::vector<std::vector<std::byte>> blocks;
  for (int i = 0; i < ops; ++i) blocks.push_back(pattern(512, static_cast<unsigned>(i)));
  int done = 0;
  std::size_t peak = 0;
  for (int i = 0; i < ops; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto ec = co_await ring.write_all(fd, blocks[static_cast<std::size_t>(i)], static_cast<std::uint64_t>(i) * 512);
          CHECK_FALSE(ec);
          ++done;
        },
        asio::detached);
  }
  // Spawned coroutines start on the first turns of the loop.
  while (io.run_one() > 0) peak = std::max(peak, ring.in_flight());
  CHECK(done == ops);
  CHECK(peak > 8);  // more in flight than the kernel queue holds
  CHECK(ring.in_flight() == 0);
  for (int i = 0; i < ops; ++i) {
    std::vector<std::byte> back(512);
    REQUIRE(::pread(fd, back.data(), 512, static_cast<off_t>(i) * 512) == 512);
    CHECK(back == blocks[static_cast<std::size_t>(i)]);
  }
  ::close(fd);
}

TEST_CASE("io_ring: errors come back as values") {
  temp_dir dir;
  asio::io_context io;
  io_ring ring(io);
  const int fd = open_rw(dir / "f");
  const int ro = ::open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC);
  run(io, [&]() -> asio::awaitable<void> {
    std::vector<std::byte> buf(16);
    SUBCASE("write to a bad descriptor") {
      auto n = co_await ring.write(-1, buf, 0);
      REQUIRE_FALSE(n.has_value());
      CHECK(n.error() == std::error_code(EBADF, std::system_category()));
    }
    SUBCASE("write to a read-only descriptor") {
      auto n = co_await ring.write(ro, buf, 0);
      REQUIRE_FALSE(n.has_value());
      CHECK(n.error() == std::error_code(EBADF, std::system_category()));
    }
    SUBCASE("read past end of file is a short read, read_exact an error") {
      auto n = co_await ring.read(fd, buf, 0);
      REQUIRE(n.has_value());
      CHECK(*n == 0);
      CHECK(co_await ring.read_exact(fd, buf, 0) == std::make_error_code(std::errc::io_error));
    }
    SUBCASE("fsync of a bad descriptor") { CHECK(co_await ring.fdatasync(-1) == std::error_code(EBADF, std::system_category())); }
  }());
  CHECK(ring.in_flight() == 0);
  ::close(ro);
  ::close(fd);
}

TEST_CASE("io_ring: fallocate KEEP_SIZE reserves blocks without growing the file") {
  temp_dir dir;
  asio::io_context io;
  io_ring ring(io);
  const int fd = open_rw(dir / "f");
  run(io, [&]() -> asio::awaitable<void> { CHECK_FALSE(co_await ring.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20)); }());
  struct stat st{};
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(st.st_size == 0);
  CHECK(st.st_blocks * 512 >= (1 << 20));
  ::close(fd);
}

TEST_CASE("io_ring: an idle ring lets io_context::run return") {
  asio::io_context io;
  io_ring ring(io);
  CHECK(io.run() == 0);  // nothing registered while idle
}
