// The share partition state machine (broker/group/share_partition.h),
// judged by what members are handed and answered, and by the persisted
// state a new leader would load.
#include "broker/group/share_partition.h"

#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "broker/group/records.h"

using runnel::offset;
using namespace runnel::group;
using namespace std::chrono_literals;

namespace {

struct harness {
  share_limits limits;
  clock_type::time_point now = clock_type::time_point{} + 1h;
  share_partition sp;

  explicit harness(share_limits l = {}, offset start = offset(0)) : limits(l), sp(start, limits) {}

  // The log holds every offset from..to.
  std::vector<acquired_range> get(std::string_view member, std::size_t max, std::int64_t from, std::int64_t to) {
    const offset_range all{offset(from), offset(to)};
    return sp.acquire(member, max, std::span(&all, 1), offset(to + 1), now);
  }
  // Redeliveries only (nothing new in the log).
  std::vector<acquired_range> again(std::string_view member, std::size_t max) {
    return sp.acquire(member, max, {}, sp.end(), now);
  }
  void ok(std::string_view member, std::int64_t first, std::int64_t last, ack_kind k) {
    auto e = sp.acknowledge(member, offset(first), offset(last), k, now);
    REQUIRE_MESSAGE(!e, e->message);
  }
  error refused(std::string_view member, std::int64_t first, std::int64_t last, ack_kind k) {
    auto e = sp.acknowledge(member, offset(first), offset(last), k, now);
    REQUIRE(e.has_value());
    CHECK(e->code == make_error_code(errc::invalid_record_state));
    return *e;
  }
};

acquired_range ar(std::int64_t first, std::int64_t last, std::uint16_t count) {
  return acquired_range{offset(first), offset(last), count};
}

using ranges = std::vector<acquired_range>;

}  // namespace

TEST_CASE("share partition: records are handed out in offset order, each to one member") {
  harness h;
  CHECK(h.get("a", 4, 0, 9) == ranges{ar(0, 3, 1)});
  CHECK(h.get("b", 4, 0, 9) == ranges{ar(4, 7, 1)});
  CHECK(h.get("c", 4, 0, 9) == ranges{ar(8, 9, 1)});
  CHECK(h.get("a", 4, 0, 9).empty());
  CHECK(h.sp.start() == offset(0));
  CHECK(h.sp.end() == offset(10));
  CHECK(h.sp.in_flight() == 10);
}

TEST_CASE("share partition: the start moves past accepted records only once those before them are done") {
  harness h;
  h.get("a", 5, 0, 4);
  h.ok("a", 2, 3, ack_kind::accept);
  CHECK(h.sp.start() == offset(0));
  h.ok("a", 0, 0, ack_kind::accept);
  CHECK(h.sp.start() == offset(1));
  h.ok("a", 1, 1, ack_kind::accept);
  CHECK(h.sp.start() == offset(4));
  h.ok("a", 4, 4, ack_kind::accept);
  CHECK(h.sp.start() == offset(5));
  CHECK(h.sp.in_flight() == 0);
}

TEST_CASE("share partition: a released record is redelivered at once, to any member, its delivery count kept") {
  harness h;
  h.get("a", 3, 0, 2);
  h.ok("a", 1, 1, ack_kind::release);
  CHECK(h.sp.next_read() == offset(1));
  CHECK(h.sp.record(offset(1)) == std::pair{share_record_state::available, std::uint16_t{1}});
  CHECK(h.again("b", 10) == ranges{ar(1, 1, 2)});
  h.ok("b", 1, 1, ack_kind::accept);
  h.ok("a", 0, 0, ack_kind::accept);
  h.ok("a", 2, 2, ack_kind::accept);
  CHECK(h.sp.start() == offset(3));
}

TEST_CASE("share partition: redeliveries come before new records, in one offset-ordered answer") {
  harness h;
  h.get("a", 4, 0, 3);
  h.ok("a", 0, 0, ack_kind::release);
  h.ok("a", 2, 2, ack_kind::release);
  CHECK(h.get("b", 10, 0, 6) == ranges{ar(0, 0, 2), ar(2, 2, 2), ar(4, 6, 1)});
}

TEST_CASE("share partition: a rejected record is archived and never redelivered") {
  harness h;
  h.get("a", 2, 0, 1);
  h.ok("a", 0, 0, ack_kind::reject);
  CHECK(h.sp.start() == offset(1));
  CHECK(h.again("b", 10).empty());
  CHECK(h.sp.dead_letters().empty());
}

