#include "broker/group/assignor.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace runnel;
using group::assignment;
using group::assignor_input;
using group::member_subscription;

namespace {

// The checker's own reading of the input, independent of the assignors':
// member id -> the existing topics (count > 0) it subscribes to; the first
// entry of an id listed twice counts.
std::map<std::string, std::set<std::string>> effective_subscriptions(const assignor_input& in) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& m : in.members) {
    if (out.contains(m.member_id)) continue;
    auto& topics = out[m.member_id];
    for (const auto& t : m.topics) {
      auto it = in.partitions.find(t);
      if (it != in.partitions.end() && it->second > 0) topics.insert(t);
    }
  }
  return out;
}

// Every fault of `out` against the contract in assignor.h; empty if none.
std::vector<std::string> check_valid(const assignor_input& in, const assignment& out) {
  std::vector<std::string> faults;
  const auto subs = effective_subscriptions(in);
  for (const auto& [id, topics] : subs) {
    if (!out.contains(id)) faults.push_back(fmt::format("member {} has no entry", id));
  }
  std::map<topic_partition, std::string> owner;
  for (const auto& [id, owned] : out) {
    auto sub = subs.find(id);
    if (sub == subs.end()) {
      faults.push_back(fmt::format("{} is not a member", id));
      continue;
    }
    for (const auto& tp : owned) {
      if (!sub->second.contains(tp.topic)) {
        faults.push_back(
            fmt::format("{} got {} of a topic it does not subscribe to (or unknown)", id, tp));
      } else if (tp.partition.value() < 0 || tp.partition.value() >= in.partitions.at(tp.topic)) {
        faults.push_back(fmt::format("{} got {}, past the partition count", id, tp));
      }
      auto [it, fresh] = owner.emplace(tp, id);
      if (!fresh) faults.push_back(fmt::format("{} owned by both {} and {}", tp, it->second, id));
    }
  }
  std::set<std::string> subscribed;
  for (const auto& [id, topics] : subs) subscribed.insert(topics.begin(), topics.end());
  for (const auto& topic : subscribed) {
    for (std::int32_t p = 0; p < in.partitions.at(topic); ++p) {
      if (!owner.contains(topic_partition(topic, partition_id(p)))) {
        faults.push_back(fmt::format("{}/{} has no owner", topic, p));
      }
    }
  }
  return faults;
}

// Max minus min partition count over the members with a subscription.
std::size_t spread(const assignor_input& in, const assignment& out) {
  std::size_t lo = SIZE_MAX, hi = 0;
  for (const auto& [id, topics] : effective_subscriptions(in)) {
    if (topics.empty()) continue;
    lo = std::min(lo, out.at(id).size());
    hi = std::max(hi, out.at(id).size());
  }
  return hi < lo ? 0 : hi - lo;
}

// The heterogeneous guarantee: for every partition, every subscriber of its
// topic owns at least the owner's count minus one.
bool locally_balanced(const assignor_input& in, const assignment& out) {
  std::map<std::string, std::size_t> least;  // topic -> the smallest count among its subscribers
  for (const auto& [id, topics] : effective_subscriptions(in)) {
    for (const auto& t : topics) {
      auto [it, fresh] = least.emplace(t, out.at(id).size());
      if (!fresh) it->second = std::min(it->second, out.at(id).size());
    }
  }
  for (const auto& [id, owned] : out)
    for (const auto& tp : owned)
      if (owned.size() > least.at(tp.topic) + 1) return false;
  return true;
}

// Partitions of `before` that `after` gives to a different member (a
// partition no longer in `after` does not count).
std::size_t moved(const assignment& before, const assignment& after) {
  std::map<topic_partition, std::string> now;
  for (const auto& [id, owned] : after)
    for (const auto& tp : owned) now[tp] = id;
  std::size_t n = 0;
  for (const auto& [id, owned] : before)
    for (const auto& tp : owned)
      if (auto it = now.find(tp); it != now.end() && it->second != id) ++n;
  return n;
}

