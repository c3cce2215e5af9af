// runnel-perf's consumer group modes (docs/performance.md, "Consumer groups"):
//
//   consume --group G --consumers N   N members of a group read the topic from the
//                                     start with auto-commit every --auto-commit-ms
//   rebalance                         --consumers members read --partitions under a
//                                     producer at --rate; a member joins, later one
//                                     leaves: how long each move takes, and the longest
//                                     gap in consumption of partitions that did not move
//   commits                           --committers consumers commit as fast as they are
//                                     acknowledged (acks=all, member-less commits of
//                                     distinct groups), each OffsetCommit covering the
//                                     topic's --partitions: commits/s of one coordinator.
//                                     --window W: W-1 commit_async, then a commit_sync
//                                     (W commits on the wire per committer at most)
//   share --group G --consumers N     N share consumers (issue 13) read --records records
//                                     already in --topic, each sleeping --processing-ms
//                                     per record, acknowledging implicitly

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <unistd.h>
#include <vector>

#include "perf/perf.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "runnel/share_consumer.h"

namespace runnel::perf {

namespace {

runnel::consumer_config member_config(const options& o, const std::string& group) {
  runnel::consumer_config c;
  c.bootstrap = o.bootstrap;
  c.group_id = group;
  c.fetch_max_wait = std::chrono::milliseconds(100);
  c.max_partition_fetch_bytes = 4 << 20;
  c.auto_commit_interval = std::chrono::milliseconds(o.auto_commit_ms);
  c.start_at_earliest = true;
  return c;
}

// One consumption event: member m got records of partition p at ns.
struct event {
  std::int64_t ns;
  std::int32_t partition;
  int member;
};

// A group member on a thread of its own, recording what it consumed when.
class member_thread {
 public:
  member_thread(const options& o, const std::string& group, int index, std::mutex& mu, std::vector<event>& events)
      : thread_([this, &o, group, index, &mu, &events] {
          auto c = runnel::consumer::connect(member_config(o, group));
          if (!c) usage_error(c.error().what());
          if (auto r = (*c)->subscribe({o.topic}); !r) usage_error(r.error().what());
          std::vector<event> mine;
          while (!stop_.load()) {
            auto recs = (*c)->poll(std::chrono::milliseconds(50));
            if (!recs) continue;
            const auto now = now_ns();
            std::set<std::int32_t> parts;
            for (const auto& r : *recs) parts.insert(r.partition);
            for (auto p : parts) mine.push_back({now, p, index});
            consumed_.fetch_add(static_cast<std::int64_t>(recs->size()));
            if (mine.size() > 256) {
              std::lock_guard lock(mu);
              events.insert(events.end(), mine.begin(), mine.end());
              mine.clear();
            }
          }
          (void)(*c)->close();  // leaves the group at once
          std::lock_guard lock(mu);
          events.insert(events.end(), mine.begin(), mine.end());
        }) {}
  ~member_thread() { stop(); }
  member_thread(const member_thread&) = delete;             // owns a thread
  member_thread& operator=(const member_thread&) = delete;  // owns a thread
  member_thread(member_thread&&) = delete;                  // the thread holds `this`
  member_thread& operator=(member_thread&&) = delete;       // the thread holds `this`

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::int64_t consumed() const { return consumed_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> consumed_{0};
  std::thread thread_;
};

// Who consumed each partition last before `t` (-1: nobody).
std::map<std::int32_t, int> owners_at(const std::vector<event>& ev, std::int64_t t) {
  std::map<std::int32_t, int> out;
  for (const auto& e : ev) {
    if (e.ns < t) out[e.partition] = e.member;
  }
  return out;
}

struct phase_figures {
  double move_ms = -1;         // from the change to the last moved partition's first record at its new owner
  double max_gap_unmoved_ms = 0;
  int moved = 0;
};

// Partitions whose owner before `t` differs from their owner at `t + window`
// moved; for those, how long until the new owner consumed them; for the
// others, the longest gap between consumption events around `t`.
phase_figures measure_phase(const std::vector<event>& ev, std::int64_t t, std::int64_t window_ns) {
  phase_figures f;
  auto before = owners_at(ev, t);
  auto after = owners_at(ev, t + window_ns);
  for (const auto& [p, owner] : after) {
    const int old = before.contains(p) ? before[p] : -1;
    if (owner != old) {
      ++f.moved;
      for (const auto& e : ev) {
        if (e.partition == p && e.member == owner && e.ns >= t) {
          f.move_ms = std::max(f.move_ms, static_cast<double>(e.ns - t) / 1e6);
          break;
        }
      }
      continue;
    }
    std::int64_t last = -1;
    for (const auto& e : ev) {
      if (e.partition != p || e.ns < t - window_ns || e.ns > t + window_ns) continue;
      if (last >= 0) f.max_gap_unmoved_ms = std::max(f.max_gap_unmoved_ms, static_cast<double>(e.ns - last) / 1e6);
      last = e.ns;
    }
  }
  return f;
}

}  // namespace

int run_group_consume(const options& o) {
  progress p;
  auto printer = progress_printer("consume", p);
  std::vector<std::thread> threads;
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::seconds(o.max_seconds);
  std::atomic<std::int64_t> first_ns{0};
  for (int t = 0; t < o.consumers; ++t) {
    threads.emplace_back([&] {
      auto c = runnel::consumer::connect(member_config(o, o.group));
      if (!c) usage_error(c.error().what());
      if (auto r = (*c)->subscribe({o.topic}); !r) usage_error(r.error().what());
      while (p.done.load() < o.records && clock_type::now() < deadline) {
        auto recs = (*c)->poll(std::chrono::milliseconds(100));
        if (!recs) usage_error(recs.error().what());
        if (recs->empty()) continue;
        std::int64_t zero = 0;
        first_ns.compare_exchange_strong(zero, now_ns());
        p.done.fetch_add(static_cast<std::int64_t>(recs->size()));
      }
      (void)(*c)->close();
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  p.stop = true;
  printer.join();
  const auto n = p.done.load();
  const double join_ms =
      static_cast<double>(first_ns.load() - std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count()) / 1e6;
  std::printf("{\"mode\":\"consume\",\"group\":\"%s\",\"consumers\":%d,\"topic\":\"%s\",\"record_size\":%zu,\"records\":%lld,"
              "\"seconds\":%.3f,\"records_per_sec\":%.0f,\"mb_per_sec\":%.2f,\"first_record_ms\":%.1f,\"auto_commit_ms\":%d}\n",
              o.group.c_str(), o.consumers, o.topic.c_str(), o.record_size, static_cast<long long>(n), secs,
              static_cast<double>(n) / secs, static_cast<double>(n) * static_cast<double>(o.record_size) / secs / 1e6,
              join_ms, o.auto_commit_ms);
  return n >= o.records ? 0 : 1;
}

// Share group consumption (issue 13): --consumers share consumers of
// --group read --records records of --topic (already there), each
// sleeping --processing-ms per record, acknowledging implicitly.
int run_share(const options& o) {
  if (o.group.empty()) usage_error("share needs --group");
  progress p;
  auto printer = progress_printer("share", p);
  std::vector<std::thread> threads;
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::seconds(o.max_seconds);
  for (int t = 0; t < o.consumers; ++t) {
    threads.emplace_back([&] {
      runnel::share_consumer_config c;
      c.bootstrap = o.bootstrap;
      c.group_id = o.group;
      c.fetch_max_wait = std::chrono::milliseconds(100);
      // With slow records, small polls spread them over the members.
      c.max_poll_records = o.processing_ms > 0 ? 10 : 500;
      auto sc = runnel::share_consumer::connect(c);
      if (!sc) usage_error(sc.error().what());
      if (auto r = (*sc)->subscribe({o.topic}); !r) usage_error(r.error().what());
      while (p.done.load() < o.records && clock_type::now() < deadline) {
        auto recs = (*sc)->poll(std::chrono::milliseconds(100));
        if (!recs) usage_error(recs.error().what());
        for (std::size_t k = 0; k < recs->size(); ++k) {
          if (o.processing_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.processing_ms));
        }
        p.done.fetch_add(static_cast<std::int64_t>(recs->size()));
      }
      (void)(*sc)->close();
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  p.stop = true;
  printer.join();
  const auto n = p.done.load();
  std::printf("{\"mode\":\"share\",\"group\":\"%s\",\"consumers\":%d,\"topic\":\"%s\",\"processing_ms\":%d,"
              "\"records\":%lld,\"seconds\":%.3f,\"records_per_sec\":%.0f}\n",
              o.group.c_str(), o.consumers, o.topic.c_str(), o.processing_ms, static_cast<long long>(n), secs,
              static_cast<double>(n) / secs);
  return n >= o.records ? 0 : 1;
}

int run_rebalance(const options& o) {
  if (o.rate <= 0) usage_error("rebalance needs --rate");
  const std::string group = o.group.empty() ? "rebalance-" + std::to_string(::getpid()) : o.group;
  std::atomic<bool> producing{true};
  std::atomic<std::int64_t> sent{0};
  std::thread producer([&] {
    runnel::producer_config c;
    c.bootstrap = o.bootstrap;
    c.acks = o.acks;
    c.linger = std::chrono::milliseconds(o.linger_ms);
    auto prod = runnel::producer::connect(c);
    if (!prod) usage_error(prod.error().what());
    const std::string value(o.record_size, 'x');
    const auto start = clock_type::now();
    for (std::int64_t i = 0; producing.load(); ++i) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / o.rate)));
      (*prod)->send(o.topic, std::to_string(i), value, {}, nullptr);
      sent.fetch_add(1);
    }
    (void)(*prod)->flush();
  });
  std::mutex mu;
  std::vector<event> events;
  std::vector<std::unique_ptr<member_thread>> members;
  for (int m = 0; m < o.consumers; ++m) members.push_back(std::make_unique<member_thread>(o, group, m, mu, events));
  auto stable_for = [&](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  stable_for(std::chrono::seconds(4));
  const std::int64_t t_join = now_ns();
  members.push_back(std::make_unique<member_thread>(o, group, o.consumers, mu, events));
  stable_for(std::chrono::seconds(4));
  const std::int64_t t_leave = now_ns();
  members[0]->stop();  // close(): leaves at once
  stable_for(std::chrono::seconds(4));
  producing = false;
  producer.join();
  for (auto& m : members) m->stop();
  std::sort(events.begin(), events.end(), [](const event& a, const event& b) { return a.ns < b.ns; });
  const std::int64_t window = 3'000'000'000LL;
  const auto join = measure_phase(events, t_join, window);
  const auto leave = measure_phase(events, t_leave, window);
  std::printf("{\"mode\":\"rebalance\",\"topic\":\"%s\",\"partitions\":%d,\"rate\":%.0f,\"consumers\":%d,\"sent\":%lld,"
              "\"join_moved\":%d,\"join_move_ms\":%.1f,\"join_max_gap_unmoved_ms\":%.1f,"
              "\"leave_moved\":%d,\"leave_move_ms\":%.1f,\"leave_max_gap_unmoved_ms\":%.1f}\n",
              o.topic.c_str(), o.partitions, o.rate, o.consumers, static_cast<long long>(sent.load()), join.moved,
              join.move_ms, join.max_gap_unmoved_ms, leave.moved, leave.move_ms, leave.max_gap_unmoved_ms);
  return join.moved > 0 && leave.moved > 0 ? 0 : 1;
}

int run_commits(const options& o) {
  progress p;
  auto printer = progress_printer("commits", p);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  const auto seconds = std::chrono::seconds(o.max_seconds);
  for (int t = 0; t < o.committers; ++t) {
    threads.emplace_back([&, t] {
      runnel::consumer_config c;
      c.bootstrap = o.bootstrap;
      c.group_id = "commits-" + std::to_string(::getpid()) + "-" + std::to_string(t);
      c.enable_auto_commit = false;
      c.max_in_flight_commits = static_cast<std::size_t>(o.commit_window);
      auto cons = runnel::consumer::connect(c);
      if (!cons) usage_error(cons.error().what());
      while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const auto deadline = clock_type::now() + seconds;
      for (std::int64_t i = 1; clock_type::now() < deadline; ++i) {
        // One OffsetCommit request: every partition of the topic (--partitions).
        std::map<runnel::topic_partition_ref, runnel::offset_and_metadata> offsets;
        for (std::int32_t part = 0; part < std::max(1, o.partitions); ++part) {
          offsets[{o.topic, part}] = runnel::offset_and_metadata{i, {}, -1, -1};
        }
        auto count = [&p](const runnel::result<void>& r) {
          (r ? p.done : p.failed).fetch_add(1, std::memory_order_relaxed);
        };
        if (i % o.commit_window != 0) {
          (*cons)->commit_async(offsets, count);
        } else {
          count((*cons)->commit_sync(offsets));  // after the callbacks of the async ones
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // every committer connected
  const auto start = clock_type::now();
  go = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  p.stop = true;
  printer.join();
  std::printf("{\"mode\":\"commits\",\"committers\":%d,\"window\":%d,\"partitions_per_commit\":%d,\"commits\":%lld,\"failed\":%lld,"
              "\"seconds\":%.3f,\"commits_per_sec\":%.0f,\"offsets_per_sec\":%.0f}\n",
              o.committers, o.commit_window, std::max(1, o.partitions), static_cast<long long>(p.done.load()),
              static_cast<long long>(p.failed.load()), secs, static_cast<double>(p.done.load()) / secs,
              static_cast<double>(p.done.load()) * std::max(1, o.partitions) / secs);
  return p.failed.load() == 0 ? 0 : 1;
}

}  // namespace runnel::perf