TEST_CASE("share partition: with a DLQ a rejected record waits for its copy and holds the start") {
  share_limits l;
  l.dead_letter = true;
  harness h(l);
  h.get("a", 3, 0, 2);
  h.ok("a", 0, 0, ack_kind::reject);
  h.ok("a", 1, 2, ack_kind::accept);
  CHECK(h.sp.start() == offset(0));
  CHECK(h.sp.dead_letters() == std::vector<std::pair<offset, std::uint16_t>>{{offset(0), 1}});
  CHECK(h.again("b", 10).empty());
  CHECK_FALSE(h.sp.dead_lettered(offset(1)));  // not waiting for a copy
  CHECK(h.sp.dead_lettered(offset(0)));
  CHECK_FALSE(h.sp.dead_lettered(offset(0)));  // not twice
  CHECK(h.sp.start() == offset(3));
  CHECK(h.sp.dead_letters().empty());
}

TEST_CASE("share partition: an expired lock makes the record available, and its acknowledgement is refused") {
  share_limits l;
  l.lock_duration = 1s;
  harness h(l);
  h.get("a", 2, 0, 1);
  CHECK(h.sp.next_lock_deadline() == h.now + 1s);
  h.now += 999ms;
  CHECK(h.sp.expire_locks(h.now) == 0);
  h.now += 1ms;
  // At the deadline, before expire_locks ran: refused, and nothing changed.
  auto e = h.refused("a", 0, 1, ack_kind::accept);
  CHECK(e.message.find("expired") != std::string::npos);
  CHECK(h.sp.record(offset(0)) == std::pair{share_record_state::acquired, std::uint16_t{1}});
  CHECK(h.sp.expire_locks(h.now) == 2);
  CHECK(h.sp.next_lock_deadline() == std::nullopt);
  h.refused("a", 0, 1, ack_kind::accept);
  CHECK(h.again("b", 10) == ranges{ar(0, 1, 2)});
}

TEST_CASE("share partition: at the attempt limit a record is archived, or sent to the DLQ") {
  for (bool dlq : {false, true}) {
    CAPTURE(dlq);
    share_limits l;
    l.max_delivery_attempts = 3;
    l.lock_duration = 1s;
    l.dead_letter = dlq;
    harness h(l);
    h.get("a", 1, 0, 0);
    h.ok("a", 0, 0, ack_kind::release);                 // delivery 1
    CHECK(h.again("a", 1) == ranges{ar(0, 0, 2)});
    h.now += 1s;
    CHECK(h.sp.expire_locks(h.now) == 1);               // delivery 2 timed out
    CHECK(h.again("b", 1) == ranges{ar(0, 0, 3)});
    h.ok("b", 0, 0, ack_kind::release);                 // delivery 3: the last
    CHECK(h.again("c", 1).empty());
    if (dlq) {
      CHECK(h.sp.dead_letters() == std::vector<std::pair<offset, std::uint16_t>>{{offset(0), 3}});
      CHECK(h.sp.start() == offset(0));
    } else {
      CHECK(h.sp.dead_letters().empty());
      CHECK(h.sp.start() == offset(1));
    }
  }
}

TEST_CASE("share partition: the lock bound holds new records back while one record is stuck") {
  share_limits l;
  l.max_record_locks = 4;
  harness h(l);
  CHECK(h.get("a", 10, 0, 99) == ranges{ar(0, 3, 1)});
  h.ok("a", 1, 3, ack_kind::accept);
  // 0 is still acquired: 1..3 wait behind it, the window is full.
  CHECK(h.get("b", 10, 0, 99).empty());
  h.ok("a", 0, 0, ack_kind::release);
  // The released record is redelivered with the window full, nothing new...
  CHECK(h.get("b", 10, 0, 99) == ranges{ar(0, 0, 2)});
  CHECK(h.sp.in_flight() == 4);
  // ...and once it is done the window moves on.
  h.ok("b", 0, 0, ack_kind::accept);
  CHECK(h.sp.start() == offset(4));
  CHECK(h.sp.in_flight() == 0);
  CHECK(h.get("c", 10, 0, 99) == ranges{ar(4, 7, 1)});
}

