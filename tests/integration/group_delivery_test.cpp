// At-least-once delivery through consumer groups, judged from outside:
// the acks the producer got, and what real consumer processes
// (group_consumer_child) logged as processed and committed.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/support/broker_process.h"
#include "tests/support/child_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::temp_dir;

namespace {

struct processed {
  int child = 0;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string value;
  std::string member;
  std::int32_t epoch = 0;
  long long ns = 0;
};

struct commit_line {
  int child = 0;
  std::int32_t partition = 0;
  std::int64_t next = 0;
};

struct run_log {
  std::vector<processed> records;
  std::vector<commit_line> commits;
  std::vector<commit_line> refused;
  std::size_t lost = 0;  // partitions reported lost (fenced)
};

void parse_log(const std::filesystem::path& file, int child, run_log& out) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "P") {
      processed p;
      p.child = child;
      ls >> p.partition >> p.offset >> p.value >> p.member >> p.epoch >> p.ns;
      if (ls) out.records.push_back(std::move(p));
    } else if (kind == "C" || kind == "F") {
      commit_line c;
      c.child = child;
      ls >> c.partition >> c.next;
      if (ls) (kind == "C" ? out.commits : out.refused).push_back(c);
    } else if (kind == "L") {
      ++out.lost;
    }
  }
}

struct verdict {
  std::size_t missing = 0;           // acknowledged, never processed
  std::size_t duplicates = 0;        // processed more than once
  std::size_t bad_duplicates = 0;    // ... and not explained by the killed member's uncommitted tail
  std::size_t overlaps = 0;          // a partition processed by two members at once
  std::size_t epoch_regressions = 0; // a member's epoch going down
  std::vector<std::string> notes;
};

// `killed`: the child index killed with -9 (-1: none). A duplicate is
// allowed only when its first processing was by that child at or after
// that child's last acknowledged commit for the partition.
verdict check(const std::set<std::string>& acked, const run_log& log, int killed) {
  verdict v;
  std::map<std::string, std::vector<const processed*>> by_value;
  for (const auto& p : log.records) by_value[p.value].push_back(&p);
  for (const auto& a : acked) {
    if (!by_value.contains(a)) {
      if (++v.missing <= 3) v.notes.push_back("missing " + a);
    }
  }
  std::map<std::int32_t, std::int64_t> killed_commit;
  for (const auto& c : log.commits) {
    if (c.child == killed) killed_commit[c.partition] = std::max(killed_commit[c.partition], c.next);
  }
  for (auto& [value, ps] : by_value) {
    if (ps.size() < 2) continue;
    ++v.duplicates;
    std::sort(ps.begin(), ps.end(), [](const processed* a, const processed* b) { return a->ns < b->ns; });
    const processed& first = *ps.front();
    const bool explained = first.child == killed && first.offset >= killed_commit[first.partition] && ps.size() == 2;
    if (!explained) {
      if (++v.bad_duplicates <= 3) {
        v.notes.push_back("duplicate " + value + " first by child " + std::to_string(first.child) + " at offset " +
                          std::to_string(first.offset));
      }
    }
  }
  // Stints: consecutive records of one partition (in time) by one member.
  // A partition moves to a member only at a higher member epoch than its
  // previous owner ever had while holding it (KIP-848), so the epochs of
  // successive stints must rise; two members consuming at once break that.
  std::map<std::int32_t, std::vector<const processed*>> by_partition;
  for (const auto& p : log.records) by_partition[p.partition].push_back(&p);
  for (auto& [part, ps] : by_partition) {
    std::sort(ps.begin(), ps.end(), [](const processed* a, const processed* b) { return a->ns < b->ns; });
    for (std::size_t i = 1; i < ps.size(); ++i) {
      const auto* before = ps[i - 1];
      const auto* after = ps[i];
      if (before->member == after->member) continue;
      if (after->epoch <= before->epoch) {
        if (++v.overlaps <= 3) {
          v.notes.push_back("partition " + std::to_string(part) + " went from " + before->member + " (epoch " +
                            std::to_string(before->epoch) + ") to " + after->member + " (epoch " +
                            std::to_string(after->epoch) + ")");
        }
      }
    }
  }
  std::map<std::string, std::int32_t> epochs;
  for (const auto& p : log.records) {
    auto& e = epochs[p.member];
    if (p.epoch < e) ++v.epoch_regressions;
    e = std::max(e, p.epoch);
  }
  return v;
}

