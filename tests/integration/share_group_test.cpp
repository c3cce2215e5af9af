// Share group membership against a real broker (ADR 0016; the rest of share
// groups is being built, issue 13): what ShareGroupHeartbeat answers, that
// a group id is of one type, and that the group outlives a restart.

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "runnel/admin.h"
#include "tests/support/broker_process.h"
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
