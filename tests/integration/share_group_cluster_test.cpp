// Share groups in cluster mode (ADR 0016): each share partition is served
// by its partition's leader, and its state lives at the group's
// coordinator, often another broker. Killing a partition's leader, or the
// coordinator's broker, loses no acknowledgement: the checker below sees
// every record accepted and none delivered again once its acceptance was
// answered. The DLQ copy goes to the DLQ partition's leader, exactly once.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "runnel/share_consumer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/topic_reader.h"
#include "tests/support/eventually.h"

using namespace runnel;
using namespace std::chrono_literals;
using runnel::testing::cluster_harness;
using runnel::testing::connect_admin;
using runnel::testing::eventually;
using runnel::testing::read_topic;
using runnel::testing::stored_record;

namespace {

std::string payload(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "w-%05d", n);
  return buf;
}

void produce(const std::string& bootstrap, const std::string& topic, int count) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int n = 0; n < count; ++n) sent.push_back((*p)->send(topic, "k" + std::to_string(n), payload(n)));
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

// The judge: events get ticks of one clock. A record whose acceptance was
// answered at tick A must never be handed out by a poll that began after
// A; every record must be accepted in the end, or be in a commit whose
// answer was lost with a broker (the acceptance may have been written:
// then the record is rightly never delivered again).
struct journal {
  using key = std::pair<std::int32_t, std::int64_t>;  // partition, offset
  std::atomic<std::uint64_t> clock{0};
  std::mutex mu;
  std::map<key, std::uint64_t> accepted;  // the first answered acceptance
  std::set<key> uncertain;                // in a commit that failed
  std::map<key, int> deliveries;
  std::vector<std::string> violations;
  std::map<std::int32_t, std::size_t> delivered_after;  // per partition, by polls begun after `mark`
  std::uint64_t mark = ~std::uint64_t{0};

  void delivered(const key& k, std::uint64_t polled_at) {
    std::lock_guard lock(mu);
    ++deliveries[k];
    if (polled_at > mark) ++delivered_after[k.first];
    if (auto it = accepted.find(k); it != accepted.end() && it->second < polled_at && violations.size() < 10) {
      violations.push_back("partition " + std::to_string(k.first) + " offset " + std::to_string(k.second) +
                           ": accepted at tick " + std::to_string(it->second) + ", delivered again by a poll at tick " +
                           std::to_string(polled_at));
    }
  }
  void answered(const std::vector<key>& keys, std::uint64_t at) {
    std::lock_guard lock(mu);
    for (const auto& k : keys) accepted.try_emplace(k, at);
  }
  void failed(const std::vector<key>& keys) {
    std::lock_guard lock(mu);
    uncertain.insert(keys.begin(), keys.end());
  }
  std::size_t accepted_count() {
    std::lock_guard lock(mu);
    return accepted.size();
  }
  // Accepted, or maybe accepted.
  std::size_t settled_count() {
    std::lock_guard lock(mu);
    std::size_t n = accepted.size();
    for (const auto& k : uncertain) n += accepted.contains(k) ? 0 : 1;
    return n;
  }
};

// A member that accepts every record it gets, one commit per poll, until `stop`.
void work(const std::string& bootstrap, const std::string& group, const std::string& topic, journal& j,
          std::atomic<bool>& stop, std::atomic<int>& errors) {
  share_consumer_config cfg;
  cfg.bootstrap = bootstrap;
  cfg.group_id = group;
  cfg.explicit_acknowledgement = true;
  cfg.max_poll_records = 50;
  cfg.fetch_max_wait = 200ms;
  auto c = share_consumer::connect(cfg);
  REQUIRE(c.has_value());
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    if (auto s = (*c)->subscribe({topic}); s) break;
    std::this_thread::sleep_for(100ms);
  }
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    const std::uint64_t polled_at = ++j.clock;
    auto recs = (*c)->poll(200ms);
    if (!recs) {
      ++errors;  // a leader or coordinator moving: the next poll goes on
      std::this_thread::sleep_for(50ms);
      continue;
    }
    std::vector<journal::key> keys;
    for (const auto& r : *recs) {
      const journal::key k{r.partition, r.offset};
      j.delivered(k, polled_at);
      REQUIRE((*c)->acknowledge(r, acknowledge_type::accept).has_value());
      keys.push_back(k);
    }
    if (keys.empty()) continue;
    auto ok = (*c)->commit_sync();
    const std::uint64_t at = ++j.clock;
    if (ok) {
      j.answered(keys, at);
    } else {
      ++errors;  // not answered: those records may come again, or were accepted
      j.failed(keys);
    }
  }
  (void)(*c)->close();
}

struct members {
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  members(int n, const std::string& bootstrap, const std::string& group, const std::string& topic, journal& j) {
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, bootstrap, group, topic] { work(bootstrap, group, topic, j, stop, errors); });
    }
  }
  ~members() {
    stop = true;
    for (auto& t : threads) t.join();
  }
  members(const members&) = delete;
  members& operator=(const members&) = delete;
};

