// The membership state machine (broker/group/membership.h), judged by what
// a member is answered and by the group's assigned/revoking sets.
#include "broker/group/membership.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/group/records.h"
#include "tests/group/group_checks.h"

using runnel::partition_id;
using runnel::topic_partition;
using namespace runnel::group;
using namespace runnel::group::testing;
using namespace std::chrono_literals;

namespace {

struct harness {
  group g;
  topic_counts topics{{"t", 6}};
  group_limits limits;
  clock_type::time_point now = clock_type::time_point{} + 1h;

  harness() { g.id = "g"; }

  std::expected<heartbeat_result, error> hb(const heartbeat_request& r) {
    return ::runnel::group::heartbeat(g, r, topics, now, limits);
  }
  heartbeat_result ok(const heartbeat_request& r) {
    auto out = hb(r);
    REQUIRE_MESSAGE(out.has_value(), out.error().message);
    return *out;
  }
  heartbeat_result join(std::string id, std::vector<std::string> names = {"t"}, std::string instance = {}) {
    return ok(join_request(std::move(id), std::move(names), std::move(instance)));
  }
  heartbeat_result beat(std::string id, std::int32_t epoch, std::optional<std::set<topic_partition>> owned) {
    return ok(beat_request(std::move(id), epoch, std::move(owned)));
  }
  // The persisted part of the group, to see that a refusal changed nothing.
  [[nodiscard]] std::vector<std::byte> snapshot() const { return encode_group_value(g); }
};

std::error_code code(errc e) { return make_error_code(e); }

}  // namespace

TEST_CASE("join: a member without an id gets a generated 22-character id") {
  harness h;
  auto a = h.join("");
  auto b = h.join("");
  CHECK(a.member_id.size() == 22);
  CHECK(b.member_id.size() == 22);
  CHECK(a.member_id != b.member_id);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (char c : a.member_id) CHECK(alphabet.find(c) != std::string::npos);
  CHECK(h.g.members.contains(a.member_id));
  CHECK(h.g.members.contains(b.member_id));
}

TEST_CASE("join: the first member gets every partition at the assignment epoch") {
  harness h;
  auto a = h.join("a");
  CHECK(h.g.epoch > 0);
  CHECK(h.g.assignment_epoch == h.g.epoch);
  CHECK(a.member_epoch == h.g.assignment_epoch);
  CHECK(a.assignment == all_parts("t", 6));
  CHECK(a.heartbeat_interval_ms > 0);
}

TEST_CASE("join: a second member gets moved partitions only after the first released them") {
  harness h;
  auto a = h.join("a");
  const auto epoch_before = h.g.epoch;
  auto b = h.join("b");
  CHECK(h.g.epoch > epoch_before);
  CHECK(b.member_epoch == h.g.assignment_epoch);
  CHECK(b.assignment.empty());  // a still holds everything

  // a's next heartbeat: it must revoke what moves, its epoch stays.
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  CHECK(a2.member_epoch == a.member_epoch);
  CHECK(a2.assignment.size() == 3);
  const auto moving = h.g.members.at("a").revoking;
  CHECK(moving.size() == 3);
  CHECK(unite(a2.assignment, moving) == all_parts("t", 6));
  CHECK(ownership_faults(h.g).empty());

  // b asks again: nothing while a has not released.
  CHECK(h.beat("b", b.member_epoch, b.assignment).assignment.empty());
  // a still reporting the moving partitions keeps them revoking.
  auto a3 = h.beat("a", a2.member_epoch, a.assignment);
  CHECK(a3.member_epoch == a.member_epoch);
  CHECK(h.g.members.at("a").revoking == moving);
  CHECK(h.beat("b", b.member_epoch, std::set<topic_partition>{}).assignment.empty());

  // a reports it let go: it moves to the assignment epoch, b gets them next.
  auto a4 = h.beat("a", a3.member_epoch, a2.assignment);
  CHECK(a4.member_epoch == h.g.assignment_epoch);
  CHECK(a4.assignment == a2.assignment);
  CHECK(h.g.members.at("a").revoking.empty());
  auto b2 = h.beat("b", b.member_epoch, std::set<topic_partition>{});
  CHECK(b2.assignment == moving);
  CHECK(ownership_faults(h.g).empty());
}