// member id -> the partitions of `in.previous` it may keep: still a
// member, still subscribed, below the count; a partition two members had
// goes to the smaller id.
std::map<std::string, std::set<topic_partition>> keepable(const assignor_input& in) {
  std::map<std::string, std::set<topic_partition>> out;
  std::set<topic_partition> taken;
  for (const auto& [id, topics] : effective_subscriptions(in)) {
    auto& keep = out[id];
    if (in.previous == nullptr || !in.previous->contains(id)) continue;
    for (const auto& tp : in.previous->at(id)) {
      if (topics.contains(tp.topic) && tp.partition.value() >= 0 &&
          tp.partition.value() < in.partitions.at(tp.topic) && taken.insert(tp).second)
        keep.insert(tp);
    }
  }
  return out;
}

// Keepable partitions (above) that `out` gave to someone else.
std::size_t revoked(const assignor_input& in, const assignment& out) {
  std::size_t n = 0;
  for (const auto& [id, keep] : keepable(in))
    for (const auto& tp : keep) n += out.at(id).contains(tp) ? 0 : 1;
  return n;
}

// The fewest revocations any balanced result can make when every member
// subscribes to the same topics: the base + 1 quotas go to the members
// that may keep the most.
std::size_t min_moves(const assignor_input& in) {
  const auto subs = effective_subscriptions(in);
  const auto keep = keepable(in);
  std::size_t total = 0, members = 0;
  std::set<std::string> topics;
  std::vector<std::size_t> kept;
  for (const auto& [id, t] : subs) {
    if (t.empty()) continue;
    ++members;
    topics.insert(t.begin(), t.end());
    kept.push_back(keep.at(id).size());
  }
  for (const auto& t : topics) total += static_cast<std::size_t>(in.partitions.at(t));
  std::sort(kept.rbegin(), kept.rend());
  std::size_t n = 0;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const std::size_t quota = total / members + (i < total % members ? 1 : 0);
    n += kept[i] > quota ? kept[i] - quota : 0;
  }
  return n;
}

std::vector<member_subscription> same_topics(std::size_t members,
                                             const std::set<std::string>& topics,
                                             const std::string& prefix = "m") {
  std::vector<member_subscription> out;
  for (std::size_t i = 0; i < members; ++i)
    out.push_back({fmt::format("{}{:04}", prefix, i), topics});
  return out;
}

topic_partition tp(const std::string& t, std::int32_t p) {
  return topic_partition(t, partition_id(p));
}

}  // namespace

TEST_CASE("assignor: names select the assignor, others are unknown") {
  // Extra parentheses: doctest cannot print a function pointer.
  CHECK((group::find_assignor("uniform") == &group::assign_uniform));
  CHECK((group::find_assignor("range") == &group::assign_range));
  CHECK((group::find_assignor("roundrobin") == nullptr));
  CHECK((group::find_assignor("") == nullptr));
}

TEST_CASE("assignor: check_valid reports every kind of broken assignment") {
  assignor_input in;
  in.members = {{"a", {"t", "u"}}, {"b", {"t"}}};
  in.partitions = {{"t", 2}, {"u", 1}, {"v", 1}};
  const assignment good = {{"a", {tp("t", 0), tp("u", 0)}}, {"b", {tp("t", 1)}}};
  REQUIRE(check_valid(in, good).empty());

  auto faults_of = [&](auto edit) {
    assignment bad = good;
    edit(bad);
    return check_valid(in, bad);
  };
  CHECK(faults_of([](assignment& a) { a.erase("b"); }).size() == 2);  // no entry, t/1 unowned
  CHECK(faults_of([](assignment& a) { a["b"].insert(tp("t", 0)); }) ==
        std::vector<std::string>{"t/0 owned by both a and b"});
  CHECK(faults_of([](assignment& a) { a["a"].erase(tp("u", 0)); }) ==
        std::vector<std::string>{"u/0 has no owner"});
  CHECK(faults_of([](assignment& a) {
          a["b"].insert(tp("u", 0));
          a["a"].erase(tp("u", 0));
        }) ==
        std::vector<std::string>{"b got u/0 of a topic it does not subscribe to (or unknown)"});
  CHECK(faults_of([](assignment& a) { a["a"].insert(tp("v", 0)); }).size() == 1);  // unsubscribed
  CHECK(faults_of([](assignment& a) { a["a"].insert(tp("gone", 0)); }).size() ==
        1);                                                                        // unknown topic
  CHECK(faults_of([](assignment& a) { a["b"].insert(tp("t", 2)); }).size() == 1);  // past the count
  CHECK(faults_of([](assignment& a) { a["c"] = {}; }) ==
        std::vector<std::string>{"c is not a member"});
}

