#pragma once
// What runnel-perf's modes share (perf/runnel_perf.cpp, perf/group_perf.cpp).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace runnel::perf {

using clock_type = std::chrono::steady_clock;

struct options {
  std::string mode;
  std::string bootstrap = "127.0.0.1:9292";
  std::string topic = "perf";
  std::int32_t partitions = 1;
  std::int16_t replicas = 1;  // replication factor of a topic it creates (cluster mode)
  std::size_t record_size = 100;
  std::int64_t records = 1'000'000;
  double rate = 0;  // records/s over all producers; 0 = as fast as possible
  int producers = 1;
  int acks = 1;
  std::optional<bool> idempotence;  // --idempotence on|off; unset: the SDK's default (on with acks=all)
  int partition_in_flight = 1;      // --partition-in-flight N: batches per partition on the wire (idempotence)
  bool unique_msg_ids = false;      // --msg-ids unique: every record carries a unique runnel.msg.id
  std::size_t batch_bytes = 256 * 1024;
  int linger_ms = 5;
  int max_seconds = 300;
  double warmup_seconds = 0;  // e2e: records intended in the first S seconds are not counted
  std::string latency_log;    // e2e: per-record times to this file
  std::string dir = ".";  // limits: where to measure fdatasync
  // Consumer groups (perf/group_perf.cpp).
  std::string group;            // consume: read as this group (else assign())
  int consumers = 1;            // consume --group, rebalance: members
  int auto_commit_ms = 1000;    // consume --group: auto-commit interval
  int committers = 32;          // commits: concurrent committing consumers
  int commit_window = 1;        // commits: commits each committer has on the wire (async, then one sync)
  int processing_ms = 0;        // share: simulated work per record
};

struct progress {
  std::atomic<std::int64_t> done{0};
  std::atomic<std::int64_t> failed{0};
  std::atomic<bool> stop{false};
};

[[noreturn]] void usage_error(const std::string& msg);
long long number(const char* flag, const char* v);
std::int64_t now_ns();
// Prints "<what>: N records, X rec/s" once a second until p.stop.
std::thread progress_printer(const char* what, progress& p);
// Creates o.topic (o.partitions, o.replicas) unless it exists.
void ensure_topic(const options& o);
// Producers at o.rate (0: as fast as they go) until o.records; returns seconds.
struct record_times;
double run_producers(const options& o, progress& p, record_times* times = nullptr);

// Consumer groups (group_perf.cpp); each prints its JSON line, returns the exit code.
int run_group_consume(const options& o);
int run_rebalance(const options& o);
int run_commits(const options& o);
int run_share(const options& o);

}  // namespace runnel::perf
