#pragma once
// What the fault scenarios share (faults_test.cpp, power_loss_test.cpp): a
// producer that records every acknowledgement in an ack_checker, topic
// creation, and the judgement after a fault healed.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"

namespace runnel::testing {

using namespace std::chrono_literals;

// Sends "r-<seq>" records round-robin over the partitions at about `rate`
// per second until stopped (bounded: 120 s, 500,000 records), recording
// acknowledgments in the checker, and how long a partition went without one
// (what the fault cost writers: the recovery time of docs/reliability.md).
class steady_producer {
 public:
  steady_producer(const cluster_harness& c, std::string topic, std::int32_t partitions, int acks, ack_checker& chk,
                  int rate = 1000, std::optional<bool> idempotence = std::nullopt, int partition_in_flight = 1)
      : steady_producer(c.bootstrap(), std::move(topic), partitions, acks, chk, rate, idempotence, partition_in_flight) {}
  steady_producer(const std::string& bootstrap, std::string topic, std::int32_t partitions, int acks, ack_checker& chk,
                  int rate, std::optional<bool> idempotence, int partition_in_flight)
      : topic_(std::move(topic)), partitions_(partitions), chk_(chk) {
    producer_config cfg;
    cfg.bootstrap = bootstrap;
    cfg.acks = acks;
    cfg.enable_idempotence = idempotence;
    cfg.max_in_flight_per_partition = partition_in_flight;
    // Pipelined: batches small enough to fill (and leave) while others are in flight.
    if (partition_in_flight > 1) cfg.batch_bytes = 2048;
    cfg.linger = 2ms;
    cfg.delivery_timeout = 30s;
    cfg.request_timeout = 5s;
    auto p = producer::connect(cfg);
    REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().what()));
    p_ = std::move(*p);
    thread_ = std::thread([this, rate] { run(rate); });
  }
  ~steady_producer() { stop(); }

  // Stops sending and waits for every outstanding record's outcome; false
  // if some are still outstanding after 90 s (their acks would come after
  // a check, which would count them as lost).
  bool stop() {
    if (!thread_.joinable()) return flushed_;
    stopping_ = true;
    thread_.join();
    flushed_ = p_->flush(90s).has_value();
    const auto [partition, gap] = longest_gap();
    if (std::uncaught_exceptions() == 0) {  // not from a destructor while a REQUIRE unwinds
      MESSAGE("recovery: writes to partition " << partition << " waited " << gap.count() << " ms for an ack (the longest wait)");
    }
    return flushed_;
  }
  // Whether `partition` had an acknowledgement after `t`.
  [[nodiscard]] bool acked_since(std::int32_t partition, std::chrono::steady_clock::time_point t) const {
    std::lock_guard g(gap_mu_);
    auto it = gaps_.find(partition);
    return it != gaps_.end() && it->second.last && *it->second.last > t;
  }
  // The partition whose acknowledgements were furthest apart, and that
  // time (from its first ack to its last).
  [[nodiscard]] std::pair<std::int32_t, std::chrono::milliseconds> longest_gap() const {
    std::lock_guard g(gap_mu_);
    std::pair<std::int32_t, std::chrono::milliseconds> worst{-1, 0ms};
    for (const auto& [p, gap] : gaps_) {
      if (gap.longest >= worst.second) worst = {p, std::chrono::duration_cast<std::chrono::milliseconds>(gap.longest)};
    }
    return worst;
  }
  [[nodiscard]] long acked() const { return acked_.load(); }
  [[nodiscard]] long failed() const { return failed_.load(); }

 private:
  void run(int rate) {
    const auto start = std::chrono::steady_clock::now();
    for (long seq = 0; !stopping_ && seq < 500'000 && std::chrono::steady_clock::now() - start < 120s; ++seq) {
      const auto due = start + std::chrono::microseconds(seq * 1'000'000 / rate);
      std::this_thread::sleep_until(due);
      char payload[32];
      std::snprintf(payload, sizeof payload, "r-%09ld", seq);
      const std::int32_t partition = static_cast<std::int32_t>(seq % partitions_);
      std::string v(payload);
      p_->send_to(topic_, partition, std::nullopt, v, {}, [this, partition, v](const result<delivery>& r) {
        if (r) {
          chk_.acked(partition, r->offset, v);
          ++acked_;
          note_ack(partition);
        } else {
          ++failed_;
        }
      });
    }
  }

  struct ack_gap {
    std::optional<std::chrono::steady_clock::time_point> last;
    std::chrono::steady_clock::duration longest{0};
  };
  void note_ack(std::int32_t partition) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard g(gap_mu_);
    auto& gap = gaps_[partition];
    if (gap.last) gap.longest = std::max(gap.longest, now - *gap.last);
    gap.last = now;
  }

  std::string topic_;
  std::int32_t partitions_;
  mutable std::mutex gap_mu_;
  std::map<std::int32_t, ack_gap> gaps_;
  ack_checker& chk_;
  std::unique_ptr<producer> p_;
  std::atomic<bool> stopping_{false};
  bool flushed_ = true;
  std::atomic<long> acked_{0};
  std::atomic<long> failed_{0};
  std::thread thread_;
};