TEST_CASE("assignor: the balance checkers see an uneven assignment") {
  assignor_input in;
  in.members = {{"a", {"t"}}, {"b", {"t", "u"}}};
  in.partitions = {{"t", 3}, {"u", 1}};
  const assignment even = {{"a", {tp("t", 0), tp("t", 1)}}, {"b", {tp("t", 2), tp("u", 0)}}};
  const assignment uneven = {{"a", {tp("t", 0), tp("t", 1), tp("t", 2)}}, {"b", {tp("u", 0)}}};
  REQUIRE(check_valid(in, uneven).empty());
  CHECK(spread(in, even) == 0);
  CHECK(spread(in, uneven) == 2);
  CHECK(locally_balanced(in, even));
  CHECK_FALSE(locally_balanced(in, uneven));
}

TEST_CASE("uniform: same subscriptions are balanced to within one, for several sizes") {
  struct size {
    std::size_t members;
    std::int32_t t_partitions, u_partitions;
  };
  for (auto s : {size{1, 1, 0}, size{1, 5, 3}, size{3, 12, 0}, size{3, 7, 0}, size{4, 5, 6},
                 size{5, 3, 0}, size{10, 1, 1}, size{7, 100, 33}, size{64, 1000, 0}}) {
    CAPTURE(s.members);
    CAPTURE(s.t_partitions);
    assignor_input in;
    in.members = same_topics(s.members, {"t", "u"});
    in.partitions = {{"t", s.t_partitions}, {"u", s.u_partitions}};
    const auto out = group::assign_uniform(in);
    CHECK(check_valid(in, out).empty());
    CHECK(spread(in, out) <= 1);
  }
}

TEST_CASE("uniform: more members than partitions leaves some empty, none with two") {
  assignor_input in;
  in.members = same_topics(5, {"t"});
  in.partitions = {{"t", 3}};
  const auto out = group::assign_uniform(in);
  REQUIRE(check_valid(in, out).empty());
  CHECK(out.size() == 5);
  std::size_t empty = 0;
  for (const auto& [id, owned] : out) {
    CHECK(owned.size() <= 1);
    empty += owned.empty() ? 1 : 0;
  }
  CHECK(empty == 2);
}

TEST_CASE(
    "uniform: a member joining a balanced group of 3 with 12 partitions takes 3, nothing else "
    "moves") {
  assignor_input first;
  first.members = same_topics(3, {"t"});
  first.partitions = {{"t", 12}};
  const auto before = group::assign_uniform(first);
  for (const auto& [id, owned] : before) REQUIRE(owned.size() == 4);

  assignor_input join = first;
  join.members.push_back({"m9999", {"t"}});
  join.previous = &before;
  const auto after = group::assign_uniform(join);
  CHECK(check_valid(join, after).empty());
  CHECK(after.at("m9999").size() == 3);
  CHECK(moved(before, after) == 3);
  CHECK(revoked(join, after) == min_moves(join));
  for (const auto& [id, owned] : before) {
    if (id == "m9999") continue;
    CHECK(after.at(id).size() == 3);
    CHECK(std::includes(owned.begin(), owned.end(), after.at(id).begin(), after.at(id).end()));
  }
}

TEST_CASE("uniform: a member leaving moves only its own partitions") {
  for (std::int32_t partitions : {12, 13, 2, 40}) {
    CAPTURE(partitions);
    assignor_input first;
    first.members = same_topics(4, {"t", "u"});
    first.partitions = {{"t", partitions}, {"u", 3}};
    const auto before = group::assign_uniform(first);

    assignor_input leave = first;
    leave.members.erase(leave.members.begin() + 1);  // m0001
    leave.previous = &before;
    const auto after = group::assign_uniform(leave);
    CHECK(check_valid(leave, after).empty());
    CHECK(spread(leave, after) <= 1);
    CHECK_FALSE(after.contains("m0001"));
    for (const auto& [id, owned] : before) {
      if (id == "m0001") continue;
      CHECK(std::includes(after.at(id).begin(), after.at(id).end(), owned.begin(), owned.end()));
    }
  }
}

