// The coordinator of one __consumer_offsets partition
// (broker/group/coordinator.h) over an in-memory log (fake_log.h): what
// it answers, what it writes, and what a new coordinator rebuilds from it.
#include "broker/group/coordinator.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "broker/group/records.h"
#include "tests/group/fake_log.h"
#include "tests/group/group_checks.h"

using runnel::partition_id;
using runnel::topic_partition;
using namespace runnel::group;
using namespace runnel::group::testing;

namespace {

using commit_entries = std::vector<coordinator::commit_entry>;
using commit_results = std::vector<std::optional<error>>;
using heartbeat_answer = std::expected<heartbeat_result, error>;

coordinator::commit_entry entry(const std::string& topic, std::int32_t p, std::int64_t offset, std::string metadata = {}) {
  coordinator::commit_entry e;
  e.tp = tp(topic, p);
  e.value.offset = offset;
  e.value.leader_epoch = 3;
  e.value.metadata = std::move(metadata);
  return e;
}

std::error_code code(errc e) { return make_error_code(e); }

struct harness {
  asio::io_context io;
  fake_log log{io};
  std::shared_ptr<coordinator> c = make();

  std::shared_ptr<coordinator> make() {
    return std::make_shared<coordinator>(io.get_executor(), 3, group_limits{}, log.hooks());
  }

  started<heartbeat_answer> start_hb(const std::string& g, const heartbeat_request& r) {
    started<heartbeat_answer> s(io, c->heartbeat(g, r));
    settle(io);
    return s;
  }
  heartbeat_answer hb(const std::string& g, const heartbeat_request& r) {
    auto s = start_hb(g, r);
    REQUIRE(s.done());
    return s.get();
  }
  heartbeat_result ok(const std::string& g, const heartbeat_request& r) {
    auto out = hb(g, r);
    REQUIRE_MESSAGE(out.has_value(), out.error().message);
    return *out;
  }
  started<commit_results> start_commit(const std::string& g, const std::string& member, std::int32_t epoch,
                                       const commit_entries& entries) {
    started<commit_results> s(io, c->commit(g, member, epoch, entries));
    settle(io);
    return s;
  }
  commit_results commit(const std::string& g, const std::string& member, std::int32_t epoch,
                        const commit_entries& entries) {
    auto s = start_commit(g, member, epoch, entries);
    REQUIRE(s.done());
    return s.get();
  }
  std::optional<error> remove(const std::string& g) {
    started<std::optional<error>> s(io, c->remove_group(g));
    settle(io);
    REQUIRE(s.done());
    return s.get();
  }
  // A new coordinator loaded from everything the log holds.
  std::shared_ptr<coordinator> replayed() {
    auto fresh = make();
    log.replay_into(*fresh);
    return fresh;
  }
};

// Every difference between two coordinators' groups.
std::vector<std::string> coordinator_differences(const coordinator& a, const coordinator& b) {
  std::vector<std::string> d;
  for (const auto& [id, g] : a.groups()) {
    const group* other = b.find(id);
    if (other == nullptr) {
      d.push_back(fmt::format("group {} missing", id));
      continue;
    }
    for (auto& x : group_differences(g, *other)) d.push_back(std::move(x));
  }
  for (const auto& [id, g] : b.groups()) {
    if (a.find(id) == nullptr) d.push_back(fmt::format("group {} extra", id));
  }
  return d;
}

}  // namespace

