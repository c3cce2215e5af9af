// runnel-perf: OMB-like load tool for a running broker.
//
//   runnel-perf limits [--dir DIR]      the machine's loopback TCP, fdatasync and thread wake-up limits
//   runnel-perf produce|consume|e2e --bootstrap HOST:PORT[,...] --topic T [--partitions N] [--replicas R]
//       [--record-size B] [--records N] [--rate R] [--producers P]
//       [--acks 0|1|all] [--idempotence on|off] [--partition-in-flight N] [--msg-ids unique] [--batch-bytes B] [--linger-ms L] [--max-seconds S]
//       [--warmup-seconds S] [--latency-log FILE]   (e2e)
//
// Creates the topic if missing. A progress line on stderr every second; one
// JSON line on stdout at the end: records, seconds, records_per_sec,
// mb_per_sec and, for e2e, latency percentiles in ms measured from each
// record's intended send time (so a stalled producer counts as latency):
// consumed (p50_ms...), acknowledged (ack_*) and the load tool's own lateness
// in calling send() (send_lag_*). --warmup-seconds leaves the records of the
// first S seconds out of those figures (as OpenMessaging Benchmark's warm-up
// does); --latency-log writes every record's times. host_steal_ms is the CPU
// time the hypervisor took from this machine during the run.
//   runnel-perf consume --group G [--consumers N] [--auto-commit-ms MS]   a group of N members
//   runnel-perf rebalance --partitions 12 --rate R [--consumers 3]        join / leave under load
//   runnel-perf commits [--committers N] [--window W] [--max-seconds S]  commits/s at one coordinator
// Every run is bounded by --records and by --max-seconds (default 300).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "perf/perf.h"

namespace runnel::perf {



[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "runnel-perf: %s\nusage: runnel-perf produce|consume|e2e --bootstrap HOST:PORT --topic T "
                       "[--partitions N] [--replicas R] [--record-size B] [--records N] [--rate R] [--producers P] [--acks 0|1|all] [--idempotence on|off] [--partition-in-flight N] [--msg-ids unique] "
                       "[--batch-bytes B] [--linger-ms L] [--max-seconds S] [--warmup-seconds S] [--latency-log FILE] "
                       "[--group G --consumers N --auto-commit-ms MS] | rebalance | commits [--committers N] [--window W] | share --group G [--consumers N] [--processing-ms P]\n",
               msg.c_str());
  std::exit(2);
}

long long number(const char* flag, const char* v) {
  char* end = nullptr;
  long long n = std::strtoll(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < 0) usage_error(std::string(flag) + " must be a non-negative integer");
  return n;
}

options parse(int argc, char** argv) {
  options o;
  if (argc < 2) usage_error("no mode given");
  o.mode = argv[1];
  if (o.mode != "produce" && o.mode != "consume" && o.mode != "e2e" && o.mode != "limits" && o.mode != "rebalance" &&
      o.mode != "commits" && o.mode != "share") {
    usage_error("unknown mode '" + o.mode + "'");
  }
  for (int i = 2; i < argc; i += 2) {
    std::string f = argv[i];
    if (i + 1 >= argc) usage_error(f + " needs a value");
    const char* v = argv[i + 1];
    if (f == "--bootstrap") o.bootstrap = v;
    else if (f == "--topic") o.topic = v;
    else if (f == "--partitions") o.partitions = static_cast<std::int32_t>(number(argv[i], v));
    else if (f == "--replicas") o.replicas = static_cast<std::int16_t>(std::clamp(number(argv[i], v), 1LL, 100LL));
    else if (f == "--record-size") o.record_size = static_cast<std::size_t>(number(argv[i], v));
    else if (f == "--records") o.records = number(argv[i], v);
    else if (f == "--rate") o.rate = static_cast<double>(number(argv[i], v));
    else if (f == "--producers") o.producers = static_cast<int>(std::max(1LL, number(argv[i], v)));
    else if (f == "--acks") o.acks = std::strcmp(v, "all") == 0 ? -1 : static_cast<int>(number(argv[i], v));
    else if (f == "--idempotence") {
      if (std::strcmp(v, "on") != 0 && std::strcmp(v, "off") != 0) usage_error("--idempotence must be on or off");
      o.idempotence = std::strcmp(v, "on") == 0;
    } else if (f == "--partition-in-flight") {
      o.partition_in_flight = static_cast<int>(number(argv[i], v));
    } else if (f == "--msg-ids") {
      if (std::strcmp(v, "unique") != 0) usage_error("--msg-ids takes 'unique'");
      o.unique_msg_ids = true;
    }
    else if (f == "--batch-bytes") o.batch_bytes = static_cast<std::size_t>(number(argv[i], v));
    else if (f == "--linger-ms") o.linger_ms = static_cast<int>(number(argv[i], v));
    else if (f == "--max-seconds") o.max_seconds = static_cast<int>(number(argv[i], v));
    else if (f == "--warmup-seconds") o.warmup_seconds = static_cast<double>(number(argv[i], v));
    else if (f == "--latency-log") o.latency_log = v;
    else if (f == "--dir") o.dir = v;
    else if (f == "--group") o.group = v;
    else if (f == "--consumers") o.consumers = static_cast<int>(std::max(1LL, number(argv[i], v)));
    else if (f == "--auto-commit-ms") o.auto_commit_ms = static_cast<int>(number(argv[i], v));
    else if (f == "--committers") o.committers = static_cast<int>(std::max(1LL, number(argv[i], v)));
    else if (f == "--window") o.commit_window = static_cast<int>(std::max(1LL, number(argv[i], v)));
    else if (f == "--processing-ms") o.processing_ms = static_cast<int>(number(argv[i], v));
    else usage_error("unknown option " + f);
  }
  if (o.acks != 0 && o.acks != 1 && o.acks != -1) usage_error("--acks must be 0, 1 or all");
  if (o.mode == "e2e" && o.record_size < 16) {
    usage_error("e2e needs --record-size >= 16 (the send time and record number travel in the value)");
  }
  if (o.warmup_seconds > 0 && (o.mode != "e2e" || o.rate <= 0)) usage_error("--warmup-seconds needs e2e with --rate");
  if (!o.latency_log.empty() && o.mode != "e2e") usage_error("--latency-log is for e2e");
  return o;
}

