// The cluster fault scenarios (issue 4): a real ZooKeeper, three real
// brokers, steady producers, and ack_checker judging every acknowledged
// record after the cluster healed. Scenario 6 is the negative control: the
// checker must see the loss that unclean election causes.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <cstdio>
#include <thread>

#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/fault_scenario.h"
#include "tests/support/batches.h"
#include "tests/support/eventually.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/netns.h"
#include "tests/support/raw_client.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;

namespace {

using namespace std::chrono_literals;

// Once the producer stopped (every outcome known: an ack arriving after the
// read would count as lost), what `bootstrap` reads back against the acks.
ack_checker::report settle_and_check(steady_producer& prod, const ack_checker& chk, const std::string& bootstrap,
                                     const std::string& topic, bool idempotence) {
  REQUIRE_MESSAGE(prod.stop(), "records still outstanding 90 s after the producer stopped");
  auto report = chk.check(read_partitions(bootstrap, topic, 2));
  MESSAGE("idempotence " << std::string(idempotence ? "on" : "off") << ": " << report.summary());
  return report;
}

// Every acknowledged record there exactly once, in order.
void check_exactly_once(const ack_checker::report& r) {
  CHECK(r.acked > 0);
  CHECK(r.ok());
  CHECK(r.duplicates == 0);
}

}  // namespace

TEST_CASE("faults 1: kill -9 the leader mid-stream, restart it: nothing acknowledged lost, replicas identical") {
  cluster_harness c;
  create_topic(c, "f1", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "f1", 2, -1, chk);
  std::this_thread::sleep_for(1500ms);
  const std::int32_t old = leader_of(c, "f1", 0);
  REQUIRE(old > 0);
  c.kill9(old);
  auto moved = c.wait_for("f1", leader_left(old),
                          15s);
  REQUIRE(moved.has_value());
  std::this_thread::sleep_for(1500ms);
  c.start(old);
  REQUIRE(c.wait_for("f1", full_isr, 30s).has_value());
  std::this_thread::sleep_for(1000ms);
  prod.stop();
  check_healed(c, "f1", 2, chk);
}

TEST_CASE("faults 2: a leader frozen past its session acknowledges nothing in its stale epoch and truncates its tail") {
  cluster_harness c;
  create_topic(c, "f2", 1, {{"min.insync.replicas", "2"}});
  const std::int32_t old = leader_of(c, "f2", 0);
  REQUIRE(old > 0);
  std::vector<std::int32_t> followers;
  for (std::int32_t id = 1; id <= 3; ++id) {
    if (id != old) followers.push_back(id);
  }
  // A tail only the old leader has: acks=1 records while the followers are
  // frozen briefly (after their pending long polls were answered, so no
  // response carries the tail into their sockets; well within the lag time).
  for (auto id : followers) c.pause(id);
  std::this_thread::sleep_for(800ms);
  {
    producer_config pc;
    pc.bootstrap = c.address(old);
    pc.acks = 1;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    for (int i = 0; i < 50; ++i) (*p)->send_to("f2", 0, std::nullopt, "tail-" + std::to_string(i), {}, nullptr);
    REQUIRE((*p)->flush(10s).has_value());
  }
  c.pause(old);
  // The scenario's premise, from the files: the tail is the old leader's
  // alone (a series once saw it kept everywhere; this says which side).
  auto holds_tail = [&](std::int32_t id) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(c.data_dir(id) / "f2-0", ec)) {
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      if (e.path().extension() == ".log" && bytes.find("tail-") != std::string::npos) return true;
    }
    return false;
  };
  CHECK_MESSAGE(holds_tail(old), "the old leader " << old << " lacks the acks=1 tail it acknowledged");
  for (auto id : followers) REQUIRE_MESSAGE(!holds_tail(id), "follower " << id << " got the tail while frozen");
  for (auto id : followers) c.resume(id);
  // The old leader's session expires; a follower takes over in a new epoch.
  ack_checker chk;
  auto moved = c.wait_for("f2", leader_left(old),
                          20s);
  REQUIRE(moved.has_value());
  steady_producer prod(c, "f2", 1, -1, chk);
  std::this_thread::sleep_for(1500ms);
  c.resume(old);
  std::this_thread::sleep_for(3000ms);
  prod.stop();
  check_healed(c, "f2", 1, chk);
  // The divergent acks=1 tail is gone from every replica (truncated on the old leader).
  auto stored = read_partitions(c.bootstrap(), "f2", 1);
  for (const auto& [off, v] : stored[0]) CHECK_MESSAGE(v.rfind("tail-", 0) != 0, "offset " << off << " kept " << v);
}