TEST_CASE("ownership checker: finds a partition held by two members (negative control)") {
  harness h;
  auto a = h.join("a");
  h.join("b");
  CHECK(ownership_faults(h.g).empty());
  h.g.members.at("b").revoking.insert(*a.assignment.begin());
  CHECK(ownership_faults(h.g).size() == 1);
  h.g.members.at("b").revoking.clear();
  h.g.members.at("a").revoking.insert(*a.assignment.begin());  // assigned and revoking at once
  CHECK(ownership_faults(h.g).size() == 1);
}

TEST_CASE("property: a partition is never in two members' assigned or revoking sets") {
  harness h;
  h.topics = {{"t", 6}, {"u", 3}};
  std::mt19937 rng(848);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> ids = {"m0", "m1", "m2", "m3", "m4"};
  const std::vector<std::vector<std::string>> subs = {{"t"}, {"u"}, {"t", "u"}};
  std::map<std::string, std::int32_t> epoch_of;  // the members' side: last answered epoch
  int joins = 0;
  int revocations_seen = 0;
  for (int step = 0; step < 600; ++step) {
    const std::string id = ids[static_cast<std::size_t>(pick(static_cast<int>(ids.size())))];
    const bool known = h.g.members.contains(id);
    const int action = pick(10);
    std::string what;
    if (!known || action == 0) {
      auto r = join_request(id, subs[static_cast<std::size_t>(pick(3))]);
      auto out = h.hb(r);
      REQUIRE(out.has_value());
      epoch_of[id] = out->member_epoch;
      ++joins;
      what = "join";
    } else if (action == 1) {
      auto out = h.hb(beat_request(id, -1, std::nullopt));
      REQUIRE(out.has_value());
      epoch_of.erase(id);
      what = "leave";
    } else if (action == 2) {
      h.now += 1s;
      h.g.members.at(id).session_deadline = h.now;  // this member went silent
      for (const auto& gone : expire(h.g, h.topics, h.now, h.limits)) epoch_of.erase(gone);
      what = "expire";
    } else {
      // Heartbeat reporting an arbitrary owned set (often what it holds).
      std::set<topic_partition> owned;
      const member& m = h.g.members.at(id);
      const int shape = pick(4);
      for (const auto& p : unite(all_parts("t", 6), all_parts("u", 3))) {
        const bool holds = m.assigned.contains(p) || m.revoking.contains(p);
        if ((shape == 0 && holds) || (shape == 1 && m.assigned.contains(p)) || (shape >= 2 && pick(2) == 0)) {
          owned.insert(p);
        }
      }
      if (!m.revoking.empty()) ++revocations_seen;
      auto out = h.hb(beat_request(id, epoch_of.at(id), owned));
      if (out) {
        epoch_of[id] = out->member_epoch;
        CHECK(out->assignment == h.g.members.at(id).assigned);
      } else {
        CHECK(out.error().code == code(errc::fenced_member_epoch));
      }
      what = "heartbeat";
    }
    const auto faults = ownership_faults(h.g);
    REQUIRE_MESSAGE(faults.empty(), fmt::format("step {} ({} of {}): {}", step, what, id, fmt::join(faults, "; ")));
  }
  CHECK(joins > 20);
  CHECK(revocations_seen > 20);  // the sequence did exercise revocation
}

TEST_CASE("epoch: a heartbeat with a wrong member epoch is FENCED_MEMBER_EPOCH") {
  harness h;
  auto a = h.join("a");
  const auto before = h.snapshot();
  auto out = h.hb(beat_request("a", a.member_epoch + 1, a.assignment));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::fenced_member_epoch));
  CHECK(h.snapshot() == before);
}

TEST_CASE("epoch: the previous epoch is accepted when it claims only partitions the member holds") {
  harness h;
  auto a = h.join("a");
  auto b = h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  auto a3 = h.beat("a", a2.member_epoch, a2.assignment);  // released: a moves to a new epoch
  REQUIRE(a3.member_epoch != a.member_epoch);
  // The answer carrying a3 was lost: a asks again with its old epoch.
  auto again = h.hb(beat_request("a", a.member_epoch, a2.assignment));
  REQUIRE_MESSAGE(again.has_value(), again.error().message);
  CHECK(again->member_epoch == a3.member_epoch);
  CHECK(again->assignment == a3.assignment);
  (void)b;
}

