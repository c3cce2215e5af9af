// The message-id window's rules (broker/storage/dedup_window.h).

#include "broker/storage/dedup_window.h"

#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <random>
#include <string>

using namespace runnel;
using namespace runnel::storage;

TEST_CASE("dedup window: an id seen within the window answers its first copy, later copies change nothing") {
  dedup_window w(std::chrono::milliseconds(1000), 100);
  w.add("a", offset(5), 10'000);
  w.add("a", offset(9), 10'500);  // a repeat inside the window
  CHECK(w.find("a", 10'900) == offset(5));
  CHECK_FALSE(w.find("b", 10'900).has_value());
  CHECK(w.size() == 1);
}

TEST_CASE("dedup window: past the window an id is new again, and expire forgets it") {
  dedup_window w(std::chrono::milliseconds(1000), 100);
  w.add("a", offset(5), 10'000);
  CHECK_FALSE(w.find("a", 11'001).has_value());
  w.add("a", offset(20), 11'001);  // a new first copy
  CHECK(w.find("a", 11'500) == offset(20));
  w.add("b", offset(21), 11'100);
  w.expire(12'050);
  CHECK_FALSE(w.find("a", 12'050).has_value());
  CHECK(w.find("b", 12'050) == offset(21));
  CHECK(w.size() == 1);
}

TEST_CASE("dedup window: max ids evicts the oldest early and counts them") {
  dedup_window w(std::chrono::milliseconds(60'000), 3);
  for (int i = 0; i < 5; ++i) w.add("id" + std::to_string(i), offset(i), 1000 + i);
  CHECK(w.size() == 3);
  CHECK(w.evicted_early() == 2);
  CHECK_FALSE(w.find("id0", 2000).has_value());
  CHECK_FALSE(w.find("id1", 2000).has_value());
  CHECK(w.find("id4", 2000) == offset(4));
}

TEST_CASE("dedup window: truncation forgets ids whose first copy was cut off") {
  dedup_window w(std::chrono::milliseconds(60'000), 100);
  w.add("a", offset(1), 1000);
  w.add("b", offset(2), 1001);
  w.add("c", offset(3), 1002);
  w.truncate(offset(2));
  CHECK(w.find("a", 2000) == offset(1));
  CHECK_FALSE(w.find("b", 2000).has_value());
  CHECK_FALSE(w.find("c", 2000).has_value());
  w.add("b", offset(2), 1003);  // written again after the cut
  CHECK(w.find("b", 2000) == offset(2));
  CHECK(w.size() == 2);
}

namespace {

// The window's rules, written the plain way: the reference the table is
// checked against.
struct reference_window {
  std::int64_t window;
  std::size_t max_ids;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> ids;  // id -> (offset, ts)
  std::deque<std::string> order;
  std::uint64_t evicted = 0;

  std::optional<std::int64_t> find(const std::string& id, std::int64_t now) const {
    auto it = ids.find(id);
    if (it == ids.end() || it->second.second < now - window) return std::nullopt;
    return it->second.first;
  }
  void add(const std::string& id, std::int64_t at, std::int64_t ts) {
    auto it = ids.find(id);
    if (it != ids.end()) {
      if (it->second.second >= ts - window) return;
      std::erase(order, id);
    }
    ids[id] = {at, ts};
    order.push_back(id);
    while (ids.size() > max_ids) {
      ids.erase(order.front());
      order.pop_front();
      ++evicted;
    }
  }
  void expire(std::int64_t now) {
    while (!order.empty() && ids.at(order.front()).second < now - window) {
      ids.erase(order.front());
      order.pop_front();
    }
  }
  void truncate(std::int64_t from) {
    std::erase_if(order, [&](const std::string& id) {
      if (ids.at(id).first < from) return false;
      ids.erase(id);
      return true;
    });
  }
};

}  // namespace

TEST_CASE("dedup window: the open-addressed table agrees with the plain rules through growth, eviction, expiry and truncation") {
  std::mt19937 rng(1234);
  for (int round = 0; round < 20; ++round) {
    const std::size_t max_ids = 1 + rng() % 3000;
    dedup_window w(std::chrono::milliseconds(5000), max_ids);
    reference_window ref{5000, max_ids, {}, {}, 0};
    std::int64_t next_offset = 0;
    std::int64_t now = 100'000;
    const int id_space = 1 + static_cast<int>(rng() % 6000);
    for (int op = 0; op < 20'000; ++op) {
      const std::string id = "id-" + std::to_string(rng() % id_space);
      const auto what = rng() % 100;
      now += static_cast<std::int64_t>(rng() % 3);
      if (what < 70) {
        w.add(id, offset(next_offset), now);
        ref.add(id, next_offset, now);
        ++next_offset;
      } else if (what < 97) {
        auto got = w.find(id, now);
        auto want = ref.find(id, now);
        REQUIRE(got.has_value() == want.has_value());
        if (got) REQUIRE(got->value() == *want);
      } else if (what < 99) {
        w.expire(now);
        ref.expire(now);
      } else {
        const std::int64_t from = next_offset - static_cast<std::int64_t>(rng() % 200);
        w.truncate(offset(from));
        ref.truncate(from);
        next_offset = std::max<std::int64_t>(0, from);
      }
      REQUIRE(w.size() == ref.ids.size());
    }
    CHECK(w.evicted_early() == ref.evicted);
    for (const auto& [id, v] : ref.ids) CHECK(w.find(id, now) == offset(v.first));
  }
}

TEST_CASE("dedup window: ids added out of offset order still truncate exactly, and clear empties it") {
  dedup_window w(std::chrono::milliseconds(60'000), 100);
  w.add("c", offset(30), 1000);
  w.add("a", offset(10), 1001);  // lower offset after a higher one
  w.add("b", offset(20), 1002);
  w.truncate(offset(20));
  CHECK(w.find("a", 2000) == offset(10));
  CHECK_FALSE(w.find("b", 2000).has_value());
  CHECK_FALSE(w.find("c", 2000).has_value());
  CHECK(w.size() == 1);
  w.clear();
  CHECK(w.size() == 0);
  CHECK_FALSE(w.find("a", 2000).has_value());
  w.add(std::string(256, 'x'), offset(1), 1000);  // the longest id
  CHECK(w.find(std::string(256, 'x'), 2000) == offset(1));
}

TEST_CASE("dedup window: ids that expire and come back, with no expire() call, keep the entries bounded") {
  dedup_window w(std::chrono::milliseconds(10), 1000);
  std::int64_t ts = 0;
  for (int i = 0; i < 200'000; ++i) {
    ts += 20;  // past the window every time: a new first copy
    w.add("id-" + std::to_string(i % 10), offset(i), ts);
  }
  CHECK(w.size() == 10);
  CHECK(w.entries() <= 2 * w.size() + 4096 + 1);
  CHECK(w.find("id-9", ts) == offset(199'999));
  CHECK(w.evicted_early() == 0);
}

TEST_CASE("dedup window: the FIFO ring grows while it wraps and keeps every id in order") {
  dedup_window w(std::chrono::milliseconds(1000), 1'000'000);
  // 1,000 ids, the oldest 600 expired: the ring's front is well inside it
  // when the next 3,000 make it grow twice.
  for (int i = 0; i < 1000; ++i) w.add("a" + std::to_string(i), offset(i), i < 600 ? 0 : 5000);
  w.expire(5500);
  CHECK(w.size() == 400);
  for (int i = 0; i < 3000; ++i) w.add("b" + std::to_string(i), offset(1000 + i), 5000 + i / 100);
  CHECK(w.size() == 3400);
  for (int i = 0; i < 600; ++i) CHECK_FALSE(w.find("a" + std::to_string(i), 5500).has_value());
  for (int i = 600; i < 1000; ++i) CHECK(w.find("a" + std::to_string(i), 5500) == offset(i));
  for (int i = 0; i < 3000; ++i) CHECK(w.find("b" + std::to_string(i), 5500) == offset(1000 + i));
  // A truncation takes the newest back off the wrapped ring.
  w.truncate(offset(2500));
  CHECK(w.size() == 1900);
  CHECK(w.find("b1499", 5500) == offset(2499));
  CHECK_FALSE(w.find("b1500", 5500).has_value());
  w.add("b1500", offset(2500), 5100);
  CHECK(w.find("b1500", 5500) == offset(2500));
}