TEST_CASE("coordinator: a join writes a group record, a steady heartbeat writes nothing") {
  harness h;
  auto a = h.ok("g", join_request("a", {"t"}));
  REQUIRE(h.log.batches.size() == 1);
  auto view = runnel::schemas::batch_view::open(h.log.batches[0], runnel::schemas::verify_limits{});
  REQUIRE(view.has_value());
  REQUIRE(view->record_count() == 1);
  auto key = decode_key(*view->record(0).key);
  REQUIRE(key.has_value());
  CHECK(std::get<group_key>(*key).group == "g");
  for (int i = 0; i < 5; ++i) {
    auto again = h.ok("g", beat_request("a", a.member_epoch, a.assignment));
    CHECK(again.assignment == a.assignment);
  }
  CHECK(h.log.batches.size() == 1);
  // Control: a heartbeat that changes the group writes.
  h.ok("g", join_request("b", {"t"}));
  CHECK(h.log.batches.size() == 2);
  h.ok("g", beat_request("a", a.member_epoch, a.assignment));  // a starts revoking
  CHECK(h.log.batches.size() == 3);
}

TEST_CASE("coordinator: a refused heartbeat writes nothing and creates no group") {
  harness h;
  auto out = h.hb("g", beat_request("ghost", 4, std::nullopt));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == code(errc::unknown_member));
  CHECK(h.log.batches.empty());
  CHECK(h.c->find("g") == nullptr);
}

TEST_CASE("coordinator: a heartbeat is answered only after its group record was appended") {
  harness h;
  h.log.hold = true;
  auto s = h.start_hb("g", join_request("a", {"t"}));
  CHECK_FALSE(s.done());
  REQUIRE(h.log.held() == 1);
  h.log.release(0);
  settle(h.io);
  REQUIRE(s.done());
  CHECK(s.get().has_value());
}

TEST_CASE("coordinator: a commit is answered only after its append finished") {
  harness h;
  h.log.hold = true;
  auto s = h.start_commit("g", "", -1, {entry("t", 0, 42)});
  CHECK_FALSE(s.done());
  CHECK(h.c->committed("g", std::nullopt).empty());
  REQUIRE(h.log.held() == 1);
  h.log.release(0);
  settle(h.io);
  REQUIRE(s.done());
  REQUIRE(s.get().size() == 1);
  CHECK_FALSE(s.get()[0].has_value());
  auto got = h.c->committed("g", std::nullopt);
  REQUIRE(got.contains(tp("t", 0)));
  CHECK(got.at(tp("t", 0)).offset == 42);
}

TEST_CASE("coordinator: a failing heartbeat append answers the error, calls failed and stops") {
  harness h;
  h.log.fail = true;
  auto out = h.hb("g", join_request("a", {"t"}));
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == fake_log::failure_code());
  CHECK(h.log.failures.size() == 1);
  CHECK(h.c->stopped());
  h.log.fail = false;
  auto later = h.hb("g", join_request("b", {"t"}));
  REQUIRE_FALSE(later.has_value());
  CHECK(later.error().code == code(errc::not_coordinator));
  auto commit = h.commit("g", "", -1, {entry("t", 0, 1)});
  REQUIRE(commit[0].has_value());
  CHECK(commit[0]->code == code(errc::not_coordinator));
  auto removed = h.remove("g");
  REQUIRE(removed.has_value());
  CHECK(removed->code == code(errc::not_coordinator));
  CHECK(h.log.batches.empty());
  CHECK(h.log.failures.size() == 1);
}

TEST_CASE("coordinator: a failing commit append answers the error for the accepted entries and stops") {
  harness h;
  h.log.fail = true;
  auto out = h.commit("g", "", -1, {entry("t", 0, 5), entry("nope", 0, 5)});
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == fake_log::failure_code());
  REQUIRE(out[1].has_value());
  CHECK(out[1]->code == code(errc::unknown_topic_or_partition));
  CHECK(h.log.failures.size() == 1);
  CHECK(h.c->stopped());
  CHECK(h.c->committed("g", std::nullopt).empty());
}