// A group_consumer_child process and its log.
struct child_process : runnel::testing::child_process {
  std::filesystem::path log;
  child_process(const std::string& bootstrap, const std::string& group, const std::string& topic, std::filesystem::path l,
                const std::vector<std::string>& extra = {})
      : runnel::testing::child_process(argv_of(bootstrap, group, topic, l, extra)), log(std::move(l)) {}
  static std::vector<std::string> argv_of(const std::string& bootstrap, const std::string& group,
                                          const std::string& topic, const std::filesystem::path& l,
                                          const std::vector<std::string>& extra) {
    std::vector<std::string> argv{RUNNEL_GROUP_CHILD_BIN, bootstrap, group, topic, l.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

std::set<std::string> seen_values(const std::vector<std::unique_ptr<child_process>>& children) {
  run_log all;
  for (std::size_t i = 0; i < children.size(); ++i) parse_log(children[i]->log, static_cast<int>(i), all);
  std::set<std::string> out;
  for (const auto& p : all.records) out.insert(p.value);
  return out;
}

}  // namespace

TEST_CASE("group delivery: the checker catches a lost record, an unexplained duplicate and two owners at once") {
  std::set<std::string> acked{"r1", "r2", "r3"};
  run_log good;
  good.records = {{0, 0, 0, "r1", "A", 1, 10}, {0, 0, 1, "r2", "A", 1, 20}, {1, 0, 2, "r3", "B", 2, 30}};
  auto ok = check(acked, good, -1);
  CHECK(ok.missing == 0);
  CHECK(ok.bad_duplicates == 0);
  CHECK(ok.overlaps == 0);
  run_log lost = good;
  lost.records.pop_back();
  CHECK(check(acked, lost, -1).missing == 1);
  run_log dup = good;
  dup.records.push_back({1, 0, 1, "r2", "B", 2, 40});
  CHECK(check(acked, dup, -1).bad_duplicates == 1);
  // The same duplicate is explained when child 0 was killed after committing offset 1.
  dup.commits.push_back({0, 0, 1});
  CHECK(check(acked, dup, 0).bad_duplicates == 0);
  run_log both;
  both.records = {{0, 0, 0, "r1", "A", 1, 10}, {1, 0, 1, "r2", "B", 2, 20}, {0, 0, 2, "r3", "A", 1, 30},
                  {1, 0, 3, "r4", "B", 2, 40}};
  // A handover back at a higher epoch is no overlap.
  run_log back = good;
  back.records.push_back({0, 0, 3, "r4", "A", 3, 40});
  CHECK(check({"r1", "r2", "r3", "r4"}, back, -1).overlaps == 0);
  CHECK(check({"r1", "r2", "r3", "r4"}, both, -1).overlaps >= 1);
  run_log regress = good;
  regress.records.push_back({0, 0, 3, "r4", "A", 0, 50});
  CHECK(check(acked, regress, -1).epoch_regressions == 1);
}

TEST_CASE("group delivery: 3 consumer processes, one killed with -9, a fourth joins: every acked record processed") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "group.consumer.heartbeat.interval.ms=200", "--set",
                                       "offsets.topic.num.partitions=4"});
  admin_config ac;
  ac.bootstrap = broker.bootstrap();
  auto admin = admin::connect(ac);
  REQUIRE(admin.has_value());
  REQUIRE((*admin)->create_topic("alo", 6).has_value());
  const std::vector<std::string> opts{"--session-ms", "1500", "--commit-ms", "150"};
  std::vector<std::unique_ptr<child_process>> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(std::make_unique<child_process>(broker.bootstrap(), "alo-group", "alo",
                                                       dir / ("child" + std::to_string(i) + ".log"), opts));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  producer_config pc;
  pc.bootstrap = broker.bootstrap();
  pc.acks = -1;
  pc.linger = std::chrono::milliseconds(2);
  auto prod = producer::connect(pc);
  REQUIRE(prod.has_value());
  std::mutex mu;
  std::set<std::string> acked;
  const int total = 12'000;
  const auto start = std::chrono::steady_clock::now();
  bool killed = false;
  bool joined = false;
  for (int n = 0; n < total; ++n) {
    const std::string value = "r" + std::to_string(n);
    (*prod)->send("alo", value, value, {}, [&mu, &acked, value](const result<delivery>& r) {
      if (!r) return;
      std::lock_guard lock(mu);
      acked.insert(value);
    });
    // About 4,000 records/s: 3 s of production.
    const auto due = start + std::chrono::microseconds(250LL * n);
    std::this_thread::sleep_until(due);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (!killed && elapsed > std::chrono::milliseconds(1000)) {
      children[0]->kill9();
      killed = true;
    }
    if (!joined && elapsed > std::chrono::milliseconds(2000)) {
      children.push_back(std::make_unique<child_process>(broker.bootstrap(), "alo-group", "alo", dir / "child3.log", opts));
      joined = true;
    }
  }
  REQUIRE((*prod)->flush().has_value());
  std::set<std::string> want;
  {
    std::lock_guard lock(mu);
    want = acked;
  }
  CHECK(want.size() == static_cast<std::size_t>(total));
  // Everything acknowledged reaches some live member (bounded).
  const bool all_seen = runnel::testing::eventually(
      [&] {
        auto seen = seen_values(children);
        return std::includes(seen.begin(), seen.end(), want.begin(), want.end());
      },
      std::chrono::seconds(30));
  CHECK(all_seen);
  for (std::size_t i = 1; i < children.size(); ++i) CHECK(children[i]->term() == 0);
  run_log log;
  for (std::size_t i = 0; i < children.size(); ++i) parse_log(children[i]->log, static_cast<int>(i), log);
  auto v = check(want, log, 0);
  for (const auto& n : v.notes) MESSAGE(n);
  MESSAGE("processed " << log.records.size() << " records, " << v.duplicates << " twice (after the killed member's last commit)");
  CHECK(v.missing == 0);
  CHECK(v.bad_duplicates == 0);
  CHECK(v.overlaps == 0);
  CHECK(v.epoch_regressions == 0);
  CHECK(log.refused.empty());
}