TEST_CASE("epoch: the previous epoch claiming a partition the member lacks is FENCED_MEMBER_EPOCH") {
  harness h;
  auto a = h.join("a");
  h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  auto a3 = h.beat("a", a2.member_epoch, a2.assignment);
  REQUIRE(a3.member_epoch != a.member_epoch);
  const auto before = h.snapshot();
  auto out = h.hb(beat_request("a", a.member_epoch, a.assignment));  // claims the 3 it gave away
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::fenced_member_epoch));
  CHECK(h.snapshot() == before);
}

TEST_CASE("epoch: an unknown member id with an epoch above 0 is UNKNOWN_MEMBER_ID") {
  harness h;
  h.join("a");
  const auto before = h.snapshot();
  auto out = h.hb(beat_request("nobody", 1, std::nullopt));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::unknown_member));
  CHECK(h.snapshot() == before);
}

TEST_CASE("epoch: a member epoch below -2 is INVALID_REQUEST") {
  harness h;
  h.join("a");
  auto out = h.hb(beat_request("a", -3, std::nullopt));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::invalid_request));
}

TEST_CASE("leave: epoch -1 removes the member and bumps the group epoch") {
  harness h;
  auto a = h.join("a");
  auto b = h.join("b");
  h.beat("a", a.member_epoch, a.assignment);
  const auto epoch = h.g.epoch;
  auto out = h.ok(beat_request("b", -1, std::nullopt));
  CHECK(out.member_epoch == -1);
  CHECK_FALSE(h.g.members.contains("b"));
  CHECK(h.g.epoch > epoch);
  // a gets everything back.
  auto a3 = h.beat("a", h.g.members.at("a").epoch, h.g.members.at("a").assigned);
  CHECK(a3.assignment == all_parts("t", 6));
  (void)b;
}

TEST_CASE("leave: an unknown member leaving is UNKNOWN_MEMBER_ID") {
  harness h;
  h.join("a");
  auto out = h.hb(beat_request("nobody", -1, std::nullopt));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::unknown_member));
}

TEST_CASE("static leave: epoch -2 with an instance id keeps the assignment and the group epoch") {
  harness h;
  auto a = h.join("a", {"t"}, "inst-a");
  const auto epoch = h.g.epoch;
  auto out = h.ok(beat_request("a", -2, std::nullopt));
  CHECK(out.member_epoch == -2);
  REQUIRE(h.g.members.contains("a"));
  CHECK(h.g.members.at("a").assigned == a.assignment);
  CHECK(h.g.epoch == epoch);
}

TEST_CASE("static leave: epoch -2 without an instance id leaves like -1") {
  harness h;
  h.join("a");
  const auto epoch = h.g.epoch;
  h.ok(beat_request("a", -2, std::nullopt));
  CHECK_FALSE(h.g.members.contains("a"));
  CHECK(h.g.epoch > epoch);
}

TEST_CASE("static member: returning under a new member id keeps its epoch and partitions") {
  harness h;
  h.join("a", {"t"}, "inst-a");
  auto b = h.join("b", {"t"}, "inst-b");
  auto a = h.beat("a", h.g.members.at("a").epoch, all_parts("t", 6));
  a = h.beat("a", a.member_epoch, a.assignment);
  b = h.beat("b", b.member_epoch, std::set<topic_partition>{});
  REQUIRE(b.assignment.size() == 3);
  h.ok(beat_request("b", -2, std::nullopt));
  const auto epoch = h.g.epoch;
  auto back = h.join("b-new", {"t"}, "inst-b");
  CHECK(back.member_id == "b-new");
  CHECK(back.member_epoch == b.member_epoch);
  CHECK(back.assignment == b.assignment);
  CHECK(h.g.epoch == epoch);
  CHECK_FALSE(h.g.members.contains("b"));
  CHECK(h.g.members.contains("b-new"));
  CHECK(ownership_faults(h.g).empty());
  // Its later heartbeats go on from there.
  CHECK(h.beat("b-new", back.member_epoch, back.assignment).assignment == b.assignment);
}