TEST_CASE("coordinator: replaying the log rebuilds the same groups, members, epochs, assignments and offsets") {
  harness h;
  h.log.topics = {{"t", 6}, {"u", 2}};
  // Group g: a and b share t, a revokes, b gets its half; static c on u leaves for now.
  auto a = h.ok("g", join_request("a", {"t"}));
  auto b = h.ok("g", join_request("b", {"t", "u"}));
  auto a2 = h.ok("g", beat_request("a", a.member_epoch, a.assignment));
  auto a3 = h.ok("g", beat_request("a", a2.member_epoch, a2.assignment));
  auto b2 = h.ok("g", beat_request("b", b.member_epoch, std::set<topic_partition>{}));
  REQUIRE(unite(a3.assignment, b2.assignment) == unite(all_parts("t", 6), all_parts("u", 2)));
  h.ok("g", join_request("c", {"u"}, "inst-c"));
  h.ok("g", beat_request("c", -2, std::nullopt));
  // Commits by members, at their epochs.
  auto ca = h.commit("g", "a", a3.member_epoch, {entry("t", a3.assignment.begin()->partition.value(), 10, "x")});
  CHECK_FALSE(ca[0].has_value());
  auto cb = h.commit("g", "b", b2.member_epoch, {entry("t", b2.assignment.begin()->partition.value(), 20)});
  CHECK_FALSE(cb[0].has_value());
  // Group solo: a member-less commit, then a member that joins and leaves.
  CHECK_FALSE(h.commit("solo", "", -1, {entry("u", 1, 7), entry("u", 0, 3)})[0].has_value());
  CHECK_FALSE(h.commit("solo", "", -1, {entry("u", 1, 8)})[0].has_value());
  h.ok("solo", join_request("s", {"u"}));
  h.ok("solo", beat_request("s", -1, std::nullopt));
  // Group gone: created, emptied, deleted.
  CHECK_FALSE(h.commit("gone", "", -1, {entry("t", 0, 1)})[0].has_value());
  CHECK_FALSE(h.remove("gone").has_value());

  auto fresh = h.replayed();
  const auto diffs = coordinator_differences(*h.c, *fresh);
  CHECK_MESSAGE(diffs.empty(), fmt::format("{}", fmt::join(diffs, "; ")));
  CHECK(fresh->groups().size() == 2);
  CHECK(fresh->committed("solo", std::nullopt).at(tp("u", 1)).offset == 8);
  CHECK(fresh->committed("g", std::nullopt).size() == 2);

  // The rebuilt coordinator goes on as the old one would: the same
  // heartbeat gets the same answer from both.
  const auto next = beat_request("b", b2.member_epoch, b2.assignment);
  auto from_old = h.ok("g", next);
  std::swap(h.c, fresh);
  auto from_new = h.ok("g", next);
  CHECK(from_new.member_epoch == from_old.member_epoch);
  CHECK(from_new.assignment == from_old.assignment);
  CHECK(coordinator_differences(*h.c, *fresh).empty());
}

TEST_CASE("coordinator: the replay comparison sees a lost offset (negative control)") {
  harness h;
  h.ok("g", join_request("a", {"t"}));
  CHECK_FALSE(h.commit("solo", "", -1, {entry("t", 0, 1)})[0].has_value());
  auto fresh = h.replayed();
  CHECK(coordinator_differences(*h.c, *fresh).empty());
  h.log.batches.pop_back();  // the commit's batch never made it
  fresh = h.replayed();
  CHECK(coordinator_differences(*h.c, *fresh).size() == 1);
}

TEST_CASE("coordinator: a commit for an unknown topic is UNKNOWN_TOPIC_OR_PARTITION") {
  harness h;
  auto out = h.commit("g", "", -1, {entry("nope", 0, 1), entry("t", 1, 1)});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::unknown_topic_or_partition));
  CHECK_FALSE(out[1].has_value());  // the rest of the request is committed
  CHECK(h.c->committed("g", std::nullopt).size() == 1);
}