namespace {

// The group's committed offset per partition (-1: none), read through a
// consumer that is not a member; a partition whose read failed is left out.
std::map<std::int32_t, std::int64_t> committed_now(consumer& c, const std::string& topic, int partitions) {
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    auto r = c.committed({topic, p});
    if (r) out[p] = *r ? (**r).offset : -1;
  }
  return out;
}

}  // namespace

TEST_CASE("group delivery: a paused member past its session is fenced, its commits are refused, offsets never go back") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "group.consumer.heartbeat.interval.ms=200", "--set",
                                       "offsets.topic.num.partitions=4"});
  admin_config ac;
  ac.bootstrap = broker.bootstrap();
  auto admin = admin::connect(ac);
  REQUIRE(admin.has_value());
  REQUIRE((*admin)->create_topic("zmb", 4).has_value());
  producer_config pc;
  pc.bootstrap = broker.bootstrap();
  pc.acks = -1;
  auto prod = producer::connect(pc);
  REQUIRE(prod.has_value());
  auto produce_some = [&](int from, int count) {
    std::vector<std::future<result<delivery>>> sent;
    for (int n = from; n < from + count; ++n) {
      sent.push_back((*prod)->send("zmb", "z" + std::to_string(n), "z" + std::to_string(n)));
    }
    for (auto& f : sent) REQUIRE(f.get().has_value());
  };
  const std::vector<std::string> opts{"--session-ms", "1000", "--commit-ms", "100"};
  std::vector<std::unique_ptr<child_process>> children;
  children.push_back(std::make_unique<child_process>(broker.bootstrap(), "zmb-group", "zmb", dir / "zombie.log", opts));
  children.push_back(std::make_unique<child_process>(broker.bootstrap(), "zmb-group", "zmb", dir / "other.log", opts));
  consumer_config watcher_cfg;
  watcher_cfg.bootstrap = broker.bootstrap();
  watcher_cfg.group_id = "zmb-group";
  auto watcher = consumer::connect(watcher_cfg);
  REQUIRE(watcher.has_value());

  // Offsets sampled all along must never go back.
  std::atomic<bool> sampling{true};
  std::atomic<int> backwards{0};
  std::thread sampler([&] {
    std::map<std::int32_t, std::int64_t> last;
    while (sampling) {
      for (const auto& [p, o] : committed_now(**watcher, "zmb", 4)) {
        last.try_emplace(p, -1);
        if (o < last[p]) {
          ++backwards;
          MESSAGE("partition " << p << " went back from " << last[p] << " to " << o);
        }
        last[p] = std::max(last[p], o);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // Both members hold partitions before the pause: records keep coming
  // until each has processed some (the second may join after the first
  // took every partition).
  int produced = 0;
  auto processed_by = [&](const std::filesystem::path& f) {
    run_log l;
    parse_log(f, 0, l);
    return l.records.size();
  };
  REQUIRE(runnel::testing::eventually(
      [&] {
        produce_some(produced, 40);
        produced += 40;
        return processed_by(dir / "zombie.log") > 0 && processed_by(dir / "other.log") > 0;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100)));
  produce_some(produced, 400 - produced);
  REQUIRE(produced <= 400);
  REQUIRE(runnel::testing::eventually([&] { return seen_values(children).size() >= 400; }, std::chrono::seconds(20)));
  // Pause the first member past its session timeout; its partitions move.
  ::kill(children[0]->pid(), SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  produce_some(400, 400);
  REQUIRE(runnel::testing::eventually([&] { return seen_values(children).size() >= 800; }, std::chrono::seconds(20)));
  // The new owner committed everything (positions at the end: 800 in all).
  REQUIRE(runnel::testing::eventually(
      [&] {
        std::int64_t total = 0;
        for (const auto& [p, o] : committed_now(**watcher, "zmb", 4)) total += std::max<std::int64_t>(o, 0);
        return total == 800;
      },
      std::chrono::seconds(10)));
  ::kill(children[0]->pid(), SIGCONT);
  // It learns it was fenced, rejoins and the group settles; a little more data.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  produce_some(800, 200);
  REQUIRE(runnel::testing::eventually([&] { return seen_values(children).size() >= 1000; }, std::chrono::seconds(20)));
  for (auto& c : children) CHECK(c->term() == 0);
  sampling = false;
  sampler.join();
  CHECK(backwards.load() == 0);
  run_log zombie;
  parse_log(dir / "zombie.log", 0, zombie);
  run_log other;
  parse_log(dir / "other.log", 1, other);
  // The other member consumed the zombie's partitions while it was paused.
  std::set<std::int32_t> other_parts;
  for (const auto& p : other.records) other_parts.insert(p.partition);
  CHECK(other_parts.size() == 4);
  // Final committed offsets cover everything; the zombie's stale commits
  // (if it tried any before learning it was fenced) were refused, never applied.
  std::int64_t total = 0;
  for (const auto& [p, o] : committed_now(**watcher, "zmb", 4)) total += o;
  CHECK(total == 1000);
  // It learnt it was fenced: a refused commit, or its partitions reported lost.
  MESSAGE("zombie: " << zombie.refused.size() << " commits refused, " << zombie.lost << " partitions lost");
  CHECK(zombie.refused.size() + zombie.lost > 0);
}

TEST_CASE("group delivery: a static member restarted within its session takes its place back, nobody rebalances") {
  temp_dir dir;
  broker_process broker(dir / "data", {"--set", "group.consumer.heartbeat.interval.ms=200", "--set",
                                       "offsets.topic.num.partitions=4"});
  admin_config ac;
  ac.bootstrap = broker.bootstrap();
  auto admin = admin::connect(ac);
  REQUIRE(admin.has_value());
  REQUIRE((*admin)->create_topic("stat", 4).has_value());
  auto opts = [](const std::string& id) {
    return std::vector<std::string>{"--instance", id, "--session-ms", "8000", "--commit-ms", "100"};
  };
  auto s1 = std::make_unique<child_process>(broker.bootstrap(), "static-group", "stat", dir / "s1.log", opts("s1"));
  auto s2 = std::make_unique<child_process>(broker.bootstrap(), "static-group", "stat", dir / "s2.log", opts("s2"));
  auto stable = [&] {
    auto d = (*admin)->describe_group("static-group");
    if (!d || d->state != "stable" || d->members.size() != 2) return std::optional<group_description>();
    for (const auto& m : d->members) {
      if (m.assignment.size() != 2) return std::optional<group_description>();
    }
    return std::optional<group_description>(*d);
  };
  std::optional<group_description> before;
  REQUIRE(runnel::testing::eventually([&] { return (before = stable()).has_value(); }, std::chrono::seconds(20)));
  std::map<std::string, std::vector<topic_partition_ref>> assignment_before;
  for (const auto& m : before->members) assignment_before[m.instance_id] = m.assignment;
  // What the other member logged up to now (its start-up rebalance included).
  const auto other_log_before = std::filesystem::file_size(dir / "s2.log");

  CHECK(s1->term() == 0);  // close(): leaves for now (epoch -2), keeps its partitions
  s1 = std::make_unique<child_process>(broker.bootstrap(), "static-group", "stat", dir / "s1-again.log", opts("s1"));
  producer_config pc;
  pc.bootstrap = broker.bootstrap();
  pc.acks = -1;
  auto prod = producer::connect(pc);
  REQUIRE(prod.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int n = 0; n < 200; ++n) sent.push_back((*prod)->send("stat", "s" + std::to_string(n), "s" + std::to_string(n)));
  for (auto& f : sent) REQUIRE(f.get().has_value());
  // The returned member consumes its old partitions.
  REQUIRE(runnel::testing::eventually(
      [&] {
        run_log l;
        parse_log(dir / "s1-again.log", 0, l);
        return !l.records.empty();
      },
      std::chrono::seconds(20)));
  auto after = stable();
  REQUIRE(after.has_value());
  CHECK(after->group_epoch == before->group_epoch);  // no rebalance
  for (const auto& m : after->members) CHECK(m.assignment == assignment_before[m.instance_id]);
  // The other member never lost or gave up a partition since.
  std::ifstream other(dir / "s2.log");
  other.seekg(static_cast<std::streamoff>(other_log_before));
  std::string line;
  std::size_t revoked = 0;
  while (std::getline(other, line)) revoked += line.starts_with("R ") || line.starts_with("L ") ? 1 : 0;
  CHECK(revoked == 0);
  CHECK(s1->term() == 0);
  CHECK(s2->term() == 0);
}
