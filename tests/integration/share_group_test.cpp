// Share groups against a real broker (ADR 0016; being built, issue 13):
// what ShareGroupHeartbeat answers, that a group id is of one type, and
// what ShareFetch and ShareAcknowledge hand out and keep across a restart,
// judged by the acquired ranges and batches members are answered.

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "runnel/admin.h"
#include "runnel/share_consumer.h"
#include "schemas/batch.h"
#include "tests/integration/topic_reader.h"
#include "tests/support/batches.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;

namespace {

struct answer {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
  std::string member_id;
  std::int32_t member_epoch = 0;
  std::set<std::pair<std::string, std::int32_t>> assignment;
};

answer share_heartbeat(std::uint16_t port, const std::string& group, const std::string& member, std::int32_t epoch,
                       const std::optional<std::vector<std::string>>& topics) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> names;
  if (topics) names = fbb.CreateVectorOfStrings(*topics);
  auto g = fbb.CreateString(group);
  auto m = fbb.CreateString(member);
  auto body = wire::CreateShareGroupHeartbeatRequest(fbb, g, m, epoch, flatbuffers::Offset<flatbuffers::String>(), names);
  raw_client rc(port);
  rc.send(request_frame(fbb, wire::Request::ShareGroupHeartbeatRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_ShareGroupHeartbeatResponse();
  REQUIRE(resp != nullptr);
  answer a;
  a.error = resp->error();
  if (resp->message() != nullptr) a.message = resp->message()->str();
  if (resp->member_id() != nullptr) a.member_id = resp->member_id()->str();
  a.member_epoch = resp->member_epoch();
  if (resp->assignment() != nullptr) {
    for (const auto* t : *resp->assignment()) {
      for (std::int32_t p : *t->partitions()) a.assignment.emplace(t->topic()->str(), p);
    }
  }
  return a;
}

wire::ErrorCode consumer_join(std::uint16_t port, const std::string& group) {
  flatbuffers::FlatBufferBuilder fbb;
  auto names = fbb.CreateVectorOfStrings(std::vector<std::string>{"jobs"});
  auto g = fbb.CreateString(group);
  wire::ConsumerGroupHeartbeatRequestBuilder b(fbb);
  b.add_group_id(g);
  b.add_member_epoch(0);
  b.add_subscribed_topic_names(names);
  auto body = b.Finish();
  raw_client rc(port);
  rc.send(request_frame(fbb, wire::Request::ConsumerGroupHeartbeatRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_ConsumerGroupHeartbeatResponse();
  REQUIRE(resp != nullptr);
  return resp->error();
}

std::set<std::pair<std::string, std::int32_t>> all_of(const std::string& topic, std::int32_t n) {
  std::set<std::pair<std::string, std::int32_t>> out;
  for (std::int32_t p = 0; p < n; ++p) out.emplace(topic, p);
  return out;
}

void create_topic(const std::string& bootstrap, const std::string& name, std::int32_t partitions) {
  admin_config c;
  c.bootstrap = bootstrap;
  auto a = admin::connect(c);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic(name, partitions, 1).has_value());
}

struct ack {
  std::int64_t first;
  std::int64_t last;
  std::uint8_t kind;  // 1 accept, 2 release, 3 reject
};

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::ShareFetchTopic>>> ack_topics(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& topic, const std::vector<ack>& acks) {
  std::vector<wire::ShareAcknowledgement> wire_acks;
  for (const auto& a : acks) wire_acks.emplace_back(a.first, a.last, a.kind);
  auto part = wire::CreateShareFetchPartition(fbb, 0, fbb.CreateVectorOfStructs(wire_acks));
  std::vector<flatbuffers::Offset<wire::ShareFetchPartition>> parts{part};
  auto t = wire::CreateShareFetchTopicDirect(fbb, topic.c_str(), &parts);
  return fbb.CreateVector(std::vector<flatbuffers::Offset<wire::ShareFetchTopic>>{t});
}

struct fetched {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
  wire::ErrorCode ack_error = wire::ErrorCode::NONE;
  std::string ack_message;
  std::vector<std::tuple<std::int64_t, std::int64_t, std::uint16_t>> acquired;  // first, last, delivery count
  std::vector<std::pair<std::int64_t, std::int64_t>> batches;                   // first and last offset of each batch sent
  // Every acquired offset.
  [[nodiscard]] std::set<std::int64_t> offsets() const {
    std::set<std::int64_t> out;
    for (const auto& [f, l, c] : acquired) {
      for (auto o = f; o <= l; ++o) out.insert(o);
    }
    return out;
  }
};

// Partition 0 of `topic`, as `member` of share group `group`.
fetched share_fetch(std::uint16_t port, const std::string& group, const std::string& member, const std::string& topic,
                    std::int32_t max_records, const std::vector<ack>& acks = {}, std::int32_t max_wait_ms = 0) {
  flatbuffers::FlatBufferBuilder fbb;
  auto topics = ack_topics(fbb, topic, acks);
  auto g = fbb.CreateString(group);
  auto m = fbb.CreateString(member);
  auto body = wire::CreateShareFetchRequest(fbb, g, m, max_wait_ms, max_records, 1 << 20, topics);
  raw_client rc(port);
  rc.send(request_frame(fbb, wire::Request::ShareFetchRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  fetched out;
  if (r->envelope().error() != wire::ErrorCode::NONE) {
    out.error = r->envelope().error();
    return out;
  }
  const auto* resp = r->envelope().body_as_ShareFetchResponse();
  REQUIRE(resp != nullptr);
  REQUIRE(resp->topics()->size() == 1);
  const auto* p = resp->topics()->Get(0)->partitions()->Get(0);
  out.error = p->error();
  if (p->message() != nullptr) out.message = p->message()->str();
  out.ack_error = p->acknowledge_error();
  if (p->acknowledge_message() != nullptr) out.ack_message = p->acknowledge_message()->str();
  if (p->acquired() != nullptr) {
    for (const auto* a : *p->acquired()) out.acquired.emplace_back(a->first_offset(), a->last_offset(), a->delivery_count());
  }
  const auto payload = std::span<const std::byte>(r->body).subspan(r->head.envelope_length);
  auto records = payload.subspan(p->records()->offset(), p->records()->length());
  while (!records.empty()) {
    auto h = schemas::decode_header(records);
    REQUIRE(h.has_value());
    out.batches.emplace_back(h->base_offset.value(), h->last_offset().value());
    records = records.subspan(h->length);
  }
  return out;
}

std::pair<wire::ErrorCode, std::string> share_ack_request(std::uint16_t port, const std::string& group,
                                                          const std::string& member, const std::string& topic,
                                                          const std::vector<ack>& acks) {
  flatbuffers::FlatBufferBuilder fbb;
  auto topics = ack_topics(fbb, topic, acks);
  auto g = fbb.CreateString(group);
  auto m = fbb.CreateString(member);
  auto body = wire::CreateShareAcknowledgeRequest(fbb, g, m, topics);
  raw_client rc(port);
  rc.send(request_frame(fbb, wire::Request::ShareAcknowledgeRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_ShareAcknowledgeResponse();
  REQUIRE(resp != nullptr);
  const auto* p = resp->topics()->Get(0)->partitions()->Get(0);
  return {p->error(), p->message() != nullptr ? p->message()->str() : std::string()};
}

void produce_records(std::uint16_t port, const std::string& topic, int n) {
  raw_client rc(port);
  auto batch = make_batch(n);
  rc.send(produce_frame(topic, 0, batch));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_ProduceResponse();
  REQUIRE(resp != nullptr);
  REQUIRE(resp->topics()->Get(0)->partitions()->Get(0)->error() == wire::ErrorCode::NONE);
}

std::set<std::int64_t> range_of(std::int64_t first, std::int64_t last) {
  std::set<std::int64_t> out;
  for (auto o = first; o <= last; ++o) out.insert(o);
  return out;
}

}  // namespace

TEST_CASE("share group: members share every partition, a group id is of one type, and the group survives a restart") {
  temp_dir dir;
  std::string a_id;
  std::int32_t a_epoch = 0;
  {
    broker_process broker(dir / "data");
    create_topic(broker.bootstrap(), "jobs", 3);
    auto a = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"});
    REQUIRE_MESSAGE(a.error == wire::ErrorCode::NONE, a.message);
    auto b = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"});
    REQUIRE_MESSAGE(b.error == wire::ErrorCode::NONE, b.message);
    CHECK(a.member_id.size() == 22);
    CHECK(b.member_id != a.member_id);
    CHECK(a.assignment == all_of("jobs", 3));
    CHECK(b.assignment == all_of("jobs", 3));
    // a learns the epoch b's join made.
    auto again = share_heartbeat(broker.port(), "q", a.member_id, a.member_epoch, std::nullopt);
    REQUIRE(again.error == wire::ErrorCode::NONE);
    CHECK(again.member_epoch == b.member_epoch);
    a_id = a.member_id;
    a_epoch = again.member_epoch;

    CHECK(consumer_join(broker.port(), "q") == wire::ErrorCode::INCONSISTENT_GROUP_TYPE);
    REQUIRE(consumer_join(broker.port(), "c") == wire::ErrorCode::NONE);
    auto wrong = share_heartbeat(broker.port(), "c", "", 0, std::vector<std::string>{"jobs"});
    CHECK(wrong.error == wire::ErrorCode::INCONSISTENT_GROUP_TYPE);
    CHECK(wrong.message.find("consumer group") != std::string::npos);
    CHECK(share_heartbeat(broker.port(), "q", "nobody", 3, std::nullopt).error == wire::ErrorCode::UNKNOWN_MEMBER_ID);
    CHECK(share_heartbeat(broker.port(), "q", a_id, a_epoch + 5, std::nullopt).error ==
          wire::ErrorCode::FENCED_MEMBER_EPOCH);
    CHECK(share_heartbeat(broker.port(), "", "", 0, std::nullopt).error == wire::ErrorCode::INVALID_GROUP_ID);
    REQUIRE(broker.stop() == 0);
  }
  broker_process broker(dir / "data");
  // Loaded from __consumer_offsets: the member and its epoch are still there,
  // and the group is still a share group.
  auto back = share_heartbeat(broker.port(), "q", a_id, a_epoch, std::nullopt);
  REQUIRE_MESSAGE(back.error == wire::ErrorCode::NONE, back.message);
  CHECK(back.member_epoch == a_epoch);
  CHECK(back.assignment == all_of("jobs", 3));
  CHECK(consumer_join(broker.port(), "q") == wire::ErrorCode::INCONSISTENT_GROUP_TYPE);
  auto left = share_heartbeat(broker.port(), "q", a_id, -1, std::nullopt);
  CHECK(left.error == wire::ErrorCode::NONE);
  CHECK(share_heartbeat(broker.port(), "q", a_id, a_epoch, std::nullopt).error == wire::ErrorCode::UNKNOWN_MEMBER_ID);
}

TEST_CASE("share fetch: each record goes to one member, acknowledgements hold across a restart, locks expire") {
  temp_dir dir;
  const std::vector<std::string> args{"--set", "share.record.lock.duration.ms=1000"};
  std::string a;
  std::string b;
  {
    broker_process broker(dir / "data", args);
    create_topic(broker.bootstrap(), "jobs", 1);
    produce_records(broker.port(), "jobs", 10);
    a = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"}).member_id;
    b = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"}).member_id;
    REQUIRE(!a.empty());
    REQUIRE(!b.empty());

    auto fa = share_fetch(broker.port(), "q", a, "jobs", 4);
    REQUIRE_MESSAGE(fa.error == wire::ErrorCode::NONE, fa.message);
    CHECK(fa.acquired == std::vector<std::tuple<std::int64_t, std::int64_t, std::uint16_t>>{{0, 3, 1}});
    CHECK(fa.batches == std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 9}});  // the batch holding them
    auto fb = share_fetch(broker.port(), "q", b, "jobs", 4);
    CHECK(fb.offsets() == range_of(4, 7));
    // a accepts its four with its next fetch and gets the last two.
    auto fa2 = share_fetch(broker.port(), "q", a, "jobs", 10, {{0, 3, 1}});
    CHECK(fa2.ack_error == wire::ErrorCode::NONE);
    CHECK(fa2.offsets() == range_of(8, 9));
    CHECK(share_fetch(broker.port(), "q", a, "jobs", 10).acquired.empty());  // everything is out

    // b gives 4 back: it is redelivered at once, its delivery count 2.
    CHECK(share_ack_request(broker.port(), "q", b, "jobs", {{4, 4, 2}}).first == wire::ErrorCode::NONE);
    auto fa3 = share_fetch(broker.port(), "q", a, "jobs", 10);
    CHECK(fa3.acquired == std::vector<std::tuple<std::int64_t, std::int64_t, std::uint16_t>>{{4, 4, 2}});

    // Bad acknowledgements: another member's, done already, never handed out, a bad kind.
    auto theirs = share_ack_request(broker.port(), "q", a, "jobs", {{5, 5, 1}});
    CHECK(theirs.first == wire::ErrorCode::INVALID_RECORD_STATE);
    CHECK(theirs.second.find("another member") != std::string::npos);
    CHECK(share_ack_request(broker.port(), "q", a, "jobs", {{0, 0, 1}}).first == wire::ErrorCode::INVALID_RECORD_STATE);
    CHECK(share_ack_request(broker.port(), "q", a, "jobs", {{50, 50, 1}}).first == wire::ErrorCode::INVALID_RECORD_STATE);
    CHECK(share_ack_request(broker.port(), "q", a, "jobs", {{8, 8, 9}}).first == wire::ErrorCode::INVALID_REQUEST);
    // ... and the groups: unknown, or a consumer group.
    CHECK(share_fetch(broker.port(), "nope", a, "jobs", 10).error == wire::ErrorCode::GROUP_ID_NOT_FOUND);
    REQUIRE(consumer_join(broker.port(), "c") == wire::ErrorCode::NONE);
    CHECK(share_fetch(broker.port(), "c", a, "jobs", 10).error == wire::ErrorCode::INCONSISTENT_GROUP_TYPE);

    // Every lock times out (1 s): the records come back, to a this time,
    // and only those that were acquired; b's late accept is refused.
    std::set<std::int64_t> redelivered;
    std::map<std::int64_t, std::uint16_t> counts;
    CHECK(eventually(
        [&] {
          auto f = share_fetch(broker.port(), "q", a, "jobs", 10, {}, 200);
          for (const auto& [first, last, count] : f.acquired) {
            for (auto o = first; o <= last; ++o) counts[o] = count;
          }
          auto got = f.offsets();
          redelivered.insert(got.begin(), got.end());
          return redelivered.size() >= 6;
        },
        std::chrono::milliseconds(5000)));
    CHECK(redelivered == range_of(4, 9));
    CHECK(counts[4] == 3);
    CHECK(counts[5] == 2);
    auto late = share_ack_request(broker.port(), "q", b, "jobs", {{5, 7, 1}});
    CHECK(late.first == wire::ErrorCode::INVALID_RECORD_STATE);
    // a accepts 4..7; 8 and 9 stay acquired (never accepted).
    CHECK(share_ack_request(broker.port(), "q", a, "jobs", {{4, 7, 1}}).first == wire::ErrorCode::NONE);
    REQUIRE(broker.stop() == 0);
  }
  // After the restart only what was never accepted comes back, and nothing
  // that was accepted ever does.
  broker_process broker(dir / "data", args);
  auto again = share_fetch(broker.port(), "q", a, "jobs", 100);
  REQUIRE_MESSAGE(again.error == wire::ErrorCode::NONE, again.message);
  CHECK(again.offsets() == range_of(8, 9));
  for (const auto& [f, l, count] : again.acquired) CHECK(count >= 2);
  CHECK(share_fetch(broker.port(), "q", b, "jobs", 100).acquired.empty());
}

TEST_CASE("share fetch: a member that leaves gives its records back at once and can no longer fetch") {
  temp_dir dir;
  broker_process broker(dir / "data");  // the default 30 s lock: only the leave can free them quickly
  create_topic(broker.bootstrap(), "jobs", 1);
  produce_records(broker.port(), "jobs", 6);
  auto a = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"});
  auto b = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"});
  REQUIRE(a.error == wire::ErrorCode::NONE);
  REQUIRE(b.error == wire::ErrorCode::NONE);
  CHECK(share_fetch(broker.port(), "q", b.member_id, "jobs", 4).offsets() == range_of(0, 3));
  CHECK(share_fetch(broker.port(), "q", a.member_id, "jobs", 10).offsets() == range_of(4, 5));
  CHECK(share_fetch(broker.port(), "q", "ghost", "jobs", 10).error == wire::ErrorCode::UNKNOWN_MEMBER_ID);
  REQUIRE(share_heartbeat(broker.port(), "q", b.member_id, b.member_epoch, std::nullopt).error == wire::ErrorCode::NONE);
  REQUIRE(share_heartbeat(broker.port(), "q", b.member_id, -1, std::nullopt).error == wire::ErrorCode::NONE);
  std::set<std::int64_t> back;
  CHECK(eventually(
      [&] {
        auto got = share_fetch(broker.port(), "q", a.member_id, "jobs", 10, {}, 100).offsets();
        back.insert(got.begin(), got.end());
        return back.size() >= 4;
      },
      std::chrono::milliseconds(3000)));
  CHECK(back == range_of(0, 3));
  auto gone = share_fetch(broker.port(), "q", b.member_id, "jobs", 10);
  CHECK(gone.error == wire::ErrorCode::UNKNOWN_MEMBER_ID);
  CHECK(share_ack_request(broker.port(), "q", b.member_id, "jobs", {{0, 0, 1}}).first == wire::ErrorCode::UNKNOWN_MEMBER_ID);
}

namespace {

std::unique_ptr<share_consumer> share_member(const std::string& bootstrap, const std::string& group, bool explicit_acks,
                                             std::int32_t max_records) {
  share_consumer_config c;
  c.bootstrap = bootstrap;
  c.group_id = group;
  c.explicit_acknowledgement = explicit_acks;
  c.max_poll_records = max_records;
  c.fetch_max_wait = std::chrono::milliseconds(100);
  auto sc = share_consumer::connect(c);
  REQUIRE_MESSAGE(sc.has_value(), sc.error().what());
  REQUIRE_MESSAGE((*sc)->subscribe({"jobs"}).has_value(), "subscribe");
  return std::move(*sc);
}

}  // namespace

TEST_CASE("share consumer: four members of one partition process every record exactly once between them") {
  temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "jobs", 1);
  for (int i = 0; i < 4; ++i) produce_records(broker.port(), "jobs", 50);
  std::mutex mu;
  std::map<std::int64_t, int> processed;  // offset -> times processed
  std::vector<int> per_member(4, 0);
  std::atomic<int> total{0};
  std::vector<std::unique_ptr<share_consumer>> consumers;
  for (int m = 0; m < 4; ++m) consumers.push_back(share_member(broker.bootstrap(), "workers", false, 7));
  std::vector<std::thread> members;
  for (int m = 0; m < 4; ++m) {
    members.emplace_back([&, m] {
      auto& sc = consumers[static_cast<std::size_t>(m)];
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (total.load() < 200 && std::chrono::steady_clock::now() < deadline) {
        auto got = sc->poll(std::chrono::milliseconds(200));
        if (!got) {  // no REQUIRE off the test's thread: it would throw past the thread
          CHECK_MESSAGE(false, got.error().what());
          break;
        }
        std::lock_guard lock(mu);
        for (const auto& r : *got) {
          ++processed[r.offset];
          ++per_member[static_cast<std::size_t>(m)];
          CHECK(r.delivery_count == 1);
          ++total;
        }
      }
      CHECK(sc->close().has_value());
    });
  }
  for (auto& t : members) t.join();
  CHECK(processed.size() == 200);
  CHECK(processed.begin()->first == 0);
  CHECK(processed.rbegin()->first == 199);
  for (const auto& [o, n] : processed) CHECK_MESSAGE(n == 1, "offset ", o, " processed ", n, " times");
  int busy = 0;
  for (int n : per_member) busy += n > 0 ? 1 : 0;
  CHECK(busy >= 2);  // the work was shared
}

TEST_CASE("share consumer: explicit acknowledgement releases a record to be redelivered, and rejects one for good") {
  temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "jobs", 1);
  produce_records(broker.port(), "jobs", 5);
  auto sc = share_member(broker.bootstrap(), "explicit", true, 10);
  auto first = sc->poll(std::chrono::seconds(5));
  REQUIRE(first.has_value());
  REQUIRE(first->size() == 5);
  const auto& recs = first->records();
  REQUIRE(sc->acknowledge(recs[0], acknowledge_type::release).has_value());
  REQUIRE(sc->acknowledge(recs[1], acknowledge_type::reject).has_value());
  for (std::size_t k = 2; k < 5; ++k) REQUIRE(sc->acknowledge(recs[k], acknowledge_type::accept).has_value());
  // Not twice, and not a record that is not the last poll's.
  auto twice = sc->acknowledge(recs[2], acknowledge_type::accept);
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().code == errc::invalid_argument);
  REQUIRE(sc->commit_sync().has_value());
  auto again = sc->poll(std::chrono::seconds(5));
  REQUIRE(again.has_value());
  REQUIRE(again->size() == 1);
  CHECK(again->records()[0].offset == 0);
  CHECK(again->records()[0].delivery_count == 2);
  REQUIRE(sc->acknowledge(again->records()[0], acknowledge_type::accept).has_value());
  REQUIRE(sc->commit_sync().has_value());
  auto none = sc->poll(std::chrono::milliseconds(300));
  REQUIRE(none.has_value());
  CHECK(none->empty());  // 1 was rejected: never again
  CHECK(sc->take_acknowledgement_errors().empty());

  // Implicit mode refuses acknowledge(); an unknown group answers its error.
  auto implicit = share_member(broker.bootstrap(), "implicit", false, 10);
  CHECK(implicit->acknowledge(recs[0], acknowledge_type::accept).error().code == errc::invalid_argument);
  share_consumer_config c;
  c.bootstrap = broker.bootstrap();
  auto no_group = share_consumer::connect(c);
  REQUIRE_FALSE(no_group.has_value());
  CHECK(no_group.error().code == errc::invalid_argument);
}

TEST_CASE("share fetch: an acknowledged record is never delivered again after a broker kill -9") {
  temp_dir dir;
  std::string a;
  std::set<std::int64_t> accepted;
  {
    broker_process broker(dir / "data");
    create_topic(broker.bootstrap(), "jobs", 1);
    for (int i = 0; i < 10; ++i) produce_records(broker.port(), "jobs", 20);  // offsets 0..199
    a = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"}).member_id;
    REQUIRE(!a.empty());
    // Accept every other record with the next fetch, leave the rest
    // acquired; each fetch's acknowledgements are durable before it is
    // answered, so all of them before the kill -9.
    std::vector<ack> acks;
    for (int round = 0; round < 10; ++round) {
      auto f = share_fetch(broker.port(), "q", a, "jobs", 20, acks);
      REQUIRE(f.ack_error == wire::ErrorCode::NONE);
      acks.clear();
      for (auto o : f.offsets()) {
        if (o % 2 == 0) {
          acks.push_back({o, o, 1});
          accepted.insert(o);
        }
      }
    }
    // The last acknowledgements ride on a fetch too (nothing is left to acquire).
    auto last = share_fetch(broker.port(), "q", a, "jobs", 20, acks);
    CHECK(last.ack_error == wire::ErrorCode::NONE);
    CHECK(last.acquired.empty());
    broker.kill9();
  }
  REQUIRE(accepted.size() == 100);
  broker_process broker(dir / "data");
  std::set<std::int64_t> again;
  for (int round = 0; round < 20; ++round) {
    auto f = share_fetch(broker.port(), "q", a, "jobs", 50);
    REQUIRE_MESSAGE(f.error == wire::ErrorCode::NONE, f.message);
    auto got = f.offsets();
    if (got.empty()) break;
    again.insert(got.begin(), got.end());
  }
  // Exactly the records never accepted come back: the odd offsets.
  std::set<std::int64_t> odd;
  for (std::int64_t o = 1; o < 200; o += 2) odd.insert(o);
  CHECK(again == odd);
  for (auto o : again) CHECK_MESSAGE(!accepted.contains(o), "accepted offset ", o, " delivered again");
}

TEST_CASE("share group DLQ: rejected and exhausted records are copied once with their headers, even across a kill -9 before the copy") {
  temp_dir dir;
  std::string a;
  {
    broker_process broker(dir / "data");
    create_topic(broker.bootstrap(), "jobs", 1);
    produce_records(broker.port(), "jobs", 5);  // offsets 0..4
    auto adm = connect_admin(broker.bootstrap());
    // A DLQ topic without a message-id window: the broker refuses to copy
    // into it (a copy written twice would stay twice), so the archived
    // records wait, durably, for a copy.
    REQUIRE(adm->create_topic("jobs.dlq", 1, 1).has_value());

    // Group configs: the error paths first, each its code.
    auto unknown = adm->alter_group_configs("q", {{"share.no.such.key", "1"}});
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().code == errc::invalid_config);
    auto bad = adm->alter_group_configs("q", {{"share.delivery.attempts.max", "0"}});
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == errc::invalid_config);
    REQUIRE(consumer_join(broker.port(), "plain") == wire::ErrorCode::NONE);
    auto consumer_group = adm->alter_group_configs("plain", {{"share.dlq.topic", "jobs.dlq"}});
    REQUIRE_FALSE(consumer_group.has_value());
    CHECK(consumer_group.error().code == errc::inconsistent_group_type);
    CHECK(adm->describe_group_configs("nobody").error().code == errc::group_id_not_found);