TEST_CASE("coordinator: a commit for a partition past the count is UNKNOWN_TOPIC_OR_PARTITION") {
  harness h;
  auto out = h.commit("g", "", -1, {entry("t", 6, 1), entry("t", -1, 1)});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::unknown_topic_or_partition));
  REQUIRE(out[1].has_value());
  CHECK(out[1]->code == code(errc::unknown_topic_or_partition));
  CHECK(h.log.batches.empty());
}

TEST_CASE("coordinator: a commit with a negative offset is INVALID_REQUEST") {
  harness h;
  auto out = h.commit("g", "", -1, {entry("t", 0, -1)});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::invalid_request));
}

TEST_CASE("coordinator: commit metadata over 4096 bytes is refused") {
  harness h;
  auto out = h.commit("g", "", -1, {entry("t", 0, 1, std::string(4097, 'm')), entry("t", 1, 1, std::string(4096, 'm'))});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::invalid_request));
  CHECK_FALSE(out[1].has_value());
  auto got = h.c->committed("g", std::nullopt);
  CHECK_FALSE(got.contains(tp("t", 0)));
  CHECK(got.at(tp("t", 1)).metadata.size() == 4096);
}

TEST_CASE("coordinator: a commit by a member of a group that does not exist is UNKNOWN_MEMBER_ID") {
  harness h;
  auto out = h.commit("g", "a", 1, {entry("t", 0, 1)});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::unknown_member));
}

TEST_CASE("coordinator: a commit by a fenced member is refused and not written") {
  harness h;
  auto a = h.ok("g", join_request("a", {"t"}));
  const auto batches = h.log.batches.size();
  auto out = h.commit("g", "a", a.member_epoch + 1, {entry("t", 0, 1)});
  REQUIRE(out[0].has_value());
  CHECK(out[0]->code == code(errc::fenced_member_epoch));
  CHECK(h.log.batches.size() == batches);
  CHECK_FALSE(h.commit("g", "a", a.member_epoch, {entry("t", 0, 1)})[0].has_value());  // control
}

TEST_CASE("coordinator: remove_group refuses a group with members") {
  harness h;
  h.ok("g", join_request("a", {"t"}));
  auto out = h.remove("g");
  REQUIRE(out.has_value());
  CHECK(out->code == code(errc::non_empty_group));
  CHECK(h.c->find("g") != nullptr);
}

TEST_CASE("coordinator: remove_group of an unknown group is GROUP_ID_NOT_FOUND") {
  harness h;
  auto out = h.remove("nope");
  REQUIRE(out.has_value());
  CHECK(out->code == code(errc::group_not_found));
}

TEST_CASE("coordinator: remove_group deletes an empty group with tombstones, and replay gives no group") {
  harness h;
  auto a = h.ok("g", join_request("a", {"t"}));
  CHECK_FALSE(h.commit("g", "a", a.member_epoch, {entry("t", 0, 5), entry("t", 1, 6)})[0].has_value());
  h.ok("g", beat_request("a", -1, std::nullopt));
  REQUIRE(h.replayed()->find("g") != nullptr);  // control: before the delete it is rebuilt
  CHECK_FALSE(h.remove("g").has_value());
  CHECK(h.c->find("g") == nullptr);
  CHECK(h.c->committed("g", std::nullopt).empty());
  auto fresh = h.replayed();
  CHECK(fresh->find("g") == nullptr);
  CHECK(fresh->groups().empty());
}

TEST_CASE("coordinator: commits that finish out of order never move an offset backwards") {
  harness h;
  h.log.hold = true;
  auto first = h.start_commit("g", "", -1, {entry("t", 0, 10)});
  auto second = h.start_commit("g", "", -1, {entry("t", 0, 20)});
  REQUIRE(h.log.held() == 2);
  h.log.release(1);
  settle(h.io);
  REQUIRE(second.done());
  CHECK(h.c->committed("g", std::nullopt).at(tp("t", 0)).offset == 20);
  h.log.release(0);
  settle(h.io);
  REQUIRE(first.done());
  CHECK_FALSE(first.get()[0].has_value());
  CHECK(h.c->committed("g", std::nullopt).at(tp("t", 0)).offset == 20);
  CHECK(h.replayed()->committed("g", std::nullopt).at(tp("t", 0)).offset == 20);
}

