// The state records of __consumer_offsets (broker/group/records.h): keys
// and values round trip, and bytes that are not ours are refused.
#include "broker/group/records.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstddef>
#include <string>
#include <vector>

#include "tests/group/group_checks.h"

using runnel::partition_id;
using runnel::topic_partition;
using namespace runnel::group;
using namespace runnel::group::testing;

namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

// A group with every persisted field set to something other than its default.
group full_group() {
  group g;
  g.id = "orders-app";
  g.epoch = 7;
  g.assignment_epoch = 6;
  g.assignor = "range";
  g.subscribed = {{"t", 6}, {"u", 2}};
  member a;
  a.id = "member-a";
  a.instance_id = "inst-a";
  a.client_id = "client";
  a.client_host = "/10.0.0.1";
  a.rack = "rack-1";
  a.epoch = 6;
  a.previous_epoch = 4;
  a.rebalance_timeout_ms = 12'000;
  a.session_timeout_ms = 9000;
  a.topic_names = {"t", "u"};
  a.regex = "v.*";
  a.assigned = parts("t", {0, 1, 2});
  a.revoking = parts("u", {1});
  a.left_static = true;
  member b;
  b.id = "member-b";
  b.epoch = 5;
  b.topic_names = {"t"};
  b.assigned = parts("t", {3});
  g.members.emplace(a.id, a);
  g.members.emplace(b.id, b);
  g.target["member-a"] = parts("t", {0, 1, 2});
  g.target["member-b"] = unite(parts("t", {3, 4, 5}), parts("u", {0, 1}));
  return g;
}

}  // namespace

TEST_CASE("records: an offset key round trips") {
  const offset_key k{"group-1", tp("orders", 17)};
  auto b = encode_key(k);
  CHECK(b[0] == std::byte{1});
  CHECK(b[1] == std::byte{1});
  auto d = decode_key(b);
  REQUIRE(d.has_value());
  const auto* ok = std::get_if<offset_key>(&*d);
  REQUIRE(ok != nullptr);
  CHECK(ok->group == "group-1");
  CHECK(ok->tp == tp("orders", 17));
}

TEST_CASE("records: an offset key has the documented little-endian layout") {
  auto b = encode_key(offset_key{"g", tp("t", 0x01020304)});
  CHECK(b == bytes({1, 1, 1, 0, 'g', 1, 0, 't', 4, 3, 2, 1}));
}

TEST_CASE("records: a group key round trips") {
  auto b = encode_key(group_key{"group-1"});
  CHECK(b == bytes({1, 2, 7, 0, 'g', 'r', 'o', 'u', 'p', '-', '1'}));
  auto d = decode_key(b);
  REQUIRE(d.has_value());
  const auto* gk = std::get_if<group_key>(&*d);
  REQUIRE(gk != nullptr);
  CHECK(gk->group == "group-1");
}

TEST_CASE("records: decode_key rejects every truncation of a key") {
  for (const auto& full : {encode_key(offset_key{"group", tp("topic", 3)}), encode_key(group_key{"group"})}) {
    REQUIRE(decode_key(full).has_value());
    for (std::size_t n = 0; n < full.size(); ++n) {
      CHECK_MESSAGE(!decode_key(std::span<const std::byte>(full).first(n)).has_value(), "prefix of ", n, " bytes");
    }
  }
}

TEST_CASE("records: decode_key rejects an unknown version") {
  auto b = encode_key(group_key{"g"});
  b[0] = std::byte{2};
  CHECK_FALSE(decode_key(b).has_value());
}

TEST_CASE("records: decode_key rejects an unknown type") {
  auto b = encode_key(group_key{"g"});
  b[1] = std::byte{3};
  CHECK_FALSE(decode_key(b).has_value());
  b[1] = std::byte{0};
  CHECK_FALSE(decode_key(b).has_value());
}

TEST_CASE("records: decode_key rejects trailing bytes") {
  auto g = encode_key(group_key{"g"});
  g.push_back(std::byte{0});
  CHECK_FALSE(decode_key(g).has_value());
  auto o = encode_key(offset_key{"g", tp("t", 1)});
  o.push_back(std::byte{0});
  CHECK_FALSE(decode_key(o).has_value());
}

TEST_CASE("records: an offset value round trips, metadata byte for byte") {
  committed_offset v;
  v.offset = 1234567890123;
  v.leader_epoch = 9;
  v.metadata = std::string("meta\0data", 9);
  v.commit_timestamp_ms = 1'700'000'000'000;
  auto d = decode_offset_value(encode_offset_value(v));
  REQUIRE(d.has_value());
  CHECK(d->offset == v.offset);
  CHECK(d->leader_epoch == v.leader_epoch);
  CHECK(d->metadata == v.metadata);
  CHECK(d->commit_timestamp_ms == v.commit_timestamp_ms);
}

TEST_CASE("records: decode_offset_value rejects garbage") {
  CHECK_FALSE(decode_offset_value(bytes({})).has_value());
  CHECK_FALSE(decode_offset_value(bytes({0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4})).has_value());
  auto good = encode_offset_value(committed_offset{5, 1, "m", 7});
  CHECK_FALSE(decode_offset_value(std::span<const std::byte>(good).first(good.size() / 2)).has_value());
}

TEST_CASE("records: a group value round trips every persisted field") {
  const group g = full_group();
  group back;
  back.id = g.id;
  REQUIRE(decode_group_value(encode_group_value(g), back));
  const auto diffs = group_differences(g, back);
  CHECK_MESSAGE(diffs.empty(), fmt::format("{}", fmt::join(diffs, "; ")));
  CHECK(back.has_record);
  CHECK(back.members.at("member-a").left_static);
}

TEST_CASE("records: the group comparison sees a changed field (negative control)") {
  const group g = full_group();
  group other = g;
  other.members.at("member-b").revoking.insert(tp("t", 5));
  other.offsets[tp("t", 0)] = committed_offset{1, -1, "", 0};
  CHECK(group_differences(g, other).size() == 2);
  other = g;
  other.target["member-a"].clear();
  CHECK(group_differences(g, other).size() == 1);
}

TEST_CASE("records: decode_group_value replaces members, target and counts") {
  group g = full_group();
  group small;
  small.epoch = 1;
  small.assignment_epoch = 1;
  member m;
  m.id = "only";
  small.members.emplace("only", m);
  REQUIRE(decode_group_value(encode_group_value(small), g));
  CHECK(g.epoch == 1);
  CHECK(g.members.size() == 1);
  CHECK(g.members.contains("only"));
  CHECK(g.subscribed.empty());
  CHECK(g.target.size() == 1);
}

TEST_CASE("records: decode_group_value rejects garbage and leaves the group unchanged") {
  group g = full_group();
  const group before = g;
  auto good = encode_group_value(g);
  std::vector<std::vector<std::byte>> bad = {
      {},
      bytes({1, 2, 3}),
      bytes({0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0}),
      std::vector<std::byte>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)),
  };
  for (const auto& b : bad) {
    CHECK_FALSE(decode_group_value(b, g));
    CHECK(group_differences(before, g).empty());
    CHECK(g.has_record == before.has_record);
  }
}