TEST_CASE("faults 3: kill the controller: a new one is elected and the dead broker's partitions get new leaders") {
  cluster_harness c;
  create_topic(c, "f3", 3, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "f3", 3, -1, chk);
  std::this_thread::sleep_for(1000ms);
  auto info = c.cluster();
  REQUIRE(info.has_value());
  const std::int32_t controller = info->controller;
  REQUIRE(controller > 0);
  c.kill9(controller);
  auto after = c.wait_for(
      "f3",
      [&](const topic_info& t) {
        return std::all_of(t.partitions.begin(), t.partitions.end(),
                           [&](const partition_info& p) { return p.leader > 0 && p.leader != controller; });
      },
      20s);
  REQUIRE(after.has_value());
  auto next = c.cluster();
  REQUIRE(next.has_value());
  CHECK(next->controller > 0);
  CHECK(next->controller != controller);
  std::this_thread::sleep_for(1000ms);
  c.start(controller);
  REQUIRE(c.wait_for("f3", full_isr, 30s).has_value());
  prod.stop();
  check_healed(c, "f3", 3, chk);
}

TEST_CASE("faults 4: two of three brokers down: acks=all gets NOT_ENOUGH_REPLICAS, acks=1 still works, and back: the ISR refills") {
  cluster_harness c;
  create_topic(c, "f4", 1, {{"min.insync.replicas", "2"}});
  const std::int32_t leader = leader_of(c, "f4", 0);
  REQUIRE(leader > 0);
  std::vector<std::int32_t> others;
  for (std::int32_t id = 1; id <= 3; ++id) {
    if (id != leader) others.push_back(id);
  }
  for (auto id : others) c.kill9(id);
  REQUIRE(c.wait_for("f4", [](const topic_info& t) { return t.partitions[0].isr.size() == 1; }, 20s).has_value());
  auto send_one = [&](int acks) {
    producer_config pc;
    pc.bootstrap = c.bootstrap();
    pc.acks = acks;
    pc.delivery_timeout = 3s;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    return (*p)->send("f4", std::nullopt, "one", {}).get();
  };
  auto all = send_one(-1);
  REQUIRE_FALSE(all.has_value());
  CHECK(all.error().code == errc::not_enough_replicas);
  auto one = send_one(1);
  CHECK_MESSAGE(one.has_value(), (one ? "" : one.error().what()));
  auto status = run_command({RUNNELCTL_BIN, "--bootstrap", c.bootstrap(), "cluster"});
  CHECK(status.exit_code == 0);
  CHECK_MESSAGE(status.out.find("under-replicated partitions: 1") != std::string::npos, status.out);
  CHECK_MESSAGE(status.out.find("f4/0 leader " + std::to_string(leader)) != std::string::npos, status.out);
  for (auto id : others) c.start(id);
  REQUIRE(c.wait_for("f4", full_isr, 30s).has_value());
  auto healed = run_command({RUNNELCTL_BIN, "--bootstrap", c.bootstrap(), "--json", "cluster"});
  CHECK(healed.exit_code == 0);
  CHECK_MESSAGE(healed.out.find("\"under_replicated\":[],\"offline\":[]") != std::string::npos, healed.out);
  auto again = send_one(-1);
  CHECK_MESSAGE(again.has_value(), (again ? "" : again.error().what()));
}