TEST_CASE("coordinator: a later commit of a lower offset does move it (control of the ordering)") {
  harness h;
  CHECK_FALSE(h.commit("g", "", -1, {entry("t", 0, 20)})[0].has_value());
  CHECK_FALSE(h.commit("g", "", -1, {entry("t", 0, 5)})[0].has_value());
  CHECK(h.c->committed("g", std::nullopt).at(tp("t", 0)).offset == 5);
  CHECK(h.replayed()->committed("g", std::nullopt).at(tp("t", 0)).offset == 5);
}

TEST_CASE("coordinator: committed returns only the asked partitions that have an offset") {
  harness h;
  CHECK_FALSE(h.commit("g", "", -1, {entry("t", 0, 1), entry("t", 1, 2)})[0].has_value());
  auto got = h.c->committed("g", std::vector<topic_partition>{tp("t", 1), tp("t", 2)});
  CHECK(got.size() == 1);
  CHECK(got.at(tp("t", 1)).offset == 2);
  CHECK(h.c->committed("other", std::nullopt).empty());
}

TEST_CASE("coordinator: its timer removes a silent member and writes the removal") {
  asio::io_context io;
  fake_log log(io);
  group_limits limits;
  limits.min_session_timeout = std::chrono::milliseconds(50);
  auto c = std::make_shared<coordinator>(io.get_executor(), 0, limits, log.hooks());
  c->start();
  heartbeat_request r = join_request("a", {"t"});
  r.session_timeout_ms = 150;
  started<heartbeat_answer> s(io, c->heartbeat("g", r));
  io.run_for(std::chrono::milliseconds(20));
  REQUIRE(s.done());
  REQUIRE(s.get().has_value());
  CHECK(c->find("g")->members.contains("a"));  // control: present before its timeout
  io.run_for(std::chrono::milliseconds(600));
  CHECK(c->find("g")->members.empty());
  CHECK(log.batches.size() == 2);
  c->stop();
  io.run_for(std::chrono::milliseconds(200));  // the timer loop ends
  auto fresh = std::make_shared<coordinator>(io.get_executor(), 0, limits, log.hooks());
  log.replay_into(*fresh);
  REQUIRE(fresh->find("g") != nullptr);
  CHECK(fresh->find("g")->members.empty());
}

TEST_CASE("coordinator: a commit still being written when its group is deleted does not bring the group back") {
  harness h;
  CHECK_FALSE(h.commit("g", "", -1, {entry("t", 0, 10)})[0].has_value());
  h.log.hold = true;
  auto late = h.start_commit("g", "", -1, {entry("t", 0, 20)});  // written before the tombstones
  started<std::optional<error>> removal(h.io, h.c->remove_group("g"));
  settle(h.io);
  REQUIRE(h.log.held() == 2);
  h.log.release(1);  // the deletion finishes first
  settle(h.io);
  REQUIRE(removal.done());
  CHECK_FALSE(removal.get().has_value());
  h.log.release(0);
  settle(h.io);
  REQUIRE(late.done());
  // Memory and the log agree: the group is gone in both.
  CHECK(h.c->find("g") == nullptr);
  CHECK(h.replayed()->find("g") == nullptr);
}

// --- share groups (ADR 0016) ---------------------------------------------------