void ensure_topic(const options& o) {
  runnel::admin_config c;
  c.bootstrap = o.bootstrap;
  auto a = runnel::admin::connect(c);
  if (!a) usage_error(a.error().what());
  auto r = (*a)->create_topic(o.topic, o.partitions, o.replicas);
  if (!r && r.error().code != runnel::errc::topic_already_exists) usage_error(r.error().what());
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}


// Prints "<mode>: N records, X rec/s" once a second until stopped.
std::thread progress_printer(const char* what, progress& p) {
  return std::thread([what, &p] {
    std::int64_t last = 0;
    auto next = clock_type::now();
    while (!p.stop.load()) {
      next += std::chrono::seconds(1);
      while (!p.stop.load() && clock_type::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const auto d = p.done.load();
      std::fprintf(stderr, "%s: %lld records, %lld rec/s, %lld failed\n", what, static_cast<long long>(d),
                   static_cast<long long>(d - last), static_cast<long long>(p.failed.load()));
      last = d;
    }
  });
}

// Per-record times of an e2e run, in ms from the record's intended send
// time, indexed by the record's number (allocated up front: growing a vector
// mid-run stalls the thread that measures); negative = not measured.
struct record_times {
  std::vector<float> lag;  // until send() was called: the load tool's own lateness
  std::vector<float> ack;  // until the producer's callback reported success
  std::vector<float> e2e;  // until the consumer's poll() returned it
  std::vector<std::int32_t> partition;
  std::vector<std::int64_t> offset;

  explicit record_times(std::int64_t records)
      : lag(static_cast<std::size_t>(records), -1.0F),
        ack(static_cast<std::size_t>(records), -1.0F),
        e2e(static_cast<std::size_t>(records), -1.0F),
        partition(static_cast<std::size_t>(records), -1),
        offset(static_cast<std::size_t>(records), -1) {}
};

float ms_since(std::int64_t ns) { return static_cast<float>(static_cast<double>(now_ns() - ns) / 1e6); }

// Producers; records carry their intended send time (ns) in value bytes 0-7
// and their number in bytes 8-15. With `times` (e2e), each record's send lag
// and ack latency are kept.
double run_producers(const options& o, progress& p, record_times* times) {
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> issued{0};
  // The clock starts once every producer is connected, so connection set-up
  // is not counted as the first records' latency.
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(std::random_device{}()) << 32 |
                                                    std::random_device{}());
  const std::string run_nonce = nonce;
    std::latch connected(o.producers);
  std::latch go(1);
  clock_type::time_point start;
  clock_type::time_point deadline;
  for (int t = 0; t < o.producers; ++t) {
    threads.emplace_back([&, t] {
      runnel::producer_config c;
      c.bootstrap = o.bootstrap;
      c.acks = o.acks;
      c.enable_idempotence = o.idempotence;
      c.max_in_flight_per_partition = o.partition_in_flight;
      if (o.unique_msg_ids) {
        // One producer per thread: the counter is this thread's. The run's
        // random prefix keeps ids unique across runs too (a second run on
        // the same windowed topic would otherwise repeat the first's ids).
        c.msg_id_of = [prefix = run_nonce + "-" + std::to_string(t) + "-", n = std::make_shared<std::uint64_t>(0)](
                          std::string_view, std::optional<std::string_view>, std::string_view) {
          return std::optional<std::string>(prefix + std::to_string((*n)++));
        };
      }
      c.batch_bytes = o.batch_bytes;
      c.linger = std::chrono::milliseconds(o.linger_ms);
      c.client_id = "runnel-perf-" + std::to_string(t);
      auto prod = runnel::producer::connect(c);
      if (!prod) usage_error(prod.error().what());
      connected.count_down();
      go.wait();
      std::string value(o.record_size, 'x');
      const double per_producer_rate = o.rate / o.producers;
      std::int64_t i = 0;
      auto cb = [&p](const runnel::result<runnel::delivery>& r) {
        if (r) p.done.fetch_add(1, std::memory_order_relaxed);
        else p.failed.fetch_add(1, std::memory_order_relaxed);
      };
      for (std::int64_t n = issued.fetch_add(1, std::memory_order_relaxed); n < o.records && clock_type::now() < deadline;
           n = issued.fetch_add(1, std::memory_order_relaxed)) {
        std::int64_t intended = now_ns();
        if (per_producer_rate > 0) {
          intended = std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count() +
                     static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / per_producer_rate);
          while (now_ns() < intended) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        ++i;
        if (value.size() >= 16) {
          std::memcpy(value.data(), &intended, 8);
          std::memcpy(value.data() + 8, &n, 8);
        }
        // Bounded memory: wait while too much is outstanding.
        while (i - (p.done.load(std::memory_order_relaxed) + p.failed.load(std::memory_order_relaxed)) / o.producers >
               4'000'000 / static_cast<std::int64_t>(std::max<std::size_t>(o.record_size, 1))) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        if (times == nullptr) {
          (*prod)->send(o.topic, std::nullopt, value, {}, cb);
          continue;
        }
        const auto slot = static_cast<std::size_t>(n);
        times->lag[slot] = ms_since(intended);
        (*prod)->send(o.topic, std::nullopt, value, {}, [cb, times, slot, intended](const runnel::result<runnel::delivery>& r) {
          if (r) times->ack[slot] = ms_since(intended);
          cb(r);
        });
      }
      (void)(*prod)->flush();
    });
  }
  connected.wait();
  start = clock_type::now();
  deadline = start + std::chrono::seconds(o.max_seconds);
  go.count_down();
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// With `times` (e2e), starts at the end and keeps each record's e2e latency.
double run_consumer(const options& o, progress& p, record_times* times) {
  runnel::consumer_config c;
  c.bootstrap = o.bootstrap;
  c.fetch_max_wait = std::chrono::milliseconds(100);
  c.max_partition_fetch_bytes = 4 << 20;
  auto cons = runnel::consumer::connect(c);
  if (!cons) usage_error(cons.error().what());
  std::vector<runnel::topic_partition_ref> parts;
  for (std::int32_t i = 0; i < o.partitions; ++i) parts.push_back({o.topic, i});
  if (auto r = (*cons)->assign(parts); !r) usage_error(r.error().what());
  if (times != nullptr) {
    for (const auto& tp : parts) (void)(*cons)->seek_to_end(tp);
  }
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::seconds(o.max_seconds);
  while (p.done.load() < o.records && clock_type::now() < deadline) {
    auto recs = (*cons)->poll(std::chrono::milliseconds(200));
    if (!recs) usage_error(recs.error().what());
    for (const auto& r : *recs) {
      if (times == nullptr || !r.value || r.value->size() < 16) continue;
      std::int64_t sent = 0;
      std::int64_t n = 0;
      std::memcpy(&sent, r.value->data(), 8);
      std::memcpy(&n, r.value->data() + 8, 8);
      if (n < 0 || n >= o.records) continue;  // not one of this run's records
      const auto slot = static_cast<std::size_t>(n);
      times->e2e[slot] = ms_since(sent);
      times->partition[slot] = r.partition;
      times->offset[slot] = r.offset;
    }
    p.done.fetch_add(static_cast<std::int64_t>(recs->size()));
  }
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// CPU time the hypervisor gave to others while this machine's CPUs wanted
// to run ("steal" in /proc/stat), summed over CPUs, in ms; -1 if unknown. A
// virtual machine's latency tail grows with it, whatever the broker does.
double steal_ms_now() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return -1;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                            &v[6], &v[7]);
  std::fclose(f);
  if (n != 8) return -1;
  return static_cast<double>(v[7]) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// One line per record: number, partition, offset, e2e, ack and send lag in
// ms (-1: not measured), for finding where a tail came from.
void write_latency_log(const std::string& path, const record_times& t) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) usage_error("cannot write " + path + ": " + std::strerror(errno));
  std::fprintf(f, "record partition offset e2e_ms ack_ms send_lag_ms\n");
  for (std::size_t i = 0; i < t.e2e.size(); ++i) {
    std::fprintf(f, "%zu %d %lld %.3f %.3f %.3f\n", i, t.partition[i], static_cast<long long>(t.offset[i]),
                 static_cast<double>(t.e2e[i]), static_cast<double>(t.ack[i]), static_cast<double>(t.lag[i]));
  }
  if (std::fclose(f) != 0) usage_error("cannot write " + path + ": " + std::strerror(errno));
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// How late a thread runs after it is due, two ways, 10,000 samples each at
// one per 200 µs: a sleeping thread's wake-up past its deadline, and the
// hand-off from one thread to another waiting on a condition variable
// (every hop between threads on the e2e path pays one).
struct wakeup_figures {
  std::vector<double> sleep_ms, handoff_ms;
};
wakeup_figures measure_wakeups() {
  constexpr int samples = 10000;
  constexpr auto period = std::chrono::microseconds(200);
  wakeup_figures f;
  auto next = clock_type::now();
  for (int i = 0; i < samples; ++i) {
    next += period;
    std::this_thread::sleep_until(next);
    f.sleep_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - next).count());
  }
  std::mutex mu;
  std::condition_variable cv;
  std::optional<clock_type::time_point> posted;
  bool done = false;
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return posted.has_value() || done; });
      if (!posted) return;
      f.handoff_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - *posted).count());
      posted.reset();
    }
  });
  next = clock_type::now();
  for (int i = 0; i < samples; ++i) {
    next += period;
    std::this_thread::sleep_until(next);
    {
      std::lock_guard lock(mu);
      posted = clock_type::now();
    }
    cv.notify_one();
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_one();
  waiter.join();
  return f;
}