TEST_CASE("share partition: offsets that are not records are never handed out and skipped by acknowledgements") {
  harness h;
  const std::vector<offset_range> log{{offset(0), offset(2)}, {offset(5), offset(6)}, {offset(9), offset(9)}};
  CHECK(h.sp.acquire("a", 10, log, offset(10), h.now) == ranges{ar(0, 2, 1), ar(5, 6, 1), ar(9, 9, 1)});
  CHECK(h.sp.in_flight() == 6);
  h.ok("a", 0, 9, ack_kind::accept);
  CHECK(h.sp.start() == offset(10));
  CHECK(h.sp.in_flight() == 0);
}

TEST_CASE("share partition: nothing at or past what the caller read is handed out") {
  harness h;
  h.get("a", 3, 0, 2);
  h.ok("a", 0, 2, ack_kind::release);
  // The caller read only offsets 0..1 this time.
  const offset_range read{offset(0), offset(1)};
  CHECK(h.sp.acquire("b", 10, std::span(&read, 1), offset(2), h.now) == ranges{ar(0, 1, 2)});
  CHECK(h.sp.next_read() == offset(2));
}

TEST_CASE("share partition: records of a member that left become available, others keep theirs") {
  harness h;
  h.get("a", 2, 0, 9);
  h.get("b", 2, 0, 9);
  CHECK(h.sp.holders() == std::vector<std::string>{"a", "b"});
  CHECK(h.sp.release_member("a") == 2);
  CHECK(h.sp.holders() == std::vector<std::string>{"b"});
  CHECK(h.sp.release_member("a") == 0);
  CHECK(h.sp.release_member("nobody") == 0);
  CHECK(h.again("c", 10) == ranges{ar(0, 1, 2)});
  h.ok("b", 2, 3, ack_kind::accept);
}

TEST_CASE("share partition: bad acknowledgements are refused and change nothing") {
  harness h;
  h.get("a", 3, 0, 2);
  h.get("b", 2, 0, 4);
  const auto before = h.sp.state();
  SUBCASE("never handed out") { h.refused("a", 5, 5, ack_kind::accept); }
  SUBCASE("by another member") {
    auto e = h.refused("a", 3, 3, ack_kind::accept);
    CHECK(e.message.find("another member") != std::string::npos);
  }
  SUBCASE("by an unknown member") { h.refused("zed", 0, 0, ack_kind::accept); }
  SUBCASE("a range reaching into another member's records: nothing of it is applied") {
    h.refused("a", 0, 3, ack_kind::accept);
    CHECK(h.sp.record(offset(0)) == std::pair{share_record_state::acquired, std::uint16_t{1}});
  }
  SUBCASE("an empty range") { h.refused("a", 2, 1, ack_kind::accept); }
  SUBCASE("twice, while it waits behind the start") {
    h.ok("a", 1, 1, ack_kind::accept);
    h.refused("a", 1, 1, ack_kind::accept);
    h.refused("a", 1, 1, ack_kind::release);
    CHECK(h.sp.record(offset(1)) == std::pair{share_record_state::acknowledged, std::uint16_t{1}});
    return;
  }
  SUBCASE("twice, once it is below the start") {
    h.ok("a", 0, 0, ack_kind::accept);
    auto e = h.refused("a", 0, 0, ack_kind::accept);
    CHECK(e.message.find("done") != std::string::npos);
    return;
  }
  CHECK(h.sp.state() == before);
  CHECK(h.sp.stats(h.now).acquired == 5);
}

TEST_CASE("share partition: the persisted state saves acquired records as available and loads to the same") {
  share_limits l;
  l.dead_letter = true;
  harness h(l, offset(100));
  h.get("a", 6, 100, 109);
  h.ok("a", 101, 101, ack_kind::accept);
  h.ok("a", 102, 102, ack_kind::release);
  h.ok("a", 103, 103, ack_kind::reject);
  const auto s = h.sp.state();
  CHECK(s.start == offset(100));
  CHECK(s.end == offset(106));
  const std::vector<share_state_run> runs{
      {offset(100), offset(100), share_record_state::available, 1},
      {offset(101), offset(101), share_record_state::acknowledged, 1},
      {offset(102), offset(102), share_record_state::available, 1},
      {offset(103), offset(103), share_record_state::dead_lettering, 1},
      {offset(104), offset(105), share_record_state::available, 1},
  };
  CHECK(s.runs == runs);

  auto bytes = encode_share_state_value(s);
  auto decoded = decode_share_state_value(bytes);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == s);
  auto loaded = share_partition::from_state(*decoded, l);
  REQUIRE(loaded.has_value());
  CHECK(loaded->state() == s);
  CHECK(loaded->dead_letters() == std::vector<std::pair<offset, std::uint16_t>>{{offset(103), 1}});
  // The new leader redelivers what was not accepted, counting on from the saved count.
  CHECK(loaded->acquire("b", 10, {}, offset(106), h.now) == ranges{ar(100, 100, 2), ar(102, 102, 2), ar(104, 105, 2)});
}