namespace {

std::expected<heartbeat_result, error> share_hb(harness& h, const std::string& g, share_heartbeat_request r) {
  started<std::expected<heartbeat_result, error>> s(h.io, h.c->share_heartbeat(g, std::move(r)));
  settle(h.io);
  REQUIRE(s.done());
  return s.get();
}

share_heartbeat_request share_join(std::string id, std::vector<std::string> names) {
  share_heartbeat_request r;
  r.member_id = std::move(id);
  r.topic_names = std::move(names);
  return r;
}

std::optional<error> write_state(harness& h, const std::string& g, const topic_partition& p, const share_state& st) {
  started<std::optional<error>> s(h.io, h.c->write_share_state(g, p, st));
  settle(h.io);
  REQUIRE(s.done());
  return s.get();
}

share_state some_state(std::int64_t start) {
  using runnel::offset;
  return share_state{offset(start), offset(start + 4),
                     {{offset(start), offset(start + 1), share_record_state::available, 2},
                      {offset(start + 3), offset(start + 3), share_record_state::dead_lettering, 5}}};
}

}  // namespace

TEST_CASE("coordinator: a share group's members share every partition, and the group replays as a share group") {
  harness h;
  auto a = share_hb(h, "q", share_join("a", {"t"}));
  auto b = share_hb(h, "q", share_join("b", {"t"}));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->assignment == all_parts("t", 6));
  CHECK(b->assignment == all_parts("t", 6));
  CHECK(h.c->find("q")->type == group_type::share);
  REQUIRE_FALSE(write_state(h, "q", tp("t", 2), some_state(10)).has_value());
  REQUIRE_FALSE(write_state(h, "q", tp("t", 2), some_state(12)).has_value());  // the latest wins
  CHECK(h.c->share_state_of("q", tp("t", 2)) == some_state(12));
  CHECK(h.c->share_state_of("q", tp("t", 3)) == std::nullopt);
  auto fresh = h.replayed();
  const auto diffs = coordinator_differences(*h.c, *fresh);
  CHECK_MESSAGE(diffs.empty(), fmt::format("{}", fmt::join(diffs, "; ")));
  CHECK(fresh->find("q")->type == group_type::share);
  CHECK(fresh->share_state_of("q", tp("t", 2)) == some_state(12));
}

TEST_CASE("coordinator: the replay comparison sees a lost share state write (negative control)") {
  harness h;
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  REQUIRE_FALSE(write_state(h, "q", tp("t", 0), some_state(0)).has_value());
  REQUIRE_FALSE(write_state(h, "q", tp("t", 0), some_state(3)).has_value());
  h.log.batches.pop_back();
  auto fresh = h.replayed();
  CHECK(coordinator_differences(*h.c, *fresh).size() == 1);
  CHECK(fresh->share_state_of("q", tp("t", 0)) == some_state(0));
}

TEST_CASE("coordinator: a group id is either a consumer group or a share group") {
  harness h;
  h.ok("c", join_request("a", {"t"}));
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  const auto written = h.log.batches.size();
  auto as_share = share_hb(h, "c", share_join("x", {"t"}));
  REQUIRE_FALSE(as_share.has_value());
  CHECK(as_share.error().code == code(errc::inconsistent_group_type));
  CHECK(as_share.error().message.find("consumer group") != std::string::npos);
  auto as_consumer = h.hb("q", join_request("x", {"t"}));
  REQUIRE_FALSE(as_consumer.has_value());
  CHECK(as_consumer.error().code == code(errc::inconsistent_group_type));
  auto commit = h.commit("q", "a", 1, {entry("t", 0, 5)});
  REQUIRE(commit[0].has_value());
  CHECK(commit[0]->code == code(errc::inconsistent_group_type));
  auto state = write_state(h, "c", tp("t", 0), some_state(0));
  REQUIRE(state.has_value());
  CHECK(state->code == code(errc::inconsistent_group_type));
  CHECK(h.log.batches.size() == written);
  CHECK(h.c->find("c")->members.size() == 1);
  CHECK(h.c->find("q")->members.size() == 1);
}