// The machine's own limits, for side-by-side figures: loopback TCP
// throughput at 1 KiB and 1 MiB writes (one connection, 1 s each), the
// latency of a 4 KiB append + fdatasync (1000 times) in --dir, and thread
// wake-up delays (measure_wakeups).
int run_limits(const options& o) {
  auto tcp = [](std::size_t chunk) {
    int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(ls, 1);
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      int c = ::accept(ls, nullptr, nullptr);
      std::vector<char> buf(1 << 20);
      while (::read(c, buf.data(), buf.size()) > 0) {
      }
      ::close(c);
    });
    int w = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(w, reinterpret_cast<sockaddr*>(&a), sizeof a);
    std::vector<char> data(chunk, 'x');
    std::uint64_t bytes = 0, writes = 0;
    const auto start = clock_type::now();
    while (clock_type::now() - start < std::chrono::seconds(1)) {
      const ssize_t n = ::write(w, data.data(), data.size());
      if (n <= 0) break;
      bytes += static_cast<std::uint64_t>(n);
      ++writes;
    }
    const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
    ::close(w);
    reader.join();
    ::close(ls);
    stop = true;
    return std::pair{static_cast<double>(bytes) / secs / 1e6, static_cast<double>(writes) / secs};
  };
  auto [mb_1k, writes_1k] = tcp(1024);
  auto [mb_1m, writes_1m] = tcp(1 << 20);
  const std::string path = o.dir + "/runnel-perf-limits.tmp";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) usage_error("cannot create " + path);
  std::vector<char> block(4096, 'y');
  std::vector<double> lat;
  for (int i = 0; i < 1000; ++i) {
    const auto t0 = clock_type::now();
    if (::write(fd, block.data(), block.size()) != 4096 || ::fdatasync(fd) != 0) usage_error("write/fdatasync failed");
    lat.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  auto w = measure_wakeups();
  std::printf("{\"mode\":\"limits\",\"tcp_1k_mb_per_sec\":%.1f,\"tcp_1k_writes_per_sec\":%.0f,"
              "\"tcp_1m_mb_per_sec\":%.1f,\"append_4k_fdatasync_p50_ms\":%.3f,\"append_4k_fdatasync_p99_ms\":%.3f,"
              "\"append_4k_fdatasync_max_ms\":%.3f,\"sleep_overshoot_p99_ms\":%.3f,\"sleep_overshoot_p999_ms\":%.3f,"
              "\"thread_handoff_p50_ms\":%.3f,\"thread_handoff_p99_ms\":%.3f,\"thread_handoff_p999_ms\":%.3f}\n",
              mb_1k, writes_1k, mb_1m, percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1.0),
              percentile(w.sleep_ms, 0.99), percentile(w.sleep_ms, 0.999), percentile(w.handoff_ms, 0.5),
              percentile(w.handoff_ms, 0.99), percentile(w.handoff_ms, 0.999));
  (void)writes_1m;
  return 0;
}

}  // namespace runnel::perf