TEST_CASE("static member: returning under its own member id keeps its epoch and partitions") {
  harness h;
  auto a = h.join("a", {"t"}, "inst-a");
  h.ok(beat_request("a", -2, std::nullopt));
  const auto epoch = h.g.epoch;
  auto back = h.join("a", {"t"}, "inst-a");
  CHECK(back.member_epoch == a.member_epoch);
  CHECK(back.assignment == a.assignment);
  CHECK(h.g.epoch == epoch);
}

TEST_CASE("static member: an instance id held by a member that did not leave is UNRELEASED_INSTANCE_ID") {
  harness h;
  h.join("a", {"t"}, "inst-a");
  const auto before = h.snapshot();
  auto out = h.hb(join_request("intruder", {"t"}, "inst-a"));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::unreleased_instance_id));
  CHECK(h.snapshot() == before);
  CHECK_FALSE(h.g.members.contains("intruder"));
}

TEST_CASE("expire: a member silent for its session timeout is removed and its partitions go to others") {
  harness h;
  heartbeat_request ra = join_request("a", {"t"});
  ra.session_timeout_ms = 1000;
  auto a = h.ok(ra);
  auto b = h.join("b");
  h.now += 500ms;
  CHECK(expire(h.g, h.topics, h.now, h.limits).empty());  // before the deadline nothing goes
  h.now += 500ms;
  // b keeps heartbeating (its session is 45 s); a went silent.
  const auto gone = expire(h.g, h.topics, h.now, h.limits);
  CHECK(gone == std::vector<std::string>{"a"});
  CHECK_FALSE(h.g.members.contains("a"));
  auto b2 = h.beat("b", b.member_epoch, std::set<topic_partition>{});
  CHECK(b2.assignment == all_parts("t", 6));
  (void)a;
}

TEST_CASE("expire: a member keeping revoking partitions past its rebalance timeout is removed") {
  harness h;
  heartbeat_request ra = join_request("a", {"t"});
  ra.rebalance_timeout_ms = 2000;
  auto a = h.ok(ra);
  auto b = h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);  // revoking starts now
  REQUIRE_FALSE(h.g.members.at("a").revoking.empty());
  h.now += 1500ms;
  h.beat("a", a2.member_epoch, a.assignment);  // still holds them; its session is fine
  CHECK(expire(h.g, h.topics, h.now, h.limits).empty());
  h.now += 500ms;
  CHECK(expire(h.g, h.topics, h.now, h.limits) == std::vector<std::string>{"a"});
  CHECK(h.beat("b", b.member_epoch, std::set<topic_partition>{}).assignment == all_parts("t", 6));
}

TEST_CASE("expire: a member that released in time is kept") {
  harness h;
  heartbeat_request ra = join_request("a", {"t"});
  ra.rebalance_timeout_ms = 2000;
  auto a = h.ok(ra);
  h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  h.now += 1500ms;
  h.beat("a", a2.member_epoch, a2.assignment);  // released
  h.now += 1000ms;
  CHECK(expire(h.g, h.topics, h.now, h.limits).empty());
}

TEST_CASE("next_deadline: the earliest session or revocation deadline, none without members") {
  harness h;
  CHECK_FALSE(next_deadline(h.g).has_value());
  heartbeat_request ra = join_request("a", {"t"});
  ra.session_timeout_ms = 10'000;
  ra.rebalance_timeout_ms = 3000;
  auto a = h.ok(ra);
  const auto t0 = h.now;
  CHECK(next_deadline(h.g) == t0 + 10s);
  h.join("b");
  h.now += 1s;
  h.beat("a", a.member_epoch, a.assignment);  // a starts revoking at t0 + 1 s
  CHECK(next_deadline(h.g) == t0 + 4s);
}

TEST_CASE("subscription: a regex matches whole topic names and never internal topics") {
  harness h;
  h.topics = {{"orders", 2}, {"orders-eu", 1}, {"xorders", 1}, {"__orders", 1}, {"order", 1}};
  heartbeat_request r = join_request("a", {});
  r.topic_names.reset();
  r.regex = "orders.*|__.*";
  auto a = h.ok(r);
  std::set<std::string> topics;
  for (const auto& p : a.assignment) topics.insert(p.topic);
  CHECK(topics == std::set<std::string>{"orders", "orders-eu"});
  CHECK(a.assignment.size() == 3);
}