TEST_CASE("uniform: new partitions are placed and the old ones stay when a topic grows") {
  assignor_input first;
  first.members = same_topics(3, {"t"});
  first.partitions = {{"t", 6}};
  const auto before = group::assign_uniform(first);

  assignor_input grown = first;
  grown.partitions["t"] = 10;
  grown.previous = &before;
  const auto after = group::assign_uniform(grown);
  CHECK(check_valid(grown, after).empty());
  CHECK(spread(grown, after) <= 1);
  CHECK(moved(before, after) == 0);
  for (const auto& [id, owned] : before) {
    CHECK(std::includes(after.at(id).begin(), after.at(id).end(), owned.begin(), owned.end()));
  }
}

TEST_CASE(
    "uniform: partitions past a shrunk count vanish and the rest rebalance with minimum moves") {
  assignor_input first;
  first.members = same_topics(3, {"t"});
  first.partitions = {{"t", 9}};
  const auto before = group::assign_uniform(first);

  assignor_input shrunk = first;
  shrunk.partitions["t"] = 4;
  shrunk.previous = &before;
  const auto after = group::assign_uniform(shrunk);
  CHECK(check_valid(shrunk, after).empty());
  CHECK(spread(shrunk, after) <= 1);
  CHECK(revoked(shrunk, after) == min_moves(shrunk));
}

TEST_CASE(
    "uniform: a stale previous target (gone topics, unsubscribed, past the count, doubled, "
    "leavers) is ignored") {
  const assignment previous = {
      {"a", {tp("gone", 0), tp("t", 0), tp("t", 1), tp("t", 7), tp("u", 0)}},
      {"b", {tp("t", 0), tp("t", 2), tp("t", -1)}},  // t/0 also claimed by a
      {"left", {tp("t", 3)}},
  };
  assignor_input in;
  in.members = {{"a", {"t"}}, {"b", {"t", "u"}}, {"c", {"t"}}};
  in.partitions = {{"t", 6}, {"u", 1}};
  in.previous = &previous;
  const auto out = group::assign_uniform(in);
  CHECK(check_valid(in, out).empty());
  CHECK(out.at("a").contains(tp("t", 0)));  // the smaller id keeps a doubled partition
  CHECK(out.at("a").contains(tp("t", 1)));
  CHECK(out.at("b").contains(tp("t", 2)));
  CHECK_FALSE(out.at("a").contains(tp("u", 0)));  // a does not subscribe to u
  CHECK(locally_balanced(in, out));
}

TEST_CASE("uniform: heterogeneous subscriptions give each partition to a subscriber of its topic") {
  assignor_input in;
  in.members = {{"a", {"t1"}}, {"b", {"t1", "t2"}},       {"c", {"t2", "t3"}},
                {"d", {"t3"}}, {"e", {"t1", "t2", "t3"}}, {"f", {"t4", "missing"}},
                {"g", {}}};
  in.partitions = {{"t1", 5}, {"t2", 9}, {"t3", 2}, {"t4", 0}, {"t5", 4}};
  const auto out = group::assign_uniform(in);
  CHECK(check_valid(in, out).empty());
  CHECK(locally_balanced(in, out));
  CHECK(out.at("f").empty());
  CHECK(out.at("g").empty());
  for (const auto& [id, owned] : out)
    for (const auto& p : owned) CHECK(p.topic != "t5");
}

TEST_CASE("uniform: a topic only one member takes goes to it, the shared topic to the others") {
  assignor_input in;
  in.members = {{"a", {"shared", "solo"}}, {"b", {"shared"}}};
  in.partitions = {{"shared", 4}, {"solo", 4}};
  const auto out = group::assign_uniform(in);
  REQUIRE(check_valid(in, out).empty());
  CHECK(out.at("a").size() == 4);
  CHECK(out.at("b").size() == 4);
}