int main(int argc, char** argv) {
  using namespace runnel::perf;
  const options o = parse(argc, argv);
  if (o.mode == "limits") return run_limits(o);
  ensure_topic(o);
  if (o.mode == "rebalance") return run_rebalance(o);
  if (o.mode == "commits") return run_commits(o);
  if (o.mode == "share") return run_share(o);
  if (o.mode == "consume" && !o.group.empty()) return run_group_consume(o);
  progress p;
  double secs = 0;
  std::string extra;
  if (o.mode == "produce") {
    auto printer = progress_printer("produce", p);
    secs = run_producers(o, p);
    p.stop = true;
    printer.join();
  } else if (o.mode == "consume") {
    auto printer = progress_printer("consume", p);
    secs = run_consumer(o, p, nullptr);
    p.stop = true;
    printer.join();
  } else {
    record_times times(o.records);
    progress consumed;
    std::thread consumer([&] { run_consumer(o, consumed, &times); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the consumer is at the end first
    auto printer = progress_printer("e2e produce", p);
    const double steal_before = steal_ms_now();
    secs = run_producers(o, p, &times);
    const double steal = steal_before < 0 ? -1 : steal_ms_now() - steal_before;
    consumer.join();
    p.stop = true;
    printer.join();
    if (!o.latency_log.empty()) write_latency_log(o.latency_log, times);
    // Records sent in the warm-up are produced and consumed but not counted.
    const auto warmup = std::min(o.records, static_cast<std::int64_t>(o.warmup_seconds * o.rate));
    auto measured = [&](const std::vector<float>& f) {
      std::vector<double> d;
      for (auto i = static_cast<std::size_t>(warmup); i < f.size(); ++i) {
        if (f[i] >= 0) d.push_back(f[i]);
      }
      return d;
    };
    auto v = measured(times.e2e);
    auto lag = measured(times.lag);
    auto ack = measured(times.ack);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  ",\"warmup_records\":%lld,\"measured\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
                  "\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,\"ack_p999_ms\":%.3f,"
                  "\"send_lag_p99_ms\":%.3f,\"send_lag_p999_ms\":%.3f,\"host_steal_ms\":%.0f",
                  static_cast<long long>(warmup), v.size(), percentile(v, 0.5), percentile(v, 0.99),
                  percentile(v, 0.999), percentile(v, 1.0), percentile(ack, 0.5), percentile(ack, 0.99),
                  percentile(ack, 0.999), percentile(lag, 0.99), percentile(lag, 0.999), steal);
    extra = buf;
  }
  const auto n = p.done.load();
  std::printf("{\"mode\":\"%s\",\"topic\":\"%s\",\"partitions\":%d,\"record_size\":%zu,\"producers\":%d,\"acks\":%d,"
              "\"idempotence\":%s,\"records\":%lld,\"failed\":%lld,\"seconds\":%.3f,\"records_per_sec\":%.0f,\"mb_per_sec\":%.2f%s}\n",
              o.mode.c_str(), o.topic.c_str(), o.partitions, o.record_size, o.producers, o.acks,
              o.idempotence.value_or(o.acks == -1) ? "true" : "false", static_cast<long long>(n), static_cast<long long>(p.failed.load()), secs,
              static_cast<double>(n) / secs, static_cast<double>(n) * static_cast<double>(o.record_size) / secs / 1e6,
              extra.c_str());
  return p.failed.load() == 0 ? 0 : 1;
}
