// runnel-log-bench: append throughput of the partition log, next to the
// machine's limit measured in the same run.
//
// For each batch size (1 KiB, 16 KiB, 256 KiB, 1 MiB) and each mode (no
// fsync; group-committed fsync: every append followed by flush()), P
// partitions append concurrently on one shard (one io_context thread, one
// io_uring), each with D appends in flight, until --bytes have been written.
// The limit: one plain write() loop of the same bytes in chunks of the batch
// size to a file in the same directory (plus one fdatasync at the end in the
// fsync mode): the least work that puts the same bytes in the same place.
//
//   runnel-log-bench [--json] [--dir D] [--bytes N] [--partitions P] [--depth D] [--sizes a,b,..]

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/logger.h"
#include "schemas/batch.h"

namespace {

using namespace runnel;
using clock_type = std::chrono::steady_clock;

struct options {
  bool json = false;
  std::filesystem::path dir = "runnel-log-bench.data";
  std::uint64_t bytes = 256ULL << 20;
  int partitions = 8;
  int depth = 16;
  std::vector<std::size_t> sizes = {1U << 10, 16U << 10, 256U << 10, 1U << 20};
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "runnel-log-bench: %s\nusage: runnel-log-bench [--json] [--dir D] [--bytes N] "
               "[--partitions P] [--depth D] [--sizes a,b,...]\n", why.c_str());
  std::exit(2);
}

std::uint64_t parse_number(std::string_view flag, const char* v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n == 0) usage(fmt::format("{} needs a positive number, got '{}'", flag, v));
  return n;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
      return argv[++i];
    };
    if (a == "--json") o.json = true;
    else if (a == "--dir") o.dir = value();
    else if (a == "--bytes") o.bytes = parse_number(a, value());
    else if (a == "--partitions") o.partitions = static_cast<int>(parse_number(a, value()));
    else if (a == "--depth") o.depth = static_cast<int>(parse_number(a, value()));
    else if (a == "--sizes") {
      o.sizes.clear();
      std::string list = value();
      for (std::size_t start = 0; start <= list.size();) {
        auto comma = list.find(',', start);
        auto item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        o.sizes.push_back(parse_number("--sizes", item.c_str()));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else usage(fmt::format("unknown argument '{}'", a));
  }
  return o;
}

// One batch of about `target` bytes, records of up to 1000-byte values.
std::vector<std::byte> make_batch(std::size_t target) {
  schemas::batch_builder b(target + 4096);
  std::vector<std::byte> value(1000, std::byte{0x5a});
  std::size_t record_overhead = 64;
  do {
    std::size_t room = target > b.size_estimate() + record_overhead ? target - b.size_estimate() - record_overhead : 1;
    std::size_t n = std::min(value.size(), room);
    b.add(std::nullopt, std::span(value).first(n), timestamp_ms(1'700'000'000'000));
  } while (b.size_estimate() + record_overhead + 16 < target);
  return b.finish();
}

struct result {
  double seconds = 0;
  std::uint64_t bytes = 0;
};

