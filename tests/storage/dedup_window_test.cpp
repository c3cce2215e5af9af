// The message-id window's rules (broker/storage/dedup_window.h).

#include "broker/storage/dedup_window.h"

#include <doctest/doctest.h>

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
