// Consumer groups through the SDK against a real (embedded) broker:
// subscribe, poll, commit, resume from committed offsets, rebalance.

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "runnel/testing/embedded_broker.h"
#include "tests/support/eventually.h"

using namespace runnel;

namespace {

std::unique_ptr<testing::EmbeddedBroker> start_broker() {
  testing::embedded_broker_options o;
  o.config["group.consumer.heartbeat.interval.ms"] = "100";
  o.config["group.consumer.session.timeout.ms"] = "3000";
  o.config["offsets.topic.num.partitions"] = "4";
  auto b = testing::EmbeddedBroker::start(o);
  REQUIRE(b.has_value());
  return std::move(*b);
}

void produce(const std::string& bootstrap, const std::string& topic, int count, int first = 0) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int i = first; i < first + count; ++i) sent.push_back((*p)->send(topic, "k" + std::to_string(i), "v" + std::to_string(i)));
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

consumer_config group_config(const std::string& bootstrap, const std::string& group) {
  consumer_config cc;
  cc.bootstrap = bootstrap;
  cc.group_id = group;
  cc.fetch_max_wait = std::chrono::milliseconds(100);
  return cc;
}

// Polls until `want` distinct values arrived or 15 s passed.
std::set<std::string> read_values(consumer& c, std::size_t want) {
  std::set<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto r = c.poll(std::chrono::milliseconds(200));
    REQUIRE(r.has_value());
    for (const auto& rec : *r) got.insert(std::string(*rec.value));
  }
  return got;
}

}  // namespace

TEST_CASE("consumer group: a subscribed consumer reads everything, commits, and a new one resumes there") {
  auto b = start_broker();
  admin_config ac;
  ac.bootstrap = b->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("g1", 3).has_value());
  produce(b->bootstrap(), "g1", 300);
  {
    auto c = consumer::connect(group_config(b->bootstrap(), "readers"));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe({"g1"}).has_value());
    CHECK(read_values(**c, 300).size() == 300);
    CHECK((*c)->assignment().size() == 3);
    REQUIRE((*c)->commit_sync().has_value());
    std::int64_t total = 0;
    for (int p = 0; p < 3; ++p) {
      auto committed = (*c)->committed({"g1", p});
      REQUIRE(committed.has_value());
      REQUIRE(committed->has_value());
      total += (*committed)->offset;
    }
    CHECK(total == 300);
    REQUIRE((*c)->close().has_value());
  }
  produce(b->bootstrap(), "g1", 30, 1000);
  auto c2 = consumer::connect(group_config(b->bootstrap(), "readers"));
  REQUIRE(c2.has_value());
  REQUIRE((*c2)->subscribe({"g1"}).has_value());
  auto got = read_values(**c2, 30);
  CHECK(got.size() == 30);
  CHECK(got.contains("v1000"));
  CHECK_FALSE(got.contains("v0"));  // committed before: not read again
}

namespace {

// The first error poll() returns within 10 s (nullopt: none came).
std::optional<error> first_poll_error(consumer& c) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.poll(std::chrono::milliseconds(200));
    if (!r) return r.error();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("consumer group: bad input answers its error code and the broker keeps serving") {
  auto b = start_broker();
  admin_config ac;
  ac.bootstrap = b->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("bad", 2).has_value());

  SUBCASE("a malformed regex") {
    auto c = consumer::connect(group_config(b->bootstrap(), "regex-group"));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe_pattern("ba(d").has_value());
    auto e = first_poll_error(**c);
    REQUIRE(e.has_value());
    CHECK(e->code == errc::invalid_regular_expression);
  }
  SUBCASE("a group id over the length limit") {
    auto c = consumer::connect(group_config(b->bootstrap(), std::string(256, 'g')));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe({"bad"}).has_value());
    auto e = first_poll_error(**c);
    REQUIRE(e.has_value());
    CHECK(e->code == errc::invalid_group_id);
  }
  SUBCASE("a commit for an unknown topic or partition") {
    auto c = consumer::connect(group_config(b->bootstrap(), "simple-group"));
    REQUIRE(c.has_value());
    auto r = (*c)->commit_sync({{{"no-such-topic", 0}, offset_and_metadata{5, {}, -1, -1}}});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unknown_topic_or_partition);
    auto r2 = (*c)->commit_sync({{{"bad", 7}, offset_and_metadata{5, {}, -1, -1}}});
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().code == errc::unknown_topic_or_partition);
  }
  SUBCASE("a commit without a member while the group has members") {
    auto member = consumer::connect(group_config(b->bootstrap(), "busy-group"));
    REQUIRE(member.has_value());
    REQUIRE((*member)->subscribe({"bad"}).has_value());
    REQUIRE(runnel::testing::eventually(
        [&] {
          (void)(*member)->poll(std::chrono::milliseconds(50));
          return (*member)->assignment().size() == 2;
        },
        std::chrono::seconds(10)));
    auto outsider = consumer::connect(group_config(b->bootstrap(), "busy-group"));
    REQUIRE(outsider.has_value());
    auto r = (*outsider)->commit_sync({{{"bad", 0}, offset_and_metadata{1, {}, -1, -1}}});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::non_empty_group);
  }
  SUBCASE("subscribe without a group id, assign while subscribed") {
    consumer_config cc;
    cc.bootstrap = b->bootstrap();
    auto plain = consumer::connect(cc);
    REQUIRE(plain.has_value());
    auto r = (*plain)->subscribe({"bad"});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    auto c = consumer::connect(group_config(b->bootstrap(), "g"));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe({"bad"}).has_value());
    auto r2 = (*c)->assign({{"bad", 0}});
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().code == errc::invalid_argument);
  }
  // Still serving.
  produce(b->bootstrap(), "bad", 3);
  auto c = consumer::connect(group_config(b->bootstrap(), "after"));
  REQUIRE(c.has_value());
  REQUIRE((*c)->subscribe({"bad"}).has_value());
  CHECK(read_values(**c, 3).size() == 3);
}