TEST_CASE("share partition: a persisted state that does not hold together is not loaded") {
  const share_limits l;
  auto bad = [&](share_state s) { CHECK_FALSE(share_partition::from_state(s, l).has_value()); };
  const auto run = [](std::int64_t a, std::int64_t b, share_record_state st) {
    return share_state_run{offset(a), offset(b), st, 1};
  };
  bad({offset(10), offset(5), {}});                                                                  // end below start
  bad({offset(0), offset(10), {run(3, 2, share_record_state::available)}});                          // empty run
  bad({offset(0), offset(10), {run(5, 6, share_record_state::available), run(6, 7, share_record_state::available)}});
  bad({offset(5), offset(10), {run(4, 6, share_record_state::available)}});                          // below start
  bad({offset(0), offset(10), {run(8, 10, share_record_state::available)}});                         // at end
  bad({offset(0), offset(10), {run(1, 1, share_record_state::acquired)}});                           // never saved
  CHECK(share_partition::from_state({offset(0), offset(10), {run(1, 2, share_record_state::archived)}}, l).has_value());
}

TEST_CASE("share partition: a share state value that does not verify or names an unknown state is refused") {
  share_state s{offset(0), offset(3), {{offset(0), offset(2), share_record_state::available, 1}}};
  auto bytes = encode_share_state_value(s);
  REQUIRE(decode_share_state_value(bytes).has_value());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE_MESSAGE(decode_share_state_value(std::span<const std::byte>(bytes).first(n)).has_value(), n, " bytes");
  }
  s.runs[0].state = static_cast<share_record_state>(9);
  CHECK_FALSE(decode_share_state_value(encode_share_state_value(s)).has_value());
}

TEST_CASE("share partition: the share state key round-trips and is told apart from an offset key") {
  const share_state_key k{"queue-1", runnel::topic_partition("jobs", runnel::partition_id(7))};
  const auto bytes = encode_key(k);
  auto d = decode_key(bytes);
  REQUIRE(d.has_value());
  const auto* sk = std::get_if<share_state_key>(&*d);
  REQUIRE(sk != nullptr);
  CHECK(sk->group == "queue-1");
  CHECK(sk->tp == k.tp);
  CHECK(bytes != encode_key(offset_key{k.group, k.tp}));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE(decode_key(std::span<const std::byte>(bytes).first(n)).has_value());
  }
}

TEST_CASE("share partition: the log's start moving up drops the records below it") {
  harness h;
  h.get("a", 5, 0, 4);
  h.sp.move_start(offset(3));
  CHECK(h.sp.start() == offset(3));
  CHECK(h.sp.in_flight() == 2);
  h.refused("a", 2, 2, ack_kind::accept);
  h.ok("a", 3, 4, ack_kind::accept);
  h.sp.move_start(offset(20));
  CHECK(h.sp.start() == offset(20));
  CHECK(h.sp.end() == offset(20));
  CHECK(h.get("a", 5, 0, 21) == ranges{ar(20, 21, 1)});
}

TEST_CASE("share partition: stats count each state and the oldest lock's age") {
  share_limits l;
  l.dead_letter = true;
  harness h(l);
  h.get("a", 2, 0, 9);
  h.now += 5s;
  h.get("b", 4, 0, 9);
  h.ok("b", 2, 2, ack_kind::accept);
  h.ok("b", 3, 3, ack_kind::release);
  h.ok("b", 4, 4, ack_kind::reject);
  const auto s = h.sp.stats(h.now + 1s);
  CHECK(s.start == offset(0));
  CHECK(s.end == offset(6));
  CHECK(s.acquired == 3);
  CHECK(s.available == 1);
  CHECK(s.acknowledged == 1);
  CHECK(s.archived == 1);
  CHECK(s.dead_lettering == 1);
  CHECK(s.oldest_lock_age == 6s);
}