TEST_CASE("coordinator: share state writes for an unknown group or partition are refused and not written") {
  harness h;
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  const auto written = h.log.batches.size();
  auto unknown = write_state(h, "nope", tp("t", 0), some_state(0));
  REQUIRE(unknown.has_value());
  CHECK(unknown->code == code(errc::group_not_found));
  auto past = write_state(h, "q", tp("t", 6), some_state(0));
  REQUIRE(past.has_value());
  CHECK(past->code == code(errc::unknown_topic_or_partition));
  auto topic = write_state(h, "q", tp("nope", 0), some_state(0));
  REQUIRE(topic.has_value());
  CHECK(topic->code == code(errc::unknown_topic_or_partition));
  CHECK(h.log.batches.size() == written);
}

share_state in_epoch(std::int64_t start, std::int32_t epoch) {
  auto st = some_state(start);
  st.leader_epoch = epoch;
  return st;
}

std::expected<std::optional<share_state>, error> read_state(harness& h, const std::string& g, const topic_partition& p,
                                                             std::int32_t epoch) {
  started<std::expected<std::optional<share_state>, error>> s(h.io, h.c->read_share_state(g, p, epoch));
  settle(h.io);
  REQUIRE(s.done());
  return s.get();
}

TEST_CASE("coordinator: a share state write from an older leader epoch than one seen is fenced, also after a replay") {
  harness h;
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  REQUIRE_FALSE(write_state(h, "q", tp("t", 0), in_epoch(0, 2)).has_value());
  const auto written = h.log.batches.size();
  auto older = write_state(h, "q", tp("t", 0), in_epoch(10, 1));
  REQUIRE(older.has_value());
  CHECK(older->code == code(errc::fenced_leader_epoch));
  CHECK(h.log.batches.size() == written);  // not written
  CHECK(h.c->share_state_of("q", tp("t", 0))->start == runnel::offset(0));
  // Another partition has its own epochs.
  CHECK_FALSE(write_state(h, "q", tp("t", 1), in_epoch(0, 0)).has_value());
  // A new leader's read fences the epoch before it, though that never wrote.
  auto read = read_state(h, "q", tp("t", 0), 3);
  REQUIRE(read.has_value());
  REQUIRE(read->has_value());
  CHECK((*read)->start == runnel::offset(0));
  auto deposed = write_state(h, "q", tp("t", 0), in_epoch(20, 2));
  REQUIRE(deposed.has_value());
  CHECK(deposed->code == code(errc::fenced_leader_epoch));
  CHECK_FALSE(write_state(h, "q", tp("t", 0), in_epoch(30, 3)).has_value());  // control: the reader's own epoch
  // A stale reader is refused too, and the epoch is in the record: a
  // coordinator that replays the log fences the same writes.
  CHECK(read_state(h, "q", tp("t", 0), 2).error().code == code(errc::fenced_leader_epoch));
  auto fresh = h.replayed();
  CHECK(fresh->share_state_of("q", tp("t", 0))->leader_epoch == 3);
  started<std::optional<error>> again(h.io, fresh->write_share_state("q", tp("t", 0), in_epoch(40, 2)));
  settle(h.io);
  REQUIRE(again.done());
  REQUIRE(again.get().has_value());
  CHECK(again.get()->code == code(errc::fenced_leader_epoch));
}

TEST_CASE("coordinator: deleting an empty share group deletes its share states too") {
  harness h;
  auto a = share_hb(h, "q", share_join("a", {"t"}));
  REQUIRE(a.has_value());
  REQUIRE_FALSE(write_state(h, "q", tp("t", 1), some_state(0)).has_value());
  auto leave = share_join("a", {});
  leave.topic_names.reset();
  leave.member_epoch = -1;
  REQUIRE(share_hb(h, "q", leave).has_value());
  REQUIRE_FALSE(h.remove("q").has_value());
  CHECK(h.c->find("q") == nullptr);
  auto fresh = h.replayed();
  CHECK(fresh->find("q") == nullptr);
  CHECK(fresh->share_state_of("q", tp("t", 1)) == std::nullopt);
}

