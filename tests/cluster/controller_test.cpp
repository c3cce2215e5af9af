// Membership and controller election against a real ZooKeeper: three
// "brokers" (one zk::session each) in one process.

#include "broker/cluster/controller.h"

#include <doctest/doctest.h>

#include <memory>

#include <asio/io_context.hpp>

#include "tests/support/run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/zk_server.h"

using namespace runnel;
using runnel::testing::run;

namespace {

struct node {
  std::unique_ptr<zk::session> session;
  std::unique_ptr<cluster::controller_election> election;
  std::vector<std::int64_t> elected;
};

struct fixture {
  testing::temp_dir dir;
  testing::zk_server zk{dir.path()};
  asio::io_context io;
  std::vector<std::unique_ptr<node>> nodes;

  node& add(std::int32_t id) {
    auto n = std::make_unique<node>();
    n->session = std::make_unique<zk::session>(io.get_executor(), zk.connect_string(), std::chrono::seconds(2));
    REQUIRE_FALSE(run(io, n->session->wait_connected(std::chrono::seconds(20))));
    cluster::broker_registration me{id, "127.0.0.1", static_cast<std::uint16_t>(9000 + id), id == 2 ? "rack-b" : ""};
    REQUIRE_FALSE(run(io, cluster::register_broker(*n->session, me, std::chrono::seconds(5))));
    auto* raw = n.get();
    n->election = std::make_unique<cluster::controller_election>(*n->session, id,
                                                                 [raw](std::int64_t e) { raw->elected.push_back(e); });
    n->election->start();
    nodes.push_back(std::move(n));
    return *nodes.back();
  }
  template <class F>
  bool run_until(F done, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(20));
    }
    return done();
  }
  int controllers() const {
    int n = 0;
    for (const auto& x : nodes) n += x && x->election && x->election->is_controller() ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("cluster: registration encodes address and rack") {
  auto r = cluster::decode_registration(3, cluster::encode_registration({3, "10.0.0.1", 9292, "r1"}));
  REQUIRE(r.has_value());
  CHECK(r->host == "10.0.0.1");
  CHECK(r->port == 9292);
  CHECK(r->rack == "r1");
  CHECK_FALSE(cluster::decode_registration(1, "no-port").has_value());
  CHECK_FALSE(cluster::decode_registration(1, "h:99999").has_value());
}

TEST_CASE("cluster: brokers register, exactly one controller is elected, epoch 1") {
  fixture f;
  f.add(1);
  f.add(2);
  f.add(3);
  REQUIRE(f.run_until([&] { return f.controllers() == 1; }));
  auto live = run(f.io, cluster::live_brokers(*f.nodes[0]->session));
  REQUIRE(live.has_value());
  REQUIRE(live->size() == 3);
  CHECK((*live)[1].rack == "rack-b");
  CHECK((*live)[2].port == 9003);
  for (const auto& n : f.nodes) {
    if (n->election->is_controller()) CHECK(n->election->epoch() == 1);
  }
  // Everyone agrees on who leads.
  REQUIRE(f.run_until([&] {
    const auto id = f.nodes[0]->election->controller_id();
    return id > 0 && f.nodes[1]->election->controller_id() == id && f.nodes[2]->election->controller_id() == id;
  }));
}

TEST_CASE("cluster: a registered id is not taken twice") {
  fixture f;
  f.add(1);
  auto other = std::make_unique<zk::session>(f.io.get_executor(), f.zk.connect_string(), std::chrono::seconds(2));
  REQUIRE_FALSE(run(f.io, other->wait_connected(std::chrono::seconds(20))));
  auto ec = run(f.io, cluster::register_broker(*other, {1, "127.0.0.1", 1, ""}, std::chrono::milliseconds(500)));
  CHECK(ec == zk::make_error_code(zk::node_exists));
}

TEST_CASE("cluster: when the controller's session ends another takes over with a higher epoch, and the old one is fenced") {
  fixture f;
  f.add(1);
  f.add(2);
  f.add(3);
  REQUIRE(f.run_until([&] { return f.controllers() == 1; }));
  std::size_t leader = 0;
  for (std::size_t i = 0; i < f.nodes.size(); ++i) {
    if (f.nodes[i]->election->is_controller()) leader = i;
  }
  // A fenced write by the current controller works.
  REQUIRE_FALSE(run(f.io, f.nodes[leader]->election->fenced_multi({{zk::op::kind::create, "/marker", "1"}})));
  // Keep the old controller's epoch version, then end its session.
  auto old_election = std::move(f.nodes[leader]->election);
  f.nodes[leader]->session.reset();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(f.run_until([&] { return f.controllers() == 1; }));
  const auto takeover = std::chrono::steady_clock::now() - t0;
  CHECK(takeover < std::chrono::seconds(5));  // session timeout 2 s; closing ends it at once
  for (const auto& n : f.nodes) {
    if (n->session && n->election && n->election->is_controller()) {
      CHECK(n->election->epoch() == 2);
      CHECK(n->elected == std::vector<std::int64_t>{2});
      REQUIRE_FALSE(run(f.io, n->election->fenced_multi({{zk::op::kind::set, "/marker", "2", zk::create_mode::persistent, -1}})));
      // A write fenced by epoch 1 (the deposed controller's) loses.
      std::vector<zk::op> stale{{zk::op::kind::check, "/controller_epoch", "", zk::create_mode::persistent, 0},
                                {zk::op::kind::set, "/marker", "stale", zk::create_mode::persistent, -1}};
      CHECK(run(f.io, n->session->multi(stale)) == zk::make_error_code(zk::bad_version));
    }
  }
  auto live = run(f.io, cluster::live_brokers(*f.nodes[(leader + 1) % 3]->session));
  REQUIRE(live.has_value());
  CHECK(live->size() == 2);  // its registration went with its session
  old_election.reset();
}
