#include "client/src/group_requests.h"

#include <algorithm>
#include <thread>

namespace runnel::client {

bool coordinator_moved(std::error_code ec) {
  return ec == errc::not_coordinator || ec == errc::coordinator_not_available || ec == errc::coordinator_load_in_progress ||
         ec == errc::disconnected || ec == errc::connection_failed || ec == errc::broker_shutting_down;
}

result<coordinator_node> find_coordinator_node(connection_pool& pool, const std::string& group) {
  auto w = pool.any();
  if (!w) return std::unexpected(w.error());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::string> keys{group};
  auto body = wire::CreateFindCoordinatorRequest(fbb, fbb.CreateVectorOfStrings(keys));
  auto r = (*w)->call_sync(std::move(fbb), wire::Request::FindCoordinatorRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_FindCoordinatorResponse();
  if (resp == nullptr || resp->coordinators() == nullptr || resp->coordinators()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "FindCoordinator"});
  }
  const auto* c = resp->coordinators()->Get(0);
  if (c->error() != wire::ErrorCode::NONE) return std::unexpected(make_error(c->error(), c->message()));
  if (c->host() == nullptr || c->port() <= 0 || c->port() > 65535) {
    return std::unexpected(error{errc::bad_response, "FindCoordinator without an address"});
  }
  return coordinator_node{c->node_id(), host_port{c->host()->str(), static_cast<std::uint16_t>(c->port())}};
}

result<host_port> find_coordinator(connection_pool& pool, const std::string& group) {
  auto c = find_coordinator_node(pool, group);
  if (!c) return std::unexpected(c.error());
  return std::move(c->address);
}