TEST_CASE("subscription: a regex picks up a topic created later") {
  harness h;
  h.topics = {{"orders", 1}};
  heartbeat_request r = join_request("a", {});
  r.regex = "orders.*";
  auto a = h.ok(r);
  CHECK(a.assignment == parts("orders", {0}));
  h.topics["orders-2"] = 1;
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  CHECK(a2.assignment == unite(parts("orders", {0}), parts("orders-2", {0})));
}

TEST_CASE("subscription: a malformed regex is INVALID_REGULAR_EXPRESSION and changes nothing") {
  harness h;
  auto a = h.join("a");
  const auto before = h.snapshot();
  heartbeat_request r = beat_request("a", a.member_epoch, a.assignment);
  r.regex = "orders(";
  auto out = h.hb(r);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::invalid_regex));
  CHECK(h.snapshot() == before);
  auto j = h.hb([] {
    heartbeat_request jr = join_request("b", {"t"});
    jr.regex = "[";
    return jr;
  }());
  REQUIRE_FALSE(j.has_value());
  CHECK(j.error().code == code(errc::invalid_regex));
  CHECK_FALSE(h.g.members.contains("b"));
}

TEST_CASE("subscription: a topic growing bumps the group epoch and assigns the new partitions") {
  harness h;
  auto a = h.join("a");
  const auto epoch = h.g.epoch;
  h.topics["t"] = 8;
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  CHECK(h.g.epoch > epoch);
  CHECK(a2.member_epoch == h.g.epoch);
  CHECK(a2.assignment == all_parts("t", 8));
}

TEST_CASE("subscription: a topic created after the member subscribed to its name is assigned") {
  harness h;
  auto a = h.join("a", {"t", "later"});
  CHECK(a.assignment == all_parts("t", 6));
  h.topics["later"] = 2;
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  CHECK(a2.assignment == unite(all_parts("t", 6), all_parts("later", 2)));
}

TEST_CASE("subscription: a subscribed topic that is deleted leaves the assignment") {
  harness h;
  h.topics["u"] = 2;
  auto a = h.join("a", {"t", "u"});
  REQUIRE(a.assignment == unite(all_parts("t", 6), all_parts("u", 2)));
  h.topics.erase("u");
  const auto epoch = h.g.epoch;
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  CHECK(h.g.epoch > epoch);
  CHECK(a2.assignment == all_parts("t", 6));
  CHECK(h.g.subscribed == std::map<std::string, std::int32_t>{{"t", 6}});
}

TEST_CASE("subscription: an unknown assignor is UNSUPPORTED_ASSIGNOR") {
  harness h;
  auto a = h.join("a");
  const auto before = h.snapshot();
  heartbeat_request r = beat_request("a", a.member_epoch, a.assignment);
  r.assignor = "sticky-ish";
  auto out = h.hb(r);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::unsupported_assignor));
  CHECK(h.snapshot() == before);
  r.assignor = "range";  // control: a known one is taken
  CHECK(h.hb(r).has_value());
  CHECK(h.g.assignor == "range");
}

TEST_CASE("subscription: a session timeout below the minimum is INVALID_REQUEST") {
  harness h;
  heartbeat_request r = join_request("a", {"t"});
  r.session_timeout_ms = static_cast<std::int32_t>(h.limits.min_session_timeout.count()) - 1;
  auto out = h.hb(r);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::invalid_request));
  CHECK(h.g.members.empty());
  r.session_timeout_ms = static_cast<std::int32_t>(h.limits.min_session_timeout.count());  // control
  CHECK(h.hb(r).has_value());
}

TEST_CASE("subscription: a session timeout above the maximum is INVALID_REQUEST") {
  harness h;
  heartbeat_request r = join_request("a", {"t"});
  r.session_timeout_ms = static_cast<std::int32_t>(h.limits.max_session_timeout.count()) + 1;
  auto out = h.hb(r);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::invalid_request));
  CHECK(h.g.members.empty());
}