TEST_CASE("uniform: random homogeneous rounds stay balanced and move the minimum") {
  std::mt19937 rng(20240611);
  std::size_t rounds_that_must_move = 0;
  for (int round = 0; round < 300; ++round) {
    CAPTURE(round);
    assignor_input in;
    std::uniform_int_distribution<int> members(1, 12), count(0, 30), entries(0, 60);
    in.members = same_topics(static_cast<std::size_t>(members(rng)), {"t", "u"});
    in.partitions = {{"t", count(rng)}, {"u", count(rng)}};
    // A random previous target: skewed towards the first ids, overlapping,
    // with leavers (ids past the members) and partitions past the count.
    assignment previous;
    std::geometric_distribution<int> owner(0.25);
    std::uniform_int_distribution<int> part(0, 35);
    for (int i = entries(rng); i > 0; --i) {
      previous[fmt::format("m{:04}", owner(rng))].insert(tp(i % 2 == 0 ? "t" : "u", part(rng)));
    }
    in.previous = &previous;
    const auto out = group::assign_uniform(in);
    REQUIRE(check_valid(in, out).empty());
    CHECK(spread(in, out) <= 1);
    CHECK(revoked(in, out) == min_moves(in));
    rounds_that_must_move += min_moves(in) > 0 ? 1 : 0;
  }
  CHECK(rounds_that_must_move > 50);  // the property was exercised, not vacuous
}

TEST_CASE("uniform: random heterogeneous rounds are valid and locally balanced") {
  std::mt19937 rng(7);
  const std::vector<std::string> names = {"a", "b", "c", "d", "e"};
  for (int round = 0; round < 200; ++round) {
    CAPTURE(round);
    assignor_input in;
    std::uniform_int_distribution<int> members(1, 10), count(0, 20), coin(0, 1);
    for (const auto& n : names) in.partitions[n] = count(rng);
    const int m = members(rng);
    for (int i = 0; i < m; ++i) {
      member_subscription s{fmt::format("m{}", i), {}};
      for (const auto& n : names)
        if (coin(rng)) s.topics.insert(n);
      in.members.push_back(s);
    }
    const auto first = group::assign_uniform(in);
    REQUIRE(check_valid(in, first).empty());
    CHECK(locally_balanced(in, first));
    in.members.pop_back();
    in.previous = &first;
    const auto second = group::assign_uniform(in);
    REQUIRE(check_valid(in, second).empty());
    CHECK(locally_balanced(in, second));
  }
}

TEST_CASE("assignor: the same input in any member order gives the same output") {
  assignor_input in;
  in.members = {{"c", {"t", "u"}}, {"a", {"t"}}, {"b", {"u", "t"}}, {"d", {"u"}}};
  in.partitions = {{"t", 7}, {"u", 5}};
  const assignment previous = {{"b", {tp("t", 0), tp("t", 1), tp("t", 2)}}, {"d", {tp("t", 3)}}};
  in.previous = &previous;
  for (auto fn : {group::assign_uniform, group::assign_range}) {
    const auto once = fn(in);
    CHECK(fn(in) == once);
    assignor_input shuffled = in;
    std::reverse(shuffled.members.begin(), shuffled.members.end());
    CHECK(fn(shuffled) == once);
    std::rotate(shuffled.members.begin(), shuffled.members.begin() + 1, shuffled.members.end());
    CHECK(fn(shuffled) == once);
  }
}

TEST_CASE("assignor: no members, no topics and empty topics give nothing") {
  for (auto fn : {group::assign_uniform, group::assign_range}) {
    CHECK(fn(assignor_input{}).empty());

    assignor_input in;
    in.members = {{"a", {}}, {"b", {"missing", "empty"}}};
    in.partitions = {{"empty", 0}, {"other", 3}};
    const auto out = fn(in);
    CHECK(check_valid(in, out).empty());
    CHECK(out == assignment{{"a", {}}, {"b", {}}});

    assignor_input no_members;
    no_members.partitions = {{"t", 4}};
    CHECK(fn(no_members).empty());
  }
}

TEST_CASE("assignor: a member id listed twice counts once, with its first topics") {
  assignor_input in;
  in.members = {{"a", {"t"}}, {"b", {"t"}}, {"a", {"u"}}};
  in.partitions = {{"t", 4}, {"u", 2}};
  for (auto fn : {group::assign_uniform, group::assign_range}) {
    const auto out = fn(in);
    CHECK(check_valid(in, out).empty());
    CHECK(out.size() == 2);
    CHECK(out.at("a").size() == 2);
  }
}

