#include "tests/support/heartbeat_member.h"

#include <chrono>
#include <thread>

#include "schemas/assert.h"

namespace runnel::testing {

heartbeat_member::heartbeat_member(std::uint16_t port, std::string group,
                                   std::vector<std::string> topics, std::int32_t session_timeout_ms)
    : conn_(port),
      group_(std::move(group)),
      topics_(std::move(topics)),
      session_timeout_ms_(session_timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // Errors while the offsets topic is created and loaded are retried.
  while (!heartbeat(epoch_) || assignment_.empty()) {
    RUNNEL_ASSERT(std::chrono::steady_clock::now() < deadline,
                  "group {}: no assignment within 30 s", group_);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

heartbeat_member::~heartbeat_member() {
  heartbeat(-1);
}

bool heartbeat_member::heartbeat(std::int32_t epoch) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  for (const auto& t : topics_) names.push_back(fbb.CreateString(t));
  std::vector<flatbuffers::Offset<wire::TopicPartitions>> owned;
  std::size_t i = 0;
  while (i < assignment_.size()) {
    const std::string& topic = assignment_[i].topic;
    std::vector<std::int32_t> ps;
    for (; i < assignment_.size() && assignment_[i].topic == topic; ++i)
      ps.push_back(assignment_[i].partition);
    owned.push_back(wire::CreateTopicPartitionsDirect(fbb, topic.c_str(), &ps));
  }
  auto body = wire::CreateConsumerGroupHeartbeatRequest(
      fbb, fbb.CreateString(group_), id_.empty() ? 0 : fbb.CreateString(id_), epoch, 0, 0, -1,
      session_timeout_ms_, fbb.CreateVector(names), 0, 0, fbb.CreateVector(owned));
  auto frame = request_frame(fbb, wire::Request::ConsumerGroupHeartbeatRequest, body.Union(), {}, 1,
                             ++correlation_);
  conn_.send(frame);
  auto r = conn_.read();
  RUNNEL_ASSERT(r.has_value(), "group {}: no heartbeat response", group_);
  const auto* resp = r->envelope().body_as_ConsumerGroupHeartbeatResponse();
  RUNNEL_ASSERT(resp != nullptr, "group {}: not a heartbeat response", group_);
  if (resp->error() != wire::ErrorCode::NONE) return false;
  if (epoch < 0) return true;
  if (resp->member_id() != nullptr) id_ = resp->member_id()->str();
  epoch_ = resp->member_epoch();
  if (resp->assignment() != nullptr) {
    assignment_.clear();
    for (const auto* t : *resp->assignment()) {
      if (t->partitions() == nullptr) continue;
      for (auto p : *t->partitions()) assignment_.push_back({t->topic()->str(), p});
    }
  }
  return true;
}

}  // namespace runnel::testing