    REQUIRE(adm->alter_group_configs("q", {{"share.dlq.topic", "jobs.dlq"}, {"share.delivery.attempts.max", "2"}}).has_value());
    auto cfg = adm->describe_group_configs("q");
    REQUIRE(cfg.has_value());
    CHECK(cfg->at("share.dlq.topic").value == "jobs.dlq");
    CHECK_FALSE(cfg->at("share.dlq.topic").is_default);
    CHECK(cfg->at("share.delivery.attempts.max").value == "2");
    CHECK(cfg->at("share.record.lock.duration.ms").is_default);

    a = share_heartbeat(broker.port(), "q", "", 0, std::vector<std::string>{"jobs"}).member_id;
    REQUIRE(!a.empty());
    auto f = share_fetch(broker.port(), "q", a, "jobs", 10);
    REQUIRE(f.offsets() == range_of(0, 4));
    // 0 rejected, 1 released (its first delivery), the rest accepted.
    auto g = share_fetch(broker.port(), "q", a, "jobs", 10, {{0, 0, 3}, {1, 1, 2}, {2, 4, 1}});
    REQUIRE(g.ack_error == wire::ErrorCode::NONE);
    REQUIRE(g.offsets() == std::set<std::int64_t>{1});
    // Released again at its second delivery: the attempt limit archives it.
    auto h = share_fetch(broker.port(), "q", a, "jobs", 10, {{1, 1, 2}});
    REQUIRE(h.ack_error == wire::ErrorCode::NONE);
    CHECK(h.acquired.empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(read_topic(broker.bootstrap(), "jobs.dlq").empty());  // refused: no window
    broker.kill9();
  }
  broker_process broker(dir / "data");
  auto adm = connect_admin(broker.bootstrap());
  REQUIRE(adm->alter_configs("jobs.dlq", {{"dedup.window.ms", "600000"}}).has_value());
  // The share partition loads on its first fetch; what waited is copied then.
  auto f = share_fetch(broker.port(), "q", a, "jobs", 10);
  CHECK(f.acquired.empty());
  std::vector<stored_record> dlq;
  CHECK(eventually([&] {
    dlq = read_topic(broker.bootstrap(), "jobs.dlq");
    return dlq.size() >= 2;
  }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  dlq = read_topic(broker.bootstrap(), "jobs.dlq");
  REQUIRE(dlq.size() == 2);  // exactly one copy each
  std::map<std::string, const stored_record*> by_offset;
  for (const auto& r : dlq) by_offset[r.headers.at("runnel.dlq.offset")] = &r;
  REQUIRE(by_offset.size() == 2);
  const auto& rejected = *by_offset.at("0");
  const auto& exhausted = *by_offset.at("1");
  for (const auto* r : {&rejected, &exhausted}) {
    CHECK(r->headers.at("runnel.dlq.topic") == "jobs");
    CHECK(r->headers.at("runnel.dlq.partition") == "0");
    CHECK(r->headers.at("runnel.dlq.group") == "q");
    CHECK(r->headers.at("runnel.msg.id") == "q/jobs/0/" + r->headers.at("runnel.dlq.offset"));
  }
  CHECK(rejected.headers.at("runnel.dlq.attempts") == "1");
  CHECK(rejected.headers.at("runnel.dlq.error").find("rejected") != std::string::npos);
  CHECK(exhausted.headers.at("runnel.dlq.attempts") == "2");
  CHECK(exhausted.headers.at("runnel.dlq.error").find("not accepted in 2") != std::string::npos);

  // Recorded as copied: after another kill -9 nothing is copied twice
  // (and were it written again, the window would drop it).
  broker.kill9();
  broker_process again(dir / "data");
  auto f2 = share_fetch(again.port(), "q", a, "jobs", 10);
  CHECK(f2.acquired.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(read_topic(again.bootstrap(), "jobs.dlq").size() == 2);
}

namespace {

command_result ctl(const std::string& bootstrap, const std::vector<std::string>& args, const std::string& input = {}) {
  std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", bootstrap};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, input, 60);
}

}  // namespace

TEST_CASE("runnelctl queue: create, send, receive with each acknowledgement, and the DLQ it names") {
  temp_dir dir;
  broker_process broker(dir / "data");
  const auto& b = broker.bootstrap();
  auto made = ctl(b, {"queue", "create", "tasks", "--partitions", "1", "--dlq", "tasks.dlq", "--max-attempts", "2"});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  auto adm = connect_admin(b);
  CHECK(adm->describe_group_configs("tasks")->at("share.dlq.topic").value == "tasks.dlq");
  auto sent = ctl(b, {"queue", "send", "tasks"}, "one\ntwo\nthree\n");
  REQUIRE_MESSAGE(sent.exit_code == 0, sent.err);
  auto first = ctl(b, {"queue", "receive", "tasks", "--ack", "accept"});
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  CHECK(first.out == "one\n");
  auto rejected = ctl(b, {"queue", "receive", "tasks", "--ack", "reject"});
  CHECK(rejected.out == "two\n");
  auto released = ctl(b, {"queue", "receive", "tasks", "--ack", "release", "--json"});
  CHECK(released.out.find("\"offset\":2,\"delivery_count\":1,\"value\":\"three\"") != std::string::npos);
  auto again = ctl(b, {"queue", "receive", "tasks", "--ack", "release", "--json"});
  CHECK(again.out.find("\"delivery_count\":2,\"value\":\"three\"") != std::string::npos);
  // Nothing is left: one accepted, two archived and copied to the DLQ.
  auto empty = ctl(b, {"queue", "receive", "tasks", "--wait-ms", "500", "--max-messages", "5"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.empty());
  std::vector<stored_record> dlq;
  CHECK(eventually([&] {
    dlq = read_topic(b, "tasks.dlq");
    return dlq.size() >= 2;
  }, std::chrono::seconds(20)));
  std::set<std::string> values;
  for (const auto& r : dlq) values.insert(r.value);
  CHECK(values == std::set<std::string>{"two", "three"});

  // Bad input: one line on stderr and a non-zero exit each.
  auto bad_ack = ctl(b, {"queue", "receive", "tasks", "--ack", "maybe"});
  CHECK(bad_ack.exit_code == 2);
  CHECK(bad_ack.err.find("--ack must be") != std::string::npos);
  auto bad_attempts = ctl(b, {"queue", "create", "other", "--partitions", "1", "--max-attempts", "0"});
  CHECK(bad_attempts.exit_code == 1);
  CHECK(bad_attempts.err.find("share.delivery.attempts.max") != std::string::npos);
  CHECK_FALSE(adm->describe_topic("other").has_value());  // a refused setting leaves no topic
  auto no_partitions = ctl(b, {"queue", "create", "x"});
  CHECK(no_partitions.exit_code == 2);
  auto unknown = ctl(b, {"queue", "receive", "no-such-queue", "--wait-ms", "200"});
  CHECK(unknown.exit_code != 0);
}

TEST_CASE("runnelctl group describe: a share group's partitions with their start, end and record counts, from the leader") {
  temp_dir dir;
  broker_process broker(dir / "data");
  const auto& b = broker.bootstrap();
  create_topic(b, "jobs", 2);
  produce_records(broker.port(), "jobs", 10);  // partition 0, offsets 0..9
  const std::string a = share_heartbeat(broker.port(), "crew", "", 0, std::vector<std::string>{"jobs"}).member_id;
  REQUIRE(!a.empty());
  REQUIRE(share_fetch(broker.port(), "crew", a, "jobs", 10).offsets() == range_of(0, 9));
  // 0..2 accepted, 5 rejected: the start moves to 3, and 3, 4, 6..9 stay acquired.
  auto acked = share_fetch(broker.port(), "crew", a, "jobs", 10, {{0, 2, 1}, {5, 5, 3}});
  REQUIRE(acked.ack_error == wire::ErrorCode::NONE);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the oldest lock is older than 0 ms

  auto json = ctl(b, {"group", "describe", "crew", "--json"});
  REQUIRE_MESSAGE(json.exit_code == 0, json.err);
  CHECK(json.out.find("\"type\":\"share\"") != std::string::npos);
  CHECK(json.out.find("\"member_id\":\"" + a + "\"") != std::string::npos);
  const std::string p0 = R"({"topic":"jobs","partition":0,"start_offset":3,"end_offset":10,"available":0,"acquired":6,)"
                         R"("acknowledged":0,"archived":1,"oldest_lock_age_ms":)";
  const auto at = json.out.find(p0);
  REQUIRE_MESSAGE(at != std::string::npos, json.out);
  CHECK(std::stoll(json.out.substr(at + p0.size())) > 0);
  // Partition 1 never had a record: loaded for the answer, empty.
  CHECK(json.out.find(R"({"topic":"jobs","partition":1,"start_offset":0,"end_offset":0,"available":0,"acquired":0,)"
                      R"("acknowledged":0,"archived":0,"oldest_lock_age_ms":0})") != std::string::npos);
  CHECK(json.out.find("total_lag") == std::string::npos);

  auto text = ctl(b, {"group", "describe", "crew"});
  REQUIRE_MESSAGE(text.exit_code == 0, text.err);
  CHECK(text.out.find("type: share") != std::string::npos);
  CHECK(text.out.find("OLDEST-LOCK-MS") != std::string::npos);

  // A consumer group keeps its lag table; an unknown group is one error line.
  REQUIRE(consumer_join(broker.port(), "plain") == wire::ErrorCode::NONE);
  auto plain = ctl(b, {"group", "describe", "plain", "--json"});
  REQUIRE_MESSAGE(plain.exit_code == 0, plain.err);
  CHECK(plain.out.find("\"type\":\"consumer\"") != std::string::npos);
  CHECK(plain.out.find("total_lag") != std::string::npos);
  auto unknown = ctl(b, {"group", "describe", "nobody"});
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.err.find("nobody") != std::string::npos);
}

namespace {

// DescribeSharePartitions over the wire: per asked partition, its error.
std::vector<std::pair<std::int32_t, wire::ErrorCode>> describe_shares(std::uint16_t port, const std::string& group,
                                                                      const std::string& topic,
                                                                      const std::vector<std::int32_t>& partitions) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::TopicPartitions>> list{
      wire::CreateTopicPartitionsDirect(fbb, topic.c_str(), &partitions)};
  auto body = wire::CreateDescribeSharePartitionsRequestDirect(fbb, group.c_str(), &list);
  raw_client rc(port);
  rc.send(request_frame(fbb, wire::Request::DescribeSharePartitionsRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_DescribeSharePartitionsResponse();
  REQUIRE(resp != nullptr);
  REQUIRE(resp->partitions() != nullptr);
  std::vector<std::pair<std::int32_t, wire::ErrorCode>> out;
  for (const auto* p : *resp->partitions()) out.emplace_back(p->partition(), p->error());
  return out;
}

}  // namespace

TEST_CASE("DescribeSharePartitions: unknown topics and partitions, a consumer group's id and an unknown group are errors per partition") {
  temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "jobs", 2);
  produce_records(broker.port(), "jobs", 3);
  const std::string a = share_heartbeat(broker.port(), "crew", "", 0, std::vector<std::string>{"jobs"}).member_id;
  REQUIRE(!a.empty());
  REQUIRE(consumer_join(broker.port(), "plain") == wire::ErrorCode::NONE);

  using pe = std::pair<std::int32_t, wire::ErrorCode>;
  CHECK(describe_shares(broker.port(), "crew", "jobs", {0, 7, -1}) ==
        std::vector<pe>{{0, wire::ErrorCode::NONE},
                        {7, wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION},
                        {-1, wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION}});
  CHECK(describe_shares(broker.port(), "crew", "nope", {0}) ==
        std::vector<pe>{{0, wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION}});
  const auto consumer = describe_shares(broker.port(), "plain", "jobs", {0});
  REQUIRE(consumer.size() == 1);
  CHECK(consumer[0].second == wire::ErrorCode::INCONSISTENT_GROUP_TYPE);
  const auto unknown = describe_shares(broker.port(), "nobody", "jobs", {0});
  REQUIRE(unknown.size() == 1);
  CHECK(unknown[0].second == wire::ErrorCode::GROUP_ID_NOT_FOUND);
  // Asking made nothing: the broker still hands the share group its records.
  CHECK(share_fetch(broker.port(), "crew", a, "jobs", 10).offsets() == range_of(0, 2));
}