TEST_CASE("faults 5: ZooKeeper restarts under a running cluster: it keeps serving and recovers its sessions") {
  cluster_harness c;
  create_topic(c, "f5", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "f5", 2, -1, chk);
  std::this_thread::sleep_for(1000ms);
  const long before = prod.acked();
  c.zk().stop();
  std::this_thread::sleep_for(1500ms);
  const long during = prod.acked();
  CHECK(during > before);  // leaders keep serving while ZooKeeper is away
  c.zk().start();
  auto healed = c.cluster();
  for (int i = 0; i < 200 && !(healed && healed->brokers.size() == 3 && healed->controller > 0); ++i) {
    std::this_thread::sleep_for(100ms);
    healed = c.cluster();
  }
  REQUIRE(healed.has_value());
  CHECK(healed->brokers.size() == 3);
  CHECK(healed->controller > 0);
  std::this_thread::sleep_for(1500ms);
  prod.stop();
  check_healed(c, "f5", 2, chk);
}

TEST_CASE("faults 6 (negative control): unclean election with acks=1 loses records, and the checker says so") {
  cluster_harness c;
  create_topic(c, "f6", 1, {{"unclean.leader.election", "true"}});
  const std::int32_t leader = leader_of(c, "f6", 0);
  REQUIRE(leader > 0);
  std::vector<std::int32_t> followers;
  for (std::int32_t id = 1; id <= 3; ++id) {
    if (id != leader) followers.push_back(id);
  }
  ack_checker chk;
  // `n` records to partition 0 through the leader, numbered from `first`.
  auto send_n = [&](int acks, int first, int n) {
    producer_config pc;
    pc.bootstrap = c.address(leader);
    pc.acks = acks;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    for (int i = first; i < first + n; ++i) {
      char payload[32];
      std::snprintf(payload, sizeof payload, "r-%09d", i);
      std::string v(payload);
      (*p)->send_to("f6", 0, std::nullopt, v, {}, [&chk, v](const result<delivery>& r) {
        if (r) chk.acked(0, r->offset, v);
      });
    }
    REQUIRE((*p)->flush(10s).has_value());
  };
  // First 100 records with acks=all: every replica holds them.
  send_n(-1, 0, 100);
  REQUIRE(chk.acked_count() == 100);
  // Followers frozen past their sessions: the ISR shrinks to the leader,
  // which acknowledges acks=1 records nobody else has.
  for (auto id : followers) c.pause(id);
  std::this_thread::sleep_for(800ms);  // their pending long polls are answered: nothing more reaches them
  send_n(1, 100, 200);
  REQUIRE(chk.acked_count() == 300);
  std::this_thread::sleep_for(3000ms);
  c.kill9(leader);
  for (auto id : followers) c.resume(id);
  // With no ISR member alive, unclean election makes a lagging follower leader.
  auto moved = c.wait_for("f6", leader_left(leader),
                          30s);
  REQUIRE(moved.has_value());
  auto stored = read_partitions(c.bootstrap(), "f6", 1);
  auto report = chk.check(stored);
  MESSAGE("checker: " << report.summary());
  CHECK_FALSE(report.ok());
  // Exactly the acks=1 records are lost, and the replicated ones are read
  // back: a checker (or a read) that saw nothing would fail here.
  CHECK(report.lost == 200);
  CHECK(stored[0].size() == 100);
}

TEST_CASE("ack checker: two acknowledgements naming one offset with different payloads are a failure") {
  ack_checker chk;
  chk.acked(0, 0, "a-000000000");
  chk.acked(0, 1, "a-000000001");
  chk.acked(0, 1, "b-000000001");  // a second history at offset 1
  const std::map<std::int32_t, std::map<std::int64_t, std::string>> stored{{0, {{0, "a-000000000"}, {1, "a-000000001"}}}};
  auto r = chk.check(stored);
  CHECK_FALSE(r.ok());
  CHECK(r.conflicting == 1);
  CHECK(r.summary().find("b-000000001") != std::string::npos);
  ack_checker fine;
  fine.acked(0, 0, "a-000000000");
  fine.acked(0, 1, "a-000000001");
  CHECK(fine.check(stored).ok());
}

