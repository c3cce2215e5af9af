#include "client/src/requests.h"

#include <algorithm>
#include <thread>

namespace runnel::client {

result<const wire::ListOffsetsPartitionResponse*> list_offsets_one(wire_client& w, const std::string& topic,
                                                                   std::int32_t partition, std::int64_t timestamp,
                                                                   response& keep) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::ListOffsetsPartition>> parts{wire::CreateListOffsetsPartition(fbb, partition, timestamp)};
  std::vector<flatbuffers::Offset<wire::ListOffsetsTopic>> topics{wire::CreateListOffsetsTopicDirect(fbb, topic.c_str(), &parts)};
  auto body = wire::CreateListOffsetsRequestDirect(fbb, &topics);
  auto r = w.call_sync(std::move(fbb), wire::Request::ListOffsetsRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  keep = std::move(*r);
  const auto* resp = keep.envelope->body_as_ListOffsetsResponse();
  if (resp == nullptr || resp->topics() == nullptr || resp->topics()->size() != 1 ||
      resp->topics()->Get(0)->partitions() == nullptr || resp->topics()->Get(0)->partitions()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "ListOffsets"});
  }
  const auto* p = resp->topics()->Get(0)->partitions()->Get(0);
  if (p->error() != wire::ErrorCode::NONE) {
    auto e = make_error(p->error(), nullptr);
    e.message = topic + "/" + std::to_string(partition);
    return std::unexpected(e);
  }
  return p;
}

}  // namespace runnel::client

namespace runnel::client {

result<const wire::ListOffsetsPartitionResponse*> list_offsets_at_leader(connection_pool& pool, metadata_cache& meta,
                                                                         const std::string& topic, std::int32_t partition,
                                                                         std::int64_t timestamp, response& keep) {
  const auto deadline = std::chrono::steady_clock::now() + pool.timeout();
  auto backoff = std::chrono::milliseconds(50);
  while (true) {
    auto route = meta.leader(topic, partition);
    // No such topic, or no broker answers Metadata: final. No leader yet: wait for one.
    if (!route && route.error().code != errc::not_leader) return std::unexpected(route.error());
    error last = route ? error{} : route.error();
    if (route) {
      auto r = list_offsets_one(pool.at(route->address), topic, partition, timestamp, keep);
      if (r || !leader_may_have_moved(r.error().code)) return r;
      last = r.error();
    }
    if (std::chrono::steady_clock::now() + backoff >= deadline) return std::unexpected(last);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1'000));
    if (auto m = meta.refresh({topic}); !m) return std::unexpected(m.error());  // no broker answers
  }
}

result<std::pair<std::int64_t, std::int16_t>> init_producer_id(wire_client& w) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateInitProducerIdRequest(fbb);
  auto r = w.call_sync(std::move(fbb), wire::Request::InitProducerIdRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_InitProducerIdResponse();
  if (resp == nullptr) return std::unexpected(error{errc::bad_response, "InitProducerId"});
  if (resp->error() != wire::ErrorCode::NONE) return std::unexpected(make_error(resp->error(), resp->message()));
  if (resp->producer_id() < 0 || resp->producer_epoch() < 0) {
    return std::unexpected(error{errc::bad_response, "InitProducerId without a producer id"});
  }
  return std::pair{resp->producer_id(), resp->producer_epoch()};
}

}  // namespace runnel::client