inline void create_topic(const cluster_harness& c, const std::string& name, std::int32_t partitions,
                  std::map<std::string, std::string> configs) {
  admin_config ac;
  ac.bootstrap = c.bootstrap();
  ac.timeout = 10s;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  auto r = (*a)->create_topic(name, partitions, 3, configs);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().what()));
}

inline bool full_isr(const topic_info& t) {
  return std::all_of(t.partitions.begin(), t.partitions.end(),
                     [](const partition_info& p) { return p.leader > 0 && p.isr.size() == 3; });
}

// Heals, then judges: every partition fully replicated, every acked record
// there, in order, and all three replicas byte-identical.
inline void check_healed(cluster_harness& c, const std::string& topic, std::int32_t partitions, const ack_checker& chk) {
  REQUIRE(c.wait_for(topic, full_isr, 40s).has_value());
  auto stored = read_partitions(c.bootstrap(), topic, partitions);
  auto report = chk.check(stored);
  INFO(report.summary());
  CHECK(report.acked > 0);
  CHECK(report.ok());
  MESSAGE("checker: " << report.summary());
  for (std::int32_t p = 0; p < partitions; ++p) {
    std::string why;
    CHECK_MESSAGE(replicas_identical(c, {1, 2, 3}, topic, p, 20s, &why), "partition " << p << ": " << why);
  }
}

// For wait_for: partition 0 has a leader, and it is not `old`.
inline std::function<bool(const topic_info&)> leader_left(std::int32_t old) {
  return [old](const topic_info& t) { return t.partitions[0].leader > 0 && t.partitions[0].leader != old; };
}

inline std::int32_t leader_of(const cluster_harness& c, const std::string& topic, std::int32_t partition) {
  auto t = c.describe(topic);
  return t && partition < static_cast<std::int32_t>(t->partitions.size()) ? t->partitions[partition].leader : -1;
}

// After a fault healed: the ISR full again, a second of traffic on the
// healed cluster, then the producer stopped with every outcome known and
// the cluster judged (check_healed).
inline void finish_healed(cluster_harness& c, const std::string& topic, std::int32_t partitions, steady_producer& prod,
                   const ack_checker& chk) {
  const auto healed = std::chrono::steady_clock::now();
  REQUIRE(c.wait_for(topic, full_isr, 40s).has_value());
  MESSAGE("recovery: the ISR was full "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - healed).count()
          << " ms after the heal");
  std::this_thread::sleep_for(1000ms);
  REQUIRE(prod.stop());
  check_healed(c, topic, partitions, chk);
}

}  // namespace runnel::testing