result<response> call_coordinator(connection_pool& pool, const std::string& group, const request_builder& build,
                                  const group_error_of& error_of) {
  const auto deadline = std::chrono::steady_clock::now() + pool.timeout();
  auto backoff = std::chrono::milliseconds(20);
  while (true) {
    error last;
    auto cached = pool.coordinator_of(group);
    auto where = cached ? result<host_port>(*cached) : find_coordinator(pool, group);
    if (where) {
      if (!cached) pool.set_coordinator(group, *where);
      flatbuffers::FlatBufferBuilder fbb;
      auto [body, type] = build(fbb);
      auto r = pool.at(*where).call_sync(std::move(fbb), type, body);
      if (r) {
        auto e = error_of(*r);
        if (!e || !coordinator_moved(e->code)) return r;
        last = *e;
      } else {
        last = r.error();
      }
      pool.set_coordinator(group, std::nullopt);  // it moved: look it up again
    } else {
      last = where.error();
    }
    if (!coordinator_moved(last.code)) return std::unexpected(last);
    if (std::chrono::steady_clock::now() + backoff >= deadline) return std::unexpected(last);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

result<std::map<topic_partition_ref, offset_and_metadata>> fetch_committed(connection_pool& pool, const std::string& group,
                                                                           const std::vector<topic_partition_ref>& partitions) {
  auto r = call_coordinator(
      pool, group,
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        std::map<std::string, std::vector<std::int32_t>> by_topic;
        for (const auto& tp : partitions) by_topic[tp.topic].push_back(tp.partition);
        std::vector<flatbuffers::Offset<wire::TopicPartitions>> topics;
        for (const auto& [t, ps] : by_topic) topics.push_back(wire::CreateTopicPartitionsDirect(fbb, t.c_str(), &ps));
        auto body = wire::CreateOffsetFetchRequestDirect(fbb, group.c_str(), partitions.empty() ? nullptr : &topics);
        return std::pair{body.Union(), wire::Request::OffsetFetchRequest};
      },
      [](const response& resp) -> std::optional<error> {
        const auto* b = resp.envelope->body_as_OffsetFetchResponse();
        if (b == nullptr || b->error() == wire::ErrorCode::NONE) return std::nullopt;
        return make_error(b->error(), b->message());
      });
  if (!r) return std::unexpected(r.error());
  const auto* b = r->envelope->body_as_OffsetFetchResponse();
  if (b == nullptr) return std::unexpected(error{errc::bad_response, "OffsetFetch"});
  if (b->error() != wire::ErrorCode::NONE) return std::unexpected(make_error(b->error(), b->message()));
  std::map<topic_partition_ref, offset_and_metadata> out;
  if (b->topics() == nullptr) return out;
  for (const auto* t : *b->topics()) {
    if (t->name() == nullptr || t->partitions() == nullptr) continue;
    for (const auto* p : *t->partitions()) {
      if (p->error() != wire::ErrorCode::NONE) return std::unexpected(make_error(p->error(), nullptr));
      if (p->offset() < 0) continue;
      out[topic_partition_ref{t->name()->str(), p->partition()}] = offset_and_metadata{
          p->offset(), p->metadata() != nullptr ? p->metadata()->str() : std::string(), p->commit_timestamp_ms(),
          p->leader_epoch()};
    }
  }
  return out;
}

std::pair<flatbuffers::Offset<void>, wire::Request> build_commit_request(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& group, const std::string& member_id, std::int32_t member_epoch,
    const std::map<topic_partition_ref, offset_and_metadata>& offsets) {
  std::vector<flatbuffers::Offset<wire::OffsetCommitTopic>> topics;
  auto it = offsets.begin();
  while (it != offsets.end()) {
    const std::string& topic = it->first.topic;
    std::vector<flatbuffers::Offset<wire::OffsetCommitPartition>> parts;
    for (; it != offsets.end() && it->first.topic == topic; ++it) {
      parts.push_back(wire::CreateOffsetCommitPartitionDirect(fbb, it->first.partition, it->second.offset,
                                                              it->second.leader_epoch,
                                                              it->second.metadata.empty() ? nullptr : it->second.metadata.c_str()));
    }
    topics.push_back(wire::CreateOffsetCommitTopicDirect(fbb, topic.c_str(), &parts));
  }
  auto body = wire::CreateOffsetCommitRequestDirect(fbb, group.c_str(), member_id.empty() ? nullptr : member_id.c_str(),
                                                    member_epoch, &topics);
  return {body.Union(), wire::Request::OffsetCommitRequest};
}

std::optional<error> commit_moved_error(const response& resp) {
  const auto* b = resp.envelope->body_as_OffsetCommitResponse();
  if (b == nullptr) return std::nullopt;
  if (b->error() != wire::ErrorCode::NONE) return make_error(b->error(), b->message());
  // The coordinator moved under the commit: every partition says so.
  if (b->topics() != nullptr) {
    for (const auto* t : *b->topics()) {
      if (t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        auto e = make_error(p->error(), p->message());
        if (p->error() != wire::ErrorCode::NONE && coordinator_moved(e.code)) return e;
      }
    }
  }
  return std::nullopt;
}

result<std::map<topic_partition_ref, std::optional<error>>> parse_commit_response(const response& resp) {
  const auto* b = resp.envelope->body_as_OffsetCommitResponse();
  if (b == nullptr) return std::unexpected(error{errc::bad_response, "OffsetCommit"});
  if (b->error() != wire::ErrorCode::NONE) return std::unexpected(make_error(b->error(), b->message()));
  std::map<topic_partition_ref, std::optional<error>> out;
  if (b->topics() != nullptr) {
    for (const auto* t : *b->topics()) {
      if (t->name() == nullptr || t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        std::optional<error> e;
        if (p->error() != wire::ErrorCode::NONE) e = make_error(p->error(), p->message());
        out[topic_partition_ref{t->name()->str(), p->partition()}] = std::move(e);
      }
    }
  }
  return out;
}

result<std::map<topic_partition_ref, std::optional<error>>> commit_offsets(
    connection_pool& pool, const std::string& group, const std::string& member_id, std::int32_t member_epoch,
    const std::map<topic_partition_ref, offset_and_metadata>& offsets) {
  auto r = call_coordinator(
      pool, group,
      [&](flatbuffers::FlatBufferBuilder& fbb) { return build_commit_request(fbb, group, member_id, member_epoch, offsets); },
      commit_moved_error);
  if (!r) return std::unexpected(r.error());
  return parse_commit_response(*r);
}

}  // namespace runnel::client
