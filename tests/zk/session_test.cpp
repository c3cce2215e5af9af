// zk::session against a real ZooKeeper server (Debian's package, started by
// the test on a free 127.0.0.1 port with its own data directory).

#include "zk/session.h"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "tests/support/run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/zk_server.h"

using namespace runnel;
using runnel::testing::run;

namespace {

// One ZooKeeper for the whole suite: starting java costs seconds.
testing::zk_server& server() {
  static testing::temp_dir dir;
  static testing::zk_server zk(dir.path());
  return zk;
}

struct fixture {
  asio::io_context io;
  std::unique_ptr<zk::session> s;
  std::string root;

  fixture() {
    static int n = 0;
    root = "/t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
    s = connect();
  }
  std::unique_ptr<zk::session> connect(zk::session::event_fn fn = {}) {
    auto c = std::make_unique<zk::session>(io.get_executor(), server().connect_string(), std::chrono::seconds(4), std::move(fn));
    REQUIRE_FALSE(run(io, c->wait_connected(std::chrono::seconds(20))));
    return c;
  }
  // Runs the io_context until `done()` or `limit`.
  template <class F>
  void run_until(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(20));
    }
  }
};

}  // namespace

TEST_CASE("zk: create, get, set with compare-and-set, delete") {
  fixture f;
  auto& s = *f.s;
  auto path = run(f.io, s.create(f.root, "hello"));
  REQUIRE(path.has_value());
  CHECK(*path == f.root);
  auto n = run(f.io, s.get(f.root));
  REQUIRE(n.has_value());
  CHECK(n->data == "hello");
  CHECK(n->stat.version == 0);
  auto st = run(f.io, s.set(f.root, "v1", 0));
  REQUIRE(st.has_value());
  CHECK(st->version == 1);
  // A stale version loses the compare-and-set.
  auto stale = run(f.io, s.set(f.root, "v2", 0));
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error() == zk::make_error_code(zk::bad_version));
  CHECK(run(f.io, s.get(f.root))->data == "v1");
  CHECK(run(f.io, s.remove(f.root, 0)) == zk::make_error_code(zk::bad_version));
  CHECK_FALSE(run(f.io, s.remove(f.root, 1)));
  auto gone = run(f.io, s.get(f.root));
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error() == zk::make_error_code(zk::no_node));
  CHECK(gone.error().message().find("no node") != std::string::npos);
}

TEST_CASE("zk: errors are values: node exists, no parent, not empty") {
  fixture f;
  auto& s = *f.s;
  REQUIRE(run(f.io, s.create(f.root, "")).has_value());
  CHECK(run(f.io, s.create(f.root, "")).error() == zk::make_error_code(zk::node_exists));
  CHECK(run(f.io, s.create(f.root + "/a/b", "")).error() == zk::make_error_code(zk::no_node));
  REQUIRE(run(f.io, s.create(f.root + "/a", "")).has_value());
  CHECK(run(f.io, s.remove(f.root)) == zk::make_error_code(zk::not_empty));
  auto e = run(f.io, s.exists(f.root + "/nope"));
  REQUIRE(e.has_value());
  CHECK_FALSE(e->has_value());
}

TEST_CASE("zk: ensure_path, children and sequential nodes") {
  fixture f;
  auto& s = *f.s;
  REQUIRE_FALSE(run(f.io, s.ensure_path(f.root + "/brokers/ids")));
  REQUIRE_FALSE(run(f.io, s.ensure_path(f.root + "/brokers/ids")));  // idempotent
  auto a = run(f.io, s.create(f.root + "/brokers/ids/seq-", "", zk::create_mode::persistent_sequential));
  auto b = run(f.io, s.create(f.root + "/brokers/ids/seq-", "", zk::create_mode::persistent_sequential));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a < *b);
  CHECK(a->size() == (f.root + "/brokers/ids/seq-").size() + 10);  // 10-digit suffix
  auto kids = run(f.io, s.children(f.root + "/brokers/ids"));
  REQUIRE(kids.has_value());
  CHECK(kids->size() == 2);
}

TEST_CASE("zk: an ephemeral node goes away with its session") {
  fixture f;
  REQUIRE(run(f.io, f.s->create(f.root, "")).has_value());
  {
    auto other = f.connect();
    REQUIRE(run(f.io, other->create(f.root + "/eph", "me", zk::create_mode::ephemeral)).has_value());
    auto st = run(f.io, f.s->exists(f.root + "/eph"));
    REQUIRE(st->has_value());
    CHECK((*st)->ephemeral_owner == other->session_id());
  }  // session closed
  auto gone = run(f.io, f.s->exists(f.root + "/eph"));
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->has_value());
}