TEST_CASE("consumer group: two members split the partitions, a third joining moves only what it must") {
  auto b = start_broker();
  admin_config ac;
  ac.bootstrap = b->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("split", 6).has_value());
  std::vector<std::unique_ptr<consumer>> members;
  auto add_member = [&] {
    auto c = consumer::connect(group_config(b->bootstrap(), "splitters"));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe({"split"}).has_value());
    members.push_back(std::move(*c));
  };
  auto settled = [&](std::size_t n) {
    return runnel::testing::eventually(
        [&] {
          std::set<topic_partition_ref> all;
          std::size_t count = 0;
          for (auto& m : members) {
            (void)m->poll(std::chrono::milliseconds(20));
            for (const auto& tp : m->assignment()) all.insert(tp);
            count += m->assignment().size();
          }
          // Every partition owned, by exactly one member, evenly.
          if (all.size() != 6 || count != 6) return false;
          for (auto& m : members) {
            if (m->assignment().size() != 6 / n) return false;
          }
          return true;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(10));
  };
  add_member();
  add_member();
  REQUIRE(settled(2));
  std::map<std::size_t, std::vector<topic_partition_ref>> before;
  for (std::size_t i = 0; i < 2; ++i) before[i] = members[i]->assignment();
  add_member();
  REQUIRE(settled(3));
  // Sticky: each of the first two keeps two of its three partitions.
  for (std::size_t i = 0; i < 2; ++i) {
    std::size_t kept = 0;
    for (const auto& tp : members[i]->assignment()) kept += std::count(before[i].begin(), before[i].end(), tp);
    CHECK(kept == 2);
  }
}

TEST_CASE("consumer group: a member that stops polling past max.poll.interval leaves, and rejoins when it polls again") {
  auto b = start_broker();
  admin_config ac;
  ac.bootstrap = b->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("slow", 4).has_value());
  auto cfg = group_config(b->bootstrap(), "pollers");
  cfg.max_poll_interval = std::chrono::milliseconds(600);
  auto busy = consumer::connect(cfg);
  auto idle = consumer::connect(cfg);
  REQUIRE(busy.has_value());
  REQUIRE(idle.has_value());
  REQUIRE((*busy)->subscribe({"slow"}).has_value());
  REQUIRE((*idle)->subscribe({"slow"}).has_value());
  auto both_hold = [&](std::size_t busy_count) {
    return runnel::testing::eventually(
        [&] {
          (void)(*busy)->poll(std::chrono::milliseconds(20));
          (void)(*idle)->poll(std::chrono::milliseconds(20));
          return (*busy)->assignment().size() == busy_count && (*idle)->assignment().size() == 4 - busy_count;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(10));
  };
  REQUIRE(both_hold(2));
  // `idle` stops polling: past 600 ms it leaves and `busy` takes everything.
  REQUIRE(runnel::testing::eventually(
      [&] {
        (void)(*busy)->poll(std::chrono::milliseconds(20));
        return (*busy)->assignment().size() == 4;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(10)));
  // Polling again: its partitions were lost (not revoked), it joins again.
  struct counting final : rebalance_listener {
    int lost = 0;
    void on_partitions_lost(consumer& /*c*/, const std::vector<topic_partition_ref>& p) override {
      lost += static_cast<int>(p.size());
    }
  } l;
  REQUIRE((*idle)->subscribe({"slow"}, &l).has_value());
  CHECK(both_hold(2));
  CHECK(l.lost == 2);
}

TEST_CASE("consumer group: producers cannot write __consumer_offsets") {
  auto b = start_broker();
  auto c = consumer::connect(group_config(b->bootstrap(), "creates-the-topic"));
  REQUIRE(c.has_value());
  // The first group request (FindCoordinator) creates __consumer_offsets.
  auto probe = (*c)->committed({"no-such-topic", 0});
  REQUIRE(probe.has_value());
  producer_config pc;
  pc.bootstrap = b->bootstrap();
  pc.acks = -1;
  pc.delivery_timeout = std::chrono::milliseconds(2000);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  auto sent = (*p)->send_to("__consumer_offsets", 0, "k", "v").get();
  REQUIRE_FALSE(sent.has_value());
  CHECK(sent.error().code == errc::invalid_topic);
}