namespace {

// Kills the leader of partition 0 under a fast acks=all producer, twice,
// restarting it each time; the checker's report after healing.
ack_checker::report failover_under_load(const std::string& topic, bool idempotence, int partition_in_flight = 1,
                                        int rate = 20'000) {
  cluster_harness c;
  create_topic(c, topic, 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, topic, 2, -1, chk, rate, idempotence, partition_in_flight);
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(1500ms);
    const std::int32_t old = leader_of(c, topic, 0);
    REQUIRE(old > 0);
    c.kill9(old);
    auto moved = c.wait_for(
        topic, leader_left(old), 15s);
    REQUIRE(moved.has_value());
    std::this_thread::sleep_for(1000ms);
    c.start(old);
    REQUIRE(c.wait_for(topic, full_isr, 30s).has_value());
  }
  std::this_thread::sleep_for(500ms);
  REQUIRE(c.wait_for(topic, full_isr, 40s).has_value());
  return settle_and_check(prod, chk, c.bootstrap(), topic, idempotence);
}

}  // namespace

TEST_CASE("faults 7: an idempotent producer through two leader kills: every acknowledged record exactly once, in order") {
  check_exactly_once(failover_under_load("f7", true));
}

TEST_CASE("faults 7: the same with 5 batches of a partition in flight: exactly once, in order") {
  check_exactly_once(failover_under_load("f7p", true, 5, 10'000));
}

namespace {

// A fast acks=all producer whose answers from a standalone broker are lost
// on the way back, three times for 800 ms (the broker advertises a fault
// proxy in front of it and got every request): when the broken connections
// close, the producer retries what was in flight. The checker's report.
ack_checker::report answers_lost_under_load(const std::string& topic, bool idempotence) {
  temp_dir dir;
  fault_proxy proxy;
  broker_process broker(dir / "data", {"--set", "advertised.listeners=" + proxy.address()});
  proxy.set_target(broker.port());
  {
    admin_config ac;
    ac.bootstrap = broker.bootstrap();
    auto a = admin::connect(ac);
    REQUIRE(a.has_value());
    REQUIRE((*a)->create_topic(topic, 2, 1, {}).has_value());
  }
  ack_checker chk;
  steady_producer prod(broker.bootstrap(), topic, 2, -1, chk, 20'000, idempotence, 1);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(1000ms);
    const auto before = proxy.stats();
    proxy.set_fault(fault_proxy::fault::drop_responses);
    std::this_thread::sleep_for(800ms);
    proxy.heal();
    const auto after = proxy.stats();
    REQUIRE(after.dropped_down > before.dropped_down);  // answers were really lost
  }
  std::this_thread::sleep_for(500ms);
  auto report = settle_and_check(prod, chk, broker.bootstrap(), topic, idempotence);
  CHECK(proxy.stats().connections > 1);  // the producer's traffic went through the proxy, and reconnected
  return report;
}

}  // namespace

TEST_CASE("faults 8: answers lost between an idempotent producer and its broker: the retries are stored once") {
  check_exactly_once(answers_lost_under_load("f8", true));
}

// Replaces a negative control that killed the leader and hoped a batch was
// replicated but not yet answered at that moment (one CI run in many saw
// no duplicate): here the lost answers are certain.
TEST_CASE("faults 8 (negative control): the same without idempotence stores retried batches twice") {
  auto report = answers_lost_under_load("f8n", false);
  CHECK(report.acked > 0);
  CHECK(report.lost == 0);
  CHECK(report.duplicates > 0);
}

// --- network partitions and pauses (proxied cluster: every broker's clients and
// replica fetchers reach it through its fault proxy, and it reaches ZooKeeper
// through another). tests/series/faults.sh runs each of these 20 times.

TEST_CASE("partition 1: a leader cut off from its followers and clients, not from ZooKeeper: the ISR shrinks, nothing is acknowledged alone") {
  cluster_harness c(3, {}, true);
  create_topic(c, "p1", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p1", 2, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t leader = leader_of(c, "p1", 0);
  REQUIRE(leader > 0);
  c.proxy(leader).set_fault(fault_proxy::fault::blackhole);
  // Its session is alive, so it stays leader; its followers stop fetching
  // and leave the ISR (replica.lag.time.max.ms=2000): min.insync.replicas
  // then refuses acks=all, so nothing is acknowledged on the leader alone.
  auto shrunk = c.wait_for("p1", [&](const topic_info& t) {
    return t.partitions[0].leader == leader && t.partitions[0].isr.size() == 1;
  }, 15s);
  REQUIRE_MESSAGE(shrunk.has_value(), "the ISR of p1/0 never shrank to its cut-off leader");
  // Straight to its listener, past the proxy: acks=all is refused now.
  {
    const std::string addr = c.address(leader);
    raw_client direct(static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
    auto batch = make_batch();
    direct.send(produce_frame("p1", 0, batch, -1));
    auto r = direct.read();
    REQUIRE(r.has_value());
    const auto* resp = r->envelope().body_as_ProduceResponse();
    REQUIRE(resp != nullptr);
    CHECK(resp->topics()->Get(0)->partitions()->Get(0)->error() == wire::ErrorCode::NOT_ENOUGH_REPLICAS);
  }
  std::this_thread::sleep_for(1000ms);
  c.proxy(leader).heal();
  finish_healed(c, "p1", 2, prod, chk);
}

TEST_CASE("partition 2: a leader cut off from ZooKeeper, not from its followers: a new leader takes over and the old one acknowledges nothing it loses") {
  cluster_harness c(3, {}, true);
  create_topic(c, "p2", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p2", 2, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t old = leader_of(c, "p2", 0);
  REQUIRE(old > 0);
  const long before = prod.acked();
  c.zk_proxy(old).set_fault(fault_proxy::fault::blackhole);
  // Its session expires (2 s); the controller moves its partitions to
  // followers, which follow the new leader, while clients can still reach
  // the old one.
  auto moved = c.wait_for("p2", leader_left(old), 20s);
  REQUIRE_MESSAGE(moved.has_value(), "p2/0 kept its leader cut off from ZooKeeper");
  std::this_thread::sleep_for(2000ms);
  CHECK(prod.acked() > before);  // writes go on through the new leader
  c.zk_proxy(old).heal();
  finish_healed(c, "p2", 2, prod, chk);
}

TEST_CASE("partition 3: the controller paused like a long GC past its session: a new controller, and nothing acknowledged lost") {
  cluster_harness c(3, {}, true);
  create_topic(c, "p3", 3, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p3", 3, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  auto info = c.cluster();
  REQUIRE(info.has_value());
  const std::int32_t controller = info->controller;
  REQUIRE(controller > 0);
  auto before = c.describe("p3");
  REQUIRE(before.has_value());
  const bool leads = std::any_of(before->partitions.begin(), before->partitions.end(),
                                 [&](const partition_info& p) { return p.leader == controller; });
  MESSAGE("the controller " << controller << std::string(leads ? " leads" : " leads none") << " of p3's partitions");
  c.pause(controller);
  auto next = c.wait_for("p3", [&](const topic_info& t) {
    return std::all_of(t.partitions.begin(), t.partitions.end(),
                       [&](const partition_info& p) { return p.leader > 0 && p.leader != controller; });
  }, 20s);
  CHECK_MESSAGE(next.has_value(), "the paused controller's partitions kept it as leader");
  CHECK(eventually(
      [&] {
        auto now = c.cluster();
        return now && now->controller > 0 && now->controller != controller;
      },
      10s));
  std::this_thread::sleep_for(1000ms);
  c.resume(controller);  // wakes up in a world that moved on
  finish_healed(c, "p3", 3, prod, chk);
}

TEST_CASE("partition 4: a leader bounced twice in a row (kill -9, start, kill -9, start): one history per epoch") {
  cluster_harness c(3, {}, true);
  create_topic(c, "p4", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p4", 2, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t leader = leader_of(c, "p4", 0);
  REQUIRE(leader > 0);
  for (int bounce = 0; bounce < 2; ++bounce) {
    c.kill9(leader);
    c.start(leader);  // back before its old session expired
  }
  finish_healed(c, "p4", 2, prod, chk);
}

TEST_CASE("partition 5: the leader's links to everyone delayed 300 ms each way: slow, but nothing lost or doubled") {
  cluster_harness c(3, {}, true);
  create_topic(c, "p5", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p5", 2, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t leader = leader_of(c, "p5", 0);
  REQUIRE(leader > 0);
  const long before = prod.acked();
  c.proxy(leader).set_delay(300ms);
  c.zk_proxy(leader).set_delay(300ms);
  std::this_thread::sleep_for(3000ms);
  CHECK(prod.acked() > before);
  c.proxy(leader).set_delay(0ms);
  c.zk_proxy(leader).set_delay(0ms);
  finish_healed(c, "p5", 2, prod, chk);
}

// Network namespaces (root; ../shared/MACHINE.md): each broker on a host of
// its own behind a veth link, ZooKeeper and the clients on the bridge. A
// link taken down is a real partition: silent (no RST, no FIN), everything
// to and from the host lost, for TCP's own timers and the brokers' and
// clients' timeouts to find out, where the fault proxy closes connections.

TEST_CASE("partition 6: a leader's link goes down silently (netns) past its session, then up: a new leader, nothing acknowledged lost, one history") {
  netns_network net(3);
  REQUIRE_MESSAGE(net.ready(), net.error());
  cluster_harness c(3, net);
  create_topic(c, "p6", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p6", 2, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t old = leader_of(c, "p6", 0);
  REQUIRE(old > 0);
  c.cut(old);
  // Its session expires (2 s) at ZooKeeper; the controller (another broker,
  // or a new one if the cut broker was it) moves its partitions.
  auto moved = c.wait_for("p6", leader_left(old), 20s);
  REQUIRE_MESSAGE(moved.has_value(), "p6/0 kept its cut-off leader");
  const auto at_move = std::chrono::steady_clock::now();
  // The request in flight to the old leader hears nothing (no RST): it
  // ends by the producer's request.timeout (5 s), and its batch goes again
  // to the new leader while the old one is still cut off.
  CHECK_MESSAGE(eventually([&] { return prod.acked_since(0, at_move); }, 20s),
                "writes to p6/0 did not go on through its new leader");
  c.heal(old);  // it finds its session gone, registers again, follows and truncates
  finish_healed(c, "p6", 2, prod, chk);
}

TEST_CASE("partition 7: a follower's link goes down silently (netns): the ISR shrinks, acks=all goes on with min.insync.replicas=2, and it catches up") {
  netns_network net(3);
  REQUIRE_MESSAGE(net.ready(), net.error());
  cluster_harness c(3, net);
  create_topic(c, "p7", 1, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "p7", 1, -1, chk, 2'000);
  std::this_thread::sleep_for(1000ms);
  auto t = c.describe("p7");
  REQUIRE(t.has_value());
  const std::int32_t leader = t->partitions[0].leader;
  std::int32_t follower = -1;
  for (const auto id : t->partitions[0].replicas) {
    if (id != leader) follower = id;
  }
  REQUIRE(follower > 0);
  c.cut(follower);
  auto shrunk = c.wait_for("p7", [&](const topic_info& ti) {
    const auto& isr = ti.partitions[0].isr;
    return ti.partitions[0].leader == leader && isr.size() == 2 && std::find(isr.begin(), isr.end(), follower) == isr.end();
  }, 20s);
  CHECK_MESSAGE(shrunk.has_value(), "the cut-off follower stayed in the ISR");
  const long at_shrink = prod.acked();
  CHECK(eventually([&] { return prod.acked() > at_shrink + 1'000; }, 20s));  // acks=all with two in sync
  c.heal(follower);
  finish_healed(c, "p7", 1, prod, chk);
}

namespace {

// libfaketime (Debian libfaketime): the broker's wall clock (CLOCK_REALTIME)
// offset by what `file` says ("+0", "+49h", ...), read again every second;
// its monotonic clocks stay true, as a real wall-clock jump leaves them.
const char* const faketime_lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

std::vector<std::string> faketime_env(const std::filesystem::path& file) {
  return {std::string("LD_PRELOAD=") + faketime_lib, "FAKETIME_TIMESTAMP_FILE=" + file.string(),
          "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_CACHE_DURATION=1"};
}

void set_clock(const std::filesystem::path& file, const std::string& offset) {
  std::ofstream(file) << offset << "\n";
}

}  // namespace

TEST_CASE("faults 9: the leader's wall clock jumps two days ahead and back: nothing acknowledged lost, replicas identical") {
  REQUIRE_MESSAGE(std::filesystem::exists(faketime_lib), faketime_lib << " missing (./dev.sh deps installs libfaketime)");
  temp_dir clocks;
  for (std::int32_t id = 1; id <= 3; ++id) set_clock(clocks / ("b" + std::to_string(id)), "+0");
  cluster_harness c(3, {}, false, {}, [&](std::int32_t id) { return faketime_env(clocks / ("b" + std::to_string(id))); });
  create_topic(c, "f9", 2, {{"min.insync.replicas", "2"}});
  ack_checker chk;
  steady_producer prod(c, "f9", 2, -1, chk, 1000, true);
  std::this_thread::sleep_for(1000ms);
  const std::int32_t leader = leader_of(c, "f9", 0);
  REQUIRE(leader > 0);
  const auto clock = clocks / ("b" + std::to_string(leader));
  // Past producer.id.expiration.ms (a day): the leader takes the idempotent
  // producer for expired, and the producer must start a new epoch.
  set_clock(clock, "+49h");
  const auto before = chk.acked_count();
  std::this_thread::sleep_for(3000ms);
  MESSAGE("leader " << leader << " two days ahead: " << chk.acked_count() - before << " acknowledged meanwhile");
  CHECK(chk.acked_count() > before);  // the cluster kept taking records
  set_clock(clock, "+0");  // and back: its clock now runs two days behind what it stamped
  std::this_thread::sleep_for(2000ms);
  // A restart on top: recovery reads the log whose times jumped.
  c.kill9(leader);
  REQUIRE(c.wait_for("f9", leader_left(leader), 15s).has_value());
  c.start(leader);
  finish_healed(c, "f9", 2, prod, chk);
}

TEST_CASE("faults 9 (control): the faked clock reaches the broker") {
  // Without this, a libfaketime that did not load would make faults 9 pass
  // on an unjumped clock. The broker's log lines carry its wall clock.
  REQUIRE_MESSAGE(std::filesystem::exists(faketime_lib), faketime_lib << " missing (./dev.sh deps installs libfaketime)");
  temp_dir t;
  set_clock(t / "clock", "+49h");
  std::string first;
  {
    broker_process b(t / "data", {}, faketime_env(t / "clock"));
    std::ifstream in(t / "data.broker.log");
    std::getline(in, first);
  }
  const auto ahead = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::hours(49));
  std::tm tm{};
  ::localtime_r(&ahead, &tm);  // spdlog stamps local time
  char want[16];
  std::strftime(want, sizeof want, "%Y-%m-%d", &tm);
  CHECK_MESSAGE(first.find(want) != std::string::npos, "broker log line '" << first << "' is not stamped " << want);
}