result run_log(const options& o, const std::vector<std::byte>& batch, bool fsync) {
  asio::io_context io;
  storage::io_ring ring(io, 512);
  storage::log_config cfg;
  cfg.segment_bytes = 1ULL << 30;
  std::vector<std::unique_ptr<storage::log>> logs(static_cast<std::size_t>(o.partitions));
  std::uint64_t per_partition = o.bytes / static_cast<std::uint64_t>(o.partitions) / batch.size();
  if (per_partition == 0) per_partition = 1;

  auto open_all = [&]() -> asio::awaitable<void> {
    for (int p = 0; p < o.partitions; ++p) {
      topic_partition tp{"bench", partition_id(p)};
      auto l = co_await storage::log::open(ring, o.dir / fmt::format("bench-{}", p), tp, cfg);
      if (!l) throw std::system_error(l.error(), "open");
      logs[static_cast<std::size_t>(p)] = std::move(*l);
    }
  };
  asio::co_spawn(io, open_all(), [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();

  // Each appender owns its buffer: append stamps the offset in place while
  // the write may still be in flight.
  std::vector<std::vector<std::byte>> buffers(static_cast<std::size_t>(o.partitions * o.depth), batch);
  std::uint64_t written = 0;
  std::vector<std::uint64_t> issued(static_cast<std::size_t>(o.partitions), 0);
  auto appender = [&](int p, int slot) -> asio::awaitable<void> {
    auto& l = *logs[static_cast<std::size_t>(p)];
    auto& buf = buffers[static_cast<std::size_t>(p * o.depth + slot)];
    while (issued[static_cast<std::size_t>(p)] < per_partition) {
      ++issued[static_cast<std::size_t>(p)];
      auto r = co_await l.append(buf);
      if (!r) throw std::system_error(r.error(), "append");
      if (fsync) {
        if (auto ec = co_await l.flush()) throw std::system_error(ec, "flush");
      }
      written += buf.size();
    }
  };
  io.restart();
  auto start = clock_type::now();
  for (int p = 0; p < o.partitions; ++p) {
    for (int s = 0; s < o.depth; ++s) {
      asio::co_spawn(io, appender(p, s), [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    }
  }
  io.run();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();

  io.restart();
  auto close_all = [&]() -> asio::awaitable<void> {
    for (auto& l : logs) co_await l->close();
  };
  asio::co_spawn(io, close_all(), asio::detached);
  io.run();
  return {secs, written};
}

result run_limit(const options& o, std::uint64_t bytes, std::size_t chunk, bool fsync) {
  auto path = o.dir / "limit.dat";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) usage(fmt::format("cannot create {}", path.string()));
  std::vector<char> buf(chunk, 'x');
  auto start = clock_type::now();
  std::uint64_t done = 0;
  while (done < bytes) {
    ssize_t n = ::write(fd, buf.data(), buf.size());
    if (n <= 0) usage("write to the limit file failed");
    done += static_cast<std::uint64_t>(n);
  }
  if (fsync) ::fdatasync(fd);
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(fd);
  return {secs, done};
}

void settle(const options& o) {
  std::error_code ec;
  std::filesystem::remove_all(o.dir, ec);
  std::filesystem::create_directories(o.dir);
  ::sync();  // start every case with no dirty pages from the previous one
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  storage::logger().set_level(spdlog::level::warn);
  if (!o.json) {
    fmt::print("{:>10} {:>6} {:>12} {:>12} {:>7}   ({} partitions x {} in flight, {} MiB per case, MB = 10^6 B)\n",
               "batch", "fsync", "log MB/s", "limit MB/s", "ratio", o.partitions, o.depth, o.bytes >> 20);
  }
  for (std::size_t size : o.sizes) {
    auto batch = make_batch(size);
    for (bool fsync : {false, true}) {
      settle(o);
      auto r = run_log(o, batch, fsync);
      settle(o);
      auto lim = run_limit(o, r.bytes, batch.size(), fsync);
      double mbps = static_cast<double>(r.bytes) / 1e6 / r.seconds;
      double limit = static_cast<double>(lim.bytes) / 1e6 / lim.seconds;
      if (o.json) {
        fmt::print("{{\"case\":\"append\",\"batch_bytes\":{},\"fsync\":{},\"partitions\":{},\"depth\":{},"
                   "\"bytes\":{},\"seconds\":{:.3f},\"mb_per_sec\":{:.1f},\"limit_mb_per_sec\":{:.1f},"
                   "\"ratio\":{:.3f}}}\n",
                   batch.size(), fsync, o.partitions, o.depth, r.bytes, r.seconds, mbps, limit, mbps / limit);
      } else {
        fmt::print("{:>10} {:>6} {:>12.1f} {:>12.1f} {:>7.3f}\n", batch.size(), fsync ? "group" : "no", mbps,
                   limit, mbps / limit);
      }
      std::fflush(stdout);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(o.dir, ec);
  return 0;
}