TEST_CASE("check_commit: a commit without a member is allowed only while the group has no members") {
  harness h;
  CHECK_FALSE(check_commit(h.g, "", -1, tp("t", 0)).has_value());
  h.join("a");
  auto e = check_commit(h.g, "", -1, tp("t", 0));
  REQUIRE(e.has_value());
  CHECK(e->code == code(errc::non_empty_group));
}

TEST_CASE("check_commit: an unknown member is UNKNOWN_MEMBER_ID") {
  harness h;
  h.join("a");
  auto e = check_commit(h.g, "nobody", 1, tp("t", 0));
  REQUIRE(e.has_value());
  CHECK(e->code == code(errc::unknown_member));
}

TEST_CASE("check_commit: an epoch above the member's is FENCED_MEMBER_EPOCH") {
  harness h;
  auto a = h.join("a");
  CHECK_FALSE(check_commit(h.g, "a", a.member_epoch, tp("t", 0)).has_value());  // control
  auto e = check_commit(h.g, "a", a.member_epoch + 1, tp("t", 0));
  REQUIRE(e.has_value());
  CHECK(e->code == code(errc::fenced_member_epoch));
}

TEST_CASE("check_commit: an older epoch is STALE_MEMBER_EPOCH, the previous one is fine for held partitions") {
  harness h;
  auto a = h.join("a");
  h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  auto a3 = h.beat("a", a2.member_epoch, a2.assignment);  // a moves on: previous epoch = a's first
  REQUIRE(a3.member_epoch > a.member_epoch);
  const auto held = *a3.assignment.begin();
  CHECK_FALSE(check_commit(h.g, "a", a.member_epoch, held).has_value());
  auto e = check_commit(h.g, "a", a.member_epoch - 1, held);
  REQUIRE(e.has_value());
  CHECK(e->code == code(errc::stale_member_epoch));
}

TEST_CASE("check_commit: a partition not assigned or revoking to the member is STALE_MEMBER_EPOCH") {
  harness h;
  auto a = h.join("a");
  auto b = h.join("b");
  auto a2 = h.beat("a", a.member_epoch, a.assignment);
  const auto moving = h.g.members.at("a").revoking;
  REQUIRE_FALSE(moving.empty());
  // a may still commit what it is revoking; b may not commit it yet.
  CHECK_FALSE(check_commit(h.g, "a", a2.member_epoch, *moving.begin()).has_value());
  auto e = check_commit(h.g, "b", b.member_epoch, *moving.begin());
  REQUIRE(e.has_value());
  CHECK(e->code == code(errc::stale_member_epoch));
}

TEST_CASE("state_name: empty, reconciling, stable") {
  harness h;
  CHECK(state_name(h.g) == "empty");
  auto a = h.join("a");
  CHECK(state_name(h.g) == "stable");
  h.join("b");
  CHECK(state_name(h.g) == "reconciling");
  (void)a;
}

TEST_CASE("expire: the target after a removal comes from the broker's default assignor") {
  harness h;
  h.limits.default_assignor = "range";
  for (const char* id : {"a", "b", "c"}) {
    heartbeat_request r = join_request(id, {"t"});
    r.session_timeout_ms = id == std::string("c") ? 1000 : 10'000;
    h.ok(r);
  }
  CHECK(h.g.target.at("a") == parts("t", {0, 1}));
  CHECK(h.g.target.at("c") == parts("t", {4, 5}));
  h.now += 1s;
  REQUIRE(expire(h.g, h.topics, h.now, h.limits) == std::vector<std::string>{"c"});
  // Range splits 6 partitions over a and b as 0-2 and 3-5 (uniform would keep 0,1 and 2,3).
  CHECK(h.g.target.at("a") == parts("t", {0, 1, 2}));
  CHECK(h.g.target.at("b") == parts("t", {3, 4, 5}));
}

TEST_CASE("epochs: one heartbeat or one timer pass moves the group epoch by exactly one") {
  harness h;
  h.join("a");  // a member, its subscription and the topic's partitions: one change
  CHECK(h.g.epoch == 1);
  h.join("b");
  CHECK(h.g.epoch == 2);
  CHECK(h.g.assignment_epoch == 2);
}