TEST_CASE("range: 3 members and 7 partitions split 3, 2, 2 in contiguous ranges by member id") {
  assignor_input in;
  in.members = {{"c", {"t"}}, {"a", {"t"}}, {"b", {"t"}}};
  in.partitions = {{"t", 7}};
  const auto out = group::assign_range(in);
  CHECK(out == assignment{{"a", {tp("t", 0), tp("t", 1), tp("t", 2)}},
                          {"b", {tp("t", 3), tp("t", 4)}},
                          {"c", {tp("t", 5), tp("t", 6)}}});
}

TEST_CASE("range: each topic is split over its own subscribers only") {
  assignor_input in;
  in.members = {{"a", {"t", "u"}}, {"b", {"u"}}, {"c", {"t", "u"}}};
  in.partitions = {{"t", 3}, {"u", 2}};
  const auto out = group::assign_range(in);
  CHECK(out == assignment{{"a", {tp("t", 0), tp("t", 1), tp("u", 0)}},
                          {"b", {tp("u", 1)}},
                          {"c", {tp("t", 2)}}});
}

TEST_CASE("range: random inputs are valid") {
  std::mt19937 rng(11);
  const std::vector<std::string> names = {"a", "b", "c"};
  for (int round = 0; round < 100; ++round) {
    assignor_input in;
    std::uniform_int_distribution<int> members(0, 8), count(0, 15), coin(0, 1);
    for (const auto& n : names) in.partitions[n] = count(rng);
    for (int i = members(rng); i > 0; --i) {
      member_subscription s{fmt::format("m{}", i), {"missing"}};
      for (const auto& n : names)
        if (coin(rng)) s.topics.insert(n);
      in.members.push_back(s);
    }
    CHECK(check_valid(in, group::assign_range(in)).empty());
  }
}

TEST_CASE("uniform: 1000 members and 10000 partitions are balanced, and a join moves the minimum") {
  std::set<std::string> topics;
  assignor_input in;
  for (int t = 0; t < 10; ++t) {
    topics.insert(fmt::format("topic-{}", t));
    in.partitions[fmt::format("topic-{}", t)] = 1000;
  }
  in.members = same_topics(1000, topics);
  const auto first = group::assign_uniform(in);
  REQUIRE(check_valid(in, first).empty());
  CHECK(spread(in, first) == 0);

  in.members.push_back({"new", topics});
  in.previous = &first;
  const auto second = group::assign_uniform(in);
  REQUIRE(check_valid(in, second).empty());
  CHECK(spread(in, second) <= 1);
  CHECK(revoked(in, second) == min_moves(in));
  CHECK(moved(first, second) == 9);  // 10000 / 1001: the newcomer takes 9
}

TEST_CASE(
    "uniform: 1000 members with mixed subscriptions over 10000 partitions are locally balanced") {
  std::mt19937 rng(3);
  assignor_input in;
  std::vector<std::string> names;
  for (int t = 0; t < 20; ++t) {
    names.push_back(fmt::format("topic-{:02}", t));
    in.partitions[names.back()] = 500;
  }
  std::uniform_int_distribution<std::size_t> pick(0, names.size() - 1);
  for (int m = 0; m < 1000; ++m) {
    member_subscription s{fmt::format("m{:04}", m), {}};
    for (int k = 0; k < 3; ++k) s.topics.insert(names[pick(rng)]);
    in.members.push_back(s);
  }
  const auto first = group::assign_uniform(in);
  REQUIRE(check_valid(in, first).empty());
  CHECK(locally_balanced(in, first));

  in.members.erase(in.members.begin() + 500);
  in.previous = &first;
  const auto second = group::assign_uniform(in);
  REQUIRE(check_valid(in, second).empty());
  CHECK(locally_balanced(in, second));
}

TEST_CASE("range: 1000 members and 10000 partitions complete and are valid") {
  assignor_input in;
  std::set<std::string> topics;
  for (int t = 0; t < 10; ++t) {
    topics.insert(fmt::format("topic-{}", t));
    in.partitions[fmt::format("topic-{}", t)] = 1000;
  }
  in.members = same_topics(1000, topics);
  const auto out = group::assign_range(in);
  REQUIRE(check_valid(in, out).empty());
  CHECK(spread(in, out) == 0);
}
