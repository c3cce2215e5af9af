// runnel-window-bench: the message-id window alone (issue 11), in the
// pattern log::append drives it: P partitions take batches of B records in
// turn; per batch, a pass that hashes every id, the prefetches, then one
// find_or_add per id. Ids as runnel-perf --msg-ids unique makes
// them ("<nonce>-<producer>-<n>"), all new. Reports ns/record while the
// windows fill to their bound (dedup.window.max.ids) and once they are at
// it (every add evicts the oldest id), and the resident memory per id.
//
//   runnel-window-bench [--partitions P] [--batch B] [--max-ids N] [--records R]
// RUNNEL_WINDOW_BENCH_NO_PREFETCH=1 leaves the prefetches out (to see what they save).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "broker/storage/dedup_window.h"

namespace {

using runnel::storage::dedup_window;
using clock_type = std::chrono::steady_clock;

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

struct options {
  std::size_t partitions = 6;
  std::size_t batch = 150;
  std::size_t max_ids = 1'000'000;
  std::size_t records = 0;  // per phase; default 2 x partitions x max_ids
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: runnel-window-bench [--partitions P] [--batch B] [--max-ids N] [--records R]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage();
    const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (v == 0) usage();
    if (std::strcmp(argv[i], "--partitions") == 0) {
      o.partitions = v;
    } else if (std::strcmp(argv[i], "--batch") == 0) {
      o.batch = v;
    } else if (std::strcmp(argv[i], "--max-ids") == 0) {
      o.max_ids = v;
    } else if (std::strcmp(argv[i], "--records") == 0) {
      o.records = v;
    } else {
      usage();
    }
    ++i;
  }
  const std::size_t fill = o.partitions * o.max_ids;
  const std::size_t steady = o.records != 0 ? o.records : fill;
  std::vector<dedup_window> windows;
  windows.reserve(o.partitions);
  for (std::size_t p = 0; p < o.partitions; ++p) windows.emplace_back(std::chrono::milliseconds(600000), o.max_ids);
  std::vector<std::int64_t> next(o.partitions, 0);
  const bool prefetch = std::getenv("RUNNEL_WINDOW_BENCH_NO_PREFETCH") == nullptr;
  const long rss0 = rss_kib();
  const std::int64_t now = 1'700'000'000'000;
  std::vector<std::string> ids(o.batch);
  std::vector<std::uint64_t> hashes(o.batch);
  std::uint64_t n = 0;
  std::size_t found = 0;
  double find_ns = 0;
  auto run = [&](std::size_t records) {
    const auto t0 = clock_type::now();
    for (std::size_t done = 0; done < records;) {
      const std::size_t p = (done / o.batch) % o.partitions;
      auto& w = windows[p];
      for (std::size_t i = 0; i < o.batch; ++i) {
        ids[i] = "kq3v9xb1-0-" + std::to_string(n++);
        hashes[i] = dedup_window::hash_of(ids[i]);
      }
      if (prefetch) w.prefetch_batch(hashes);
      w.expire(now);
      const auto t1 = clock_type::now();
      const runnel::offset batch_from(next[p]);
      for (std::size_t i = 0; i < o.batch; ++i) {
        found += w.find_or_add(ids[i], hashes[i], runnel::offset(next[p]++), now, now, batch_from).has_value();
      }
      const auto t2 = clock_type::now();
      done += o.batch;
      find_ns += std::chrono::duration<double, std::nano>(t2 - t1).count();
    }
    std::fprintf(stderr, "find_or_add %.1f ns/record\n", find_ns / records);
    find_ns = 0;
    const double ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count();
    return ns / static_cast<double>(records);
  };
  // The same loop without the window: the cost of making the ids.
  const auto t0 = clock_type::now();
  std::uint64_t sink = 0;
  for (std::size_t i = 0; i < steady; ++i) sink += dedup_window::hash_of("kq3v9xb1-0-" + std::to_string(i));
  const double base = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() / steady;
  const double filling = run(fill);
  const long rss1 = rss_kib();
  const double at_bound = run(steady);
  std::printf("{\"partitions\":%zu,\"batch\":%zu,\"max_ids\":%zu,\"ids_only_ns\":%.1f,\"filling_ns\":%.1f,"
              "\"at_bound_ns\":%.1f,\"bytes_per_id\":%.1f,\"found\":%zu,\"sink\":%llu}\n",
              o.partitions, o.batch, o.max_ids, base, filling - base, at_bound - base,
              (rss1 - rss0) * 1024.0 / static_cast<double>(fill), found,
              static_cast<unsigned long long>(sink & 1));
  return found == 0 ? 0 : 1;
}