TEST_CASE("zk: multi is all or nothing") {
  fixture f;
  auto& s = *f.s;
  REQUIRE(run(f.io, s.create(f.root, "0")).has_value());
  std::vector<zk::op> bad{{zk::op::kind::create, f.root + "/x", "1"}, {zk::op::kind::check, f.root, "", {}, 7}};
  CHECK(run(f.io, s.multi(bad)) == zk::make_error_code(zk::bad_version));
  CHECK_FALSE(run(f.io, s.exists(f.root + "/x"))->has_value());
  std::vector<zk::op> good{{zk::op::kind::create, f.root + "/x", "1"}, {zk::op::kind::set, f.root, "2", {}, 0}};
  CHECK_FALSE(run(f.io, s.multi(good)));
  CHECK(run(f.io, s.get(f.root))->data == "2");
}

TEST_CASE("zk: watch_data delivers every change and deletion, on the executor") {
  fixture f;
  std::vector<std::optional<std::string>> seen;
  const auto me = std::this_thread::get_id();
  bool right_thread = true;
  auto sub = f.s->watch_data(f.root, [&](std::optional<zk::node> n) {
    right_thread = right_thread && std::this_thread::get_id() == me;
    seen.push_back(n ? std::optional<std::string>(n->data) : std::nullopt);
  });
  f.run_until([&] { return seen.size() >= 1; });
  REQUIRE(seen.size() == 1);
  CHECK_FALSE(seen[0].has_value());  // not there yet
  auto other = f.connect();
  REQUIRE(run(f.io, other->create(f.root, "a")).has_value());
  f.run_until([&] { return !seen.empty() && seen.back() == std::optional<std::string>("a"); });
  REQUIRE(run(f.io, other->set(f.root, "b")).has_value());
  f.run_until([&] { return !seen.empty() && seen.back() == std::optional<std::string>("b"); });
  REQUIRE_FALSE(run(f.io, other->remove(f.root)));
  f.run_until([&] { return !seen.empty() && !seen.back().has_value() && seen.size() > 2; });
  CHECK(seen.back() == std::nullopt);
  CHECK(right_thread);
  sub.reset();  // no more deliveries
  const auto count = seen.size();
  REQUIRE(run(f.io, other->create(f.root, "c")).has_value());
  f.run_until([] { return false; }, std::chrono::seconds(1));  // a late event would show up here
  CHECK(seen.size() == count);
}

TEST_CASE("zk: watch_children follows registrations") {
  fixture f;
  REQUIRE_FALSE(run(f.io, f.s->ensure_path(f.root + "/ids")));
  std::vector<std::size_t> sizes;
  auto sub = f.s->watch_children(f.root + "/ids", [&](std::optional<std::vector<std::string>> c) {
    sizes.push_back(c ? c->size() : 0);
  });
  f.run_until([&] { return !sizes.empty(); });
  auto b1 = f.connect();
  REQUIRE(run(f.io, b1->create(f.root + "/ids/1", "", zk::create_mode::ephemeral)).has_value());
  f.run_until([&] { return !sizes.empty() && sizes.back() == 1; });
  CHECK(sizes.back() == 1);
  b1.reset();  // the broker's session ends: its registration goes
  f.run_until([&] { return !sizes.empty() && sizes.back() == 0 && sizes.size() > 2; });
  CHECK(sizes.back() == 0);
}

TEST_CASE("zk: a session survives a ZooKeeper restart shorter than its timeout") {
  fixture f;
  std::vector<zk::session_state> events;
  auto s = f.connect([&](zk::session_state st) { events.push_back(st); });
  REQUIRE(run(f.io, s->create(f.root, "kept", zk::create_mode::ephemeral)).has_value());
  server().stop();
  server().start();
  REQUIRE_FALSE(run(f.io, s->wait_connected(std::chrono::seconds(20))));
  auto n = run(f.io, s->get(f.root));
  REQUIRE(n.has_value());  // same session: its ephemeral node is still there
  CHECK(n->data == "kept");
}

TEST_CASE("zk: operations still in flight when the session closes end, so the io_context runs out of work") {
  // Requests sent to a frozen server (SIGSTOP) wait for answers; closing
  // the session then dropped their completions, and the coroutines waiting
  // for them kept their io_context busy forever (a broker's SIGTERM hung).
  asio::io_context io;
  auto s = std::make_unique<zk::session>(io.get_executor(), server().connect_string(), std::chrono::seconds(4));
  REQUIRE_FALSE(run(io, s->wait_connected(std::chrono::seconds(20))));
  REQUIRE(::kill(server().pid(), SIGSTOP) == 0);
  int ended = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io,
        [&s, &ended]() -> asio::awaitable<void> {
          struct count_end {
            int& n;
            ~count_end() { ++n; }  // runs whether the coroutine resumes or is destroyed
          } guard{ended};
          (void)co_await s->get("/never");
        },
        asio::detached);
  }
  io.restart();
  io.run_for(std::chrono::milliseconds(200));  // the requests are sent and wait
  const int before_close = ended;
  s.reset();
  std::thread runner([&io] {
    io.restart();
    io.run();
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!io.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool ran_out = io.stopped();
  if (!ran_out) io.stop();  // do not hang the suite on failure
  runner.join();
  ::kill(server().pid(), SIGCONT);
  CHECK(before_close == 0);
  CHECK(ran_out);
  CHECK(ended == 3);
}