std::int32_t leader_of(const cluster_harness& c, const std::string& topic, std::int32_t partition) {
  auto d = c.describe(topic);
  REQUIRE(d.has_value());
  return d->partitions.at(static_cast<std::size_t>(partition)).leader;
}

// Which broker coordinates `group`: the leader of its offsets partition
// (FindCoordinator's answer).
std::int32_t coordinator_of(const cluster_harness& c, const std::string& group) {
  auto adm = connect_admin(c.bootstrap());
  auto g = adm->describe_group(group);
  REQUIRE(g.has_value());
  return g->coordinator;
}

void kill_and_finish(cluster_harness& c, journal& j, std::int32_t victim, int records) {
  j.mark = ++j.clock;
  c.kill9(victim);
  MESSAGE("killed broker " << victim << " with " << j.accepted_count() << " of " << records << " accepted");
  CHECK(eventually([&] { return j.settled_count() >= static_cast<std::size_t>(records); }, 150s));
  // Records only maybe accepted may still come back (their locks expire): let them.
  std::this_thread::sleep_for(4s);
}

void check_journal(journal& j, int records, std::int32_t partitions) {
  std::lock_guard lock(j.mu);
  CHECK(j.violations.empty());
  for (const auto& v : j.violations) MESSAGE(v);
  std::size_t maybe = 0;
  for (const auto& k : j.uncertain) maybe += j.accepted.contains(k) ? 0 : 1;
  MESSAGE(j.accepted.size() << " accepted, " << maybe << " more in commits whose answer was lost");
  CHECK(j.accepted.size() + maybe == static_cast<std::size_t>(records));  // every record accepted at least once
  CHECK(maybe <= 400);  // at most what was in flight when the broker died
  std::size_t after = 0;
  for (std::int32_t p = 0; p < partitions; ++p) after += j.delivered_after[p];
  CHECK(after > 0);  // the test did consume across the kill
}

}  // namespace

TEST_CASE("share group cluster: kill -9 a partition's leader while members accept: no accepted record comes again, every record is accepted") {
  cluster_harness c(3, {"--set", "offsets.topic.num.partitions=3", "--set", "share.record.lock.duration.ms=3000"});
  auto adm = connect_admin(c.bootstrap());
  REQUIRE(adm->create_topic("work", 2, 3).has_value());
  constexpr int records = 3000;
  produce(c.bootstrap(), "work", records);

  journal j;
  const std::int32_t victim = leader_of(c, "work", 0);
  {
    members m(2, c.bootstrap(), "workers", "work", j);
    REQUIRE(eventually([&] { return j.accepted_count() >= 800; }, 60s));
    kill_and_finish(c, j, victim, records);
  }
  check_journal(j, records, 2);
  CHECK(leader_of(c, "work", 0) != victim);
}

TEST_CASE("share group cluster: kill -9 the group coordinator's broker: acceptances written there survive") {
  cluster_harness c(3, {"--set", "offsets.topic.num.partitions=3", "--set", "share.record.lock.duration.ms=3000"});
  auto adm = connect_admin(c.bootstrap());
  REQUIRE(adm->create_topic("work", 3, 3).has_value());
  constexpr int records = 3000;
  produce(c.bootstrap(), "work", records);

  journal j;
  {
    members m(2, c.bootstrap(), "crew", "work", j);
    REQUIRE(eventually([&] { return j.accepted_count() >= 800; }, 60s));
    const std::int32_t victim = coordinator_of(c, "crew");
    REQUIRE(victim > 0);
    kill_and_finish(c, j, victim, records);
  }
  check_journal(j, records, 3);
}

namespace {

// Rejects every record whose payload number is a multiple of 10 and
// accepts the rest, until `records` are done; kills broker `victim()` once
// half are (when given). The rejected payloads.
std::set<std::string> reject_tenths(cluster_harness& c, share_consumer& cons, std::size_t records,
                                    const std::function<std::int32_t()>& victim) {
  std::set<std::string> done;
  std::set<std::string> rejected;
  bool killed = !victim;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (done.size() < records && std::chrono::steady_clock::now() < deadline) {
    auto recs = cons.poll(200ms);
    if (!recs) continue;
    std::vector<std::string> these;
    for (const auto& r : *recs) {
      const std::string v(*r.value);
      const bool reject = std::stoi(v.substr(2)) % 10 == 0;
      REQUIRE(cons.acknowledge(r, reject ? acknowledge_type::reject : acknowledge_type::accept).has_value());
      these.push_back(v);
    }
    if (these.empty() || !cons.commit_sync()) continue;
    for (const auto& v : these) {
      done.insert(v);
      if (std::stoi(v.substr(2)) % 10 == 0) rejected.insert(v);
    }
    if (!killed && done.size() >= records / 2) {
      c.kill9(victim());
      killed = true;
    }
  }
  CHECK(done.size() == records);
  CHECK(killed);
  return rejected;
}

// The DLQ copies in `topic`, by payload, each checked for its headers.
std::map<std::string, int> dlq_copies(const cluster_harness& c, const std::string& topic, const std::string& group,
                                      std::size_t expected) {
  REQUIRE(eventually([&] { return c.describe(topic).has_value(); }, 30s));  // a topic the broker may still be making
  std::vector<stored_record> dlq;
  CHECK(eventually([&] {
    dlq = read_topic(c.bootstrap(), topic);
    return dlq.size() >= expected;
  }, 60s));
  std::this_thread::sleep_for(1s);  // a second copy would show by now
  dlq = read_topic(c.bootstrap(), topic);
  std::map<std::string, int> copies;
  for (const auto& r : dlq) {
    ++copies[r.value];
    CHECK(r.headers.at("runnel.dlq.group") == group);
    CHECK(r.headers.at("runnel.msg.id") ==
          group + "/jobs/" + r.headers.at("runnel.dlq.partition") + "/" + r.headers.at("runnel.dlq.offset"));
  }
  return copies;
}

}  // namespace