TEST_CASE("coordinator: a failing share state append answers the error, calls failed and stops") {
  harness h;
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  h.log.fail = true;
  auto e = write_state(h, "q", tp("t", 0), some_state(0));
  REQUIRE(e.has_value());
  CHECK(e->code == fake_log::failure_code());
  CHECK(h.log.failures.size() == 1);
  CHECK(h.c->stopped());
  CHECK(h.c->share_state_of("q", tp("t", 0)) == std::nullopt);
}

namespace {

std::optional<error> alter(harness& h, const std::string& g, const group_configs& changes, bool validate_only = false) {
  started<std::optional<error>> s(h.io, h.c->alter_configs(g, changes, validate_only));
  settle(h.io);
  REQUIRE(s.done());
  return s.get();
}

}  // namespace

TEST_CASE("coordinator: group configs create an empty share group, are written, and replay") {
  harness h;
  REQUIRE_FALSE(alter(h, "q", {{"share.dlq.topic", "q.dlq"}, {"share.delivery.attempts.max", "3"}}).has_value());
  CHECK(h.log.batches.size() == 1);
  const group* g = h.c->find("q");
  REQUIRE(g != nullptr);
  CHECK(g->type == group_type::share);
  CHECK(g->members.empty());
  CHECK(g->configs == group_configs{{"share.delivery.attempts.max", "3"}, {"share.dlq.topic", "q.dlq"}});
  // An empty value removes one; the members that join keep the configs.
  REQUIRE_FALSE(alter(h, "q", {{"share.delivery.attempts.max", ""}}).has_value());
  REQUIRE(share_hb(h, "q", share_join("a", {"t"})).has_value());
  CHECK(h.c->find("q")->configs == group_configs{{"share.dlq.topic", "q.dlq"}});
  auto fresh = h.replayed();
  const auto diffs = coordinator_differences(*h.c, *fresh);
  CHECK_MESSAGE(diffs.empty(), fmt::format("{}", fmt::join(diffs, "; ")));
  CHECK(fresh->find("q")->configs == group_configs{{"share.dlq.topic", "q.dlq"}});
}

TEST_CASE("coordinator: the replay comparison sees lost group configs (negative control)") {
  harness h;
  REQUIRE_FALSE(alter(h, "q", {{"share.dlq.topic", "a"}}).has_value());
  REQUIRE_FALSE(alter(h, "q", {{"share.dlq.topic", "b"}}).has_value());
  h.log.batches.pop_back();
  auto fresh = h.replayed();
  CHECK(coordinator_differences(*h.c, *fresh).size() == 1);
}

TEST_CASE("coordinator: bad group configs, a consumer group's, and validate_only write nothing") {
  harness h;
  h.ok("c", join_request("a", {"t"}));
  const auto written = h.log.batches.size();
  auto unknown = alter(h, "q", {{"share.nope", "1"}});
  REQUIRE(unknown.has_value());
  CHECK(unknown->code == code(errc::invalid_config));
  CHECK(unknown->message.find("share.nope") != std::string::npos);
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"share.record.lock.duration.ms", "99"},
           {"share.record.lock.duration.ms", "x"},
           {"share.delivery.attempts.max", "1001"},
           {"share.dlq.topic", "bad name"},
           {"share.dlq.topic", "__consumer_offsets"}}) {
    auto bad = alter(h, "q", {{k, v}});
    REQUIRE_MESSAGE(bad.has_value(), k, "=", v);
    CHECK(bad->code == code(errc::invalid_config));
  }
  auto consumer = alter(h, "c", {{"share.dlq.topic", "d"}});
  REQUIRE(consumer.has_value());
  CHECK(consumer->code == code(errc::inconsistent_group_type));
  CHECK_FALSE(alter(h, "q", {{"share.dlq.topic", "d"}}, true).has_value());
  CHECK(h.log.batches.size() == written);
  CHECK(h.c->find("q") == nullptr);
}
