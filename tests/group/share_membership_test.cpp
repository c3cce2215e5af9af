// Share group membership (broker/group/share_membership.h), judged by what
// members are answered: their epochs and the partitions they may fetch.
#include "broker/group/share_membership.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/group/group_checks.h"

using namespace runnel::group;
using namespace runnel::group::testing;
using namespace std::chrono_literals;

namespace {

share_heartbeat_request share_join(std::string id, std::vector<std::string> names) {
  share_heartbeat_request r;
  r.member_id = std::move(id);
  r.member_epoch = 0;
  r.topic_names = std::move(names);
  return r;
}

share_heartbeat_request share_beat(std::string id, std::int32_t epoch) {
  share_heartbeat_request r;
  r.member_id = std::move(id);
  r.member_epoch = epoch;
  return r;
}

struct harness {
  group g;
  topic_counts topics{{"jobs", 3}, {"other", 2}};
  group_limits limits;
  clock_type::time_point now = clock_type::time_point{} + 1h;

  harness() {
    g.id = "q";
    g.type = group_type::share;
  }
  std::expected<heartbeat_result, error> hb(const share_heartbeat_request& r) {
    return share_heartbeat(g, r, topics, now, limits);
  }
  heartbeat_result ok(const share_heartbeat_request& r) {
    auto out = hb(r);
    REQUIRE_MESSAGE(out.has_value(), out.error().message);
    return *out;
  }
  error refused(const share_heartbeat_request& r, errc e) {
    auto out = hb(r);
    REQUIRE(!out.has_value());
    CHECK(out.error().code == make_error_code(e));
    return out.error();
  }
};

}  // namespace

TEST_CASE("share membership: every member gets every partition of its topics") {
  harness h;
  auto a = h.ok(share_join("a", {"jobs"}));
  auto b = h.ok(share_join("b", {"jobs", "other"}));
  auto c = h.ok(share_join("", {"jobs"}));
  CHECK(a.assignment == all_parts("jobs", 3));
  CHECK(b.assignment == unite(all_parts("jobs", 3), all_parts("other", 2)));
  CHECK(c.assignment == all_parts("jobs", 3));
  CHECK(c.member_id.size() == 22);
  CHECK(h.ok(share_beat("a", a.member_epoch)).assignment == all_parts("jobs", 3));
}

TEST_CASE("share membership: the group epoch moves on joins, leaves and partition count changes") {
  harness h;
  auto a = h.ok(share_join("a", {"jobs"}));
  const auto e1 = a.member_epoch;
  CHECK(e1 == h.g.epoch);
  h.ok(share_join("b", {"jobs"}));
  const auto e2 = h.g.epoch;
  CHECK(e2 == e1 + 1);
  // a learns the new epoch on its next heartbeat.
  CHECK(h.ok(share_beat("a", e1)).member_epoch == e2);
  CHECK(h.ok(share_beat("b", e2)).member_epoch == e2);  // nothing changed
  CHECK(h.g.epoch == e2);
  h.topics["jobs"] = 5;
  auto grown = h.ok(share_beat("a", e2));
  CHECK(grown.assignment == all_parts("jobs", 5));
  CHECK(grown.member_epoch == e2 + 1);
  CHECK(h.ok(share_beat("b", e2)).assignment == all_parts("jobs", 5));
  auto left = h.ok(share_beat("b", -1));
  CHECK(left.member_epoch == -1);
  CHECK_FALSE(h.g.members.contains("b"));
  CHECK(h.g.epoch == e2 + 2);
}

TEST_CASE("share membership: a subscription change moves the member's partitions") {
  harness h;
  auto a = h.ok(share_join("a", {"jobs"}));
  auto r = share_beat("a", a.member_epoch);
  r.topic_names = std::vector<std::string>{"other"};
  auto moved = h.ok(r);
  CHECK(moved.assignment == all_parts("other", 2));
  CHECK(moved.member_epoch == a.member_epoch + 1);
  r = share_beat("a", moved.member_epoch);
  r.topic_names = std::vector<std::string>{"missing"};
  CHECK(h.ok(r).assignment.empty());
}

TEST_CASE("share membership: unknown members, stale epochs and bad epochs are refused, the group unchanged") {
  harness h;
  auto a = h.ok(share_join("a", {"jobs"}));
  h.ok(share_join("b", {"jobs"}));
  h.ok(share_join("c", {"jobs"}));  // the group is now two epochs past a's
  const auto epoch = h.g.epoch;
  h.refused(share_beat("zed", 3), errc::unknown_member);
  h.refused(share_beat("zed", -1), errc::unknown_member);
  auto e = h.refused(share_beat("a", a.member_epoch + 7), errc::fenced_member_epoch);
  CHECK(e.message.find("epoch") != std::string::npos);
  h.refused(share_beat("a", -2), errc::invalid_request);
  CHECK(h.g.epoch == epoch);
  CHECK(h.g.members.size() == 3);
  // Its own epoch is fine, and so is the one before after it moved on
  // (the answer that told it may have been lost).
  auto now_at = h.ok(share_beat("a", a.member_epoch));
  CHECK(now_at.member_epoch == epoch);
  CHECK(h.ok(share_beat("a", a.member_epoch)).member_epoch == epoch);
}

TEST_CASE("share membership: a member without heartbeats for its session timeout is removed") {
  harness h;
  h.limits.session_timeout = 1s;
  h.ok(share_join("a", {"jobs"}));
  h.ok(share_join("b", {"jobs"}));
  const auto epoch = h.g.epoch;
  h.now += 600ms;
  h.ok(share_beat("b", epoch));
  h.now += 600ms;
  CHECK(share_expire(h.g, h.topics, h.now) == std::vector<std::string>{"a"});
  CHECK(h.g.epoch == epoch + 1);
  CHECK(share_expire(h.g, h.topics, h.now).empty());
  CHECK(h.g.epoch == epoch + 1);
  h.refused(share_beat("a", epoch), errc::unknown_member);
}

TEST_CASE("share membership: the group's size is bounded") {
  harness h;
  h.limits.max_members = 2;
  h.ok(share_join("a", {"jobs"}));
  h.ok(share_join("b", {"jobs"}));
  h.refused(share_join("c", {"jobs"}), errc::invalid_request);
  h.ok(share_join("a", {"jobs"}));  // a member already in may join again (a lost answer)
}