TEST_CASE("share group cluster DLQ: rejected records are copied once to the DLQ partition's leader, across a leader kill -9") {
  cluster_harness c(3, {"--set", "offsets.topic.num.partitions=3"});
  auto adm = connect_admin(c.bootstrap());
  REQUIRE(adm->create_topic("jobs", 3, 3).has_value());
  // One DLQ partition: the copies of at least two source partitions are
  // written by their leaders to another broker.
  REQUIRE(adm->create_topic("jobs.dlq", 1, 3, {{"dedup.window.ms", "600000"}}).has_value());
  auto src = c.describe("jobs");
  auto dst = c.describe("jobs.dlq");
  REQUIRE(src.has_value());
  REQUIRE(dst.has_value());
  int elsewhere = 0;
  for (const auto& p : src->partitions) elsewhere += p.leader != dst->partitions.at(0).leader ? 1 : 0;
  REQUIRE(elsewhere >= 1);
  constexpr std::size_t records = 300;
  produce(c.bootstrap(), "jobs", records);
  // Group configs reach the coordinator wherever it is.
  REQUIRE(adm->alter_group_configs("dl", {{"share.dlq.topic", "jobs.dlq"}}).has_value());
  auto cfg = adm->describe_group_configs("dl");
  REQUIRE(cfg.has_value());
  CHECK(cfg->at("share.dlq.topic").value == "jobs.dlq");

  share_consumer_config sc;
  sc.bootstrap = c.bootstrap();
  sc.group_id = "dl";
  sc.explicit_acknowledgement = true;
  sc.fetch_max_wait = 200ms;
  auto cons = share_consumer::connect(sc);
  REQUIRE(cons.has_value());
  REQUIRE((*cons)->subscribe({"jobs"}).has_value());
  const auto rejected = reject_tenths(c, **cons, records, [&] { return leader_of(c, "jobs", 0); });
  REQUIRE(rejected.size() == records / 10);
  auto copies = dlq_copies(c, "jobs.dlq", "dl", rejected.size());
  CHECK(copies.size() == rejected.size());
  for (const auto& v : rejected) CHECK(copies[v] == 1);
  // Each partition's leader (on whichever broker) has every record done.
  auto group = adm->describe_group("dl");
  REQUIRE(group.has_value());
  CHECK(group->type == "share");
  auto stats = adm->describe_share_partitions(*group);
  REQUIRE_MESSAGE(stats.has_value(), stats.error().message);
  REQUIRE(stats->size() == 3);
  std::int64_t total = 0;
  for (const auto& p : *stats) {
    CHECK(p.start_offset == p.end_offset);
    CHECK(p.acquired == 0);
    total += p.end_offset;
  }
  CHECK(total == static_cast<std::int64_t>(records));
}

TEST_CASE("share group cluster DLQ: a DLQ topic that does not exist is made with the source's partitions and replication") {
  cluster_harness c(3, {"--set", "offsets.topic.num.partitions=1"});
  auto adm = connect_admin(c.bootstrap());
  REQUIRE(adm->create_topic("jobs", 3, 2).has_value());
  constexpr std::size_t records = 60;
  produce(c.bootstrap(), "jobs", records);
  REQUIRE(adm->alter_group_configs("auto", {{"share.dlq.topic", "jobs.auto"}}).has_value());
  share_consumer_config sc;
  sc.bootstrap = c.bootstrap();
  sc.group_id = "auto";
  sc.explicit_acknowledgement = true;
  sc.fetch_max_wait = 200ms;
  auto cons = share_consumer::connect(sc);
  REQUIRE(cons.has_value());
  REQUIRE((*cons)->subscribe({"jobs"}).has_value());
  const auto rejected = reject_tenths(c, **cons, records, {});
  REQUIRE(rejected.size() == records / 10);
  auto copies = dlq_copies(c, "jobs.auto", "auto", rejected.size());
  CHECK(copies.size() == rejected.size());
  for (const auto& v : rejected) CHECK(copies[v] == 1);
  auto d = c.describe("jobs.auto");
  REQUIRE(d.has_value());
  REQUIRE(d->partitions.size() == 3);
  for (const auto& p : d->partitions) CHECK(p.replicas.size() == 2);
  auto window = adm->describe_configs("jobs.auto");
  REQUIRE(window.has_value());
  CHECK(window->at("dedup.window.ms").value != "0");
}
