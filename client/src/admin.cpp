#include "runnel/admin.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "client/src/connection_pool.h"
#include "client/src/group_requests.h"
#include "client/src/metadata_cache.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"
#include "runnel/consumer.h"

namespace runnel {

// Topic and config requests go to any broker; ListOffsets to the leader.
struct admin::impl {
  admin_config cfg;  // group_lag's consumer connects with it
  std::unique_ptr<client::metadata_cache> meta;
  // Declared last, destroyed first: its I/O thread ends while `meta` exists.
  std::unique_ptr<client::connection_pool> pool;

  result<client::response> call(flatbuffers::FlatBufferBuilder fbb, wire::Request type, flatbuffers::Offset<void> body) {
    auto w = pool->any();
    if (!w) return std::unexpected(w.error());
    return (*w)->call_sync(std::move(fbb), type, body);
  }
};

namespace {

std::optional<error> result_error(const wire::TopicResult* r) {
  if (r == nullptr) return error{errc::bad_response, "missing topic result"};
  if (r->error() == wire::ErrorCode::NONE) return std::nullopt;
  return client::make_error(r->error(), r->message());
}

}  // namespace

admin::admin(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
admin::~admin() = default;

result<std::unique_ptr<admin>> admin::connect(admin_config cfg) {
  auto bootstrap = client::resolve_bootstrap(cfg.bootstrap, cfg.timeout);
  if (!bootstrap) return std::unexpected(bootstrap.error());
  auto i = std::make_unique<impl>();
  i->cfg = cfg;
  i->pool = std::make_unique<client::connection_pool>(std::move(*bootstrap), cfg.client_id, cfg.timeout);
  i->meta = std::make_unique<client::metadata_cache>(*i->pool);
  if (auto r = i->pool->any(); !r) return std::unexpected(r.error());
  return std::unique_ptr<admin>(new admin(std::move(i)));
}

result<void> admin::create_topic(const std::string& name, std::int32_t partitions, std::int16_t replication_factor,
                                 const std::map<std::string, std::string>& configs) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::ConfigEntry>> entries;
  for (const auto& [k, v] : configs) entries.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str()));
  std::vector<flatbuffers::Offset<wire::CreatableTopic>> topics{
      wire::CreateCreatableTopicDirect(fbb, name.c_str(), partitions, replication_factor, &entries)};
  auto body = wire::CreateCreateTopicsRequestDirect(fbb, &topics);
  auto r = impl_->call(std::move(fbb), wire::Request::CreateTopicsRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_CreateTopicsResponse();
  if (resp == nullptr || resp->results() == nullptr || resp->results()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "CreateTopics"});
  }
  if (auto e = result_error(resp->results()->Get(0))) return std::unexpected(*e);
  return {};
}

result<void> admin::delete_topic(const std::string& name) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::string> names{name};
  auto body = wire::CreateDeleteTopicsRequest(fbb, fbb.CreateVectorOfStrings(names));
  auto r = impl_->call(std::move(fbb), wire::Request::DeleteTopicsRequest, body.Union());
  impl_->meta->forget(name);
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_DeleteTopicsResponse();
  if (resp == nullptr || resp->results() == nullptr || resp->results()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "DeleteTopics"});
  }
  if (auto e = result_error(resp->results()->Get(0))) return std::unexpected(*e);
  return {};
}

namespace {

result<client::response> metadata(admin::impl& i, const std::vector<std::string>* names) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> topics;
  if (names != nullptr) topics = fbb.CreateVectorOfStrings(*names);
  auto body = wire::CreateMetadataRequest(fbb, topics);
  auto r = i.call(std::move(fbb), wire::Request::MetadataRequest, body.Union());
  if (r && r->envelope->body_as_MetadataResponse() == nullptr) {
    return std::unexpected(error{errc::bad_response, "Metadata"});
  }
  return r;
}

topic_info to_info(const wire::TopicMetadata& t) {
  topic_info info;
  info.name = t.name() != nullptr ? t.name()->str() : "";
  if (t.partitions() != nullptr) {
    for (const auto* p : *t.partitions()) {
      partition_info pi;
      pi.partition = p->partition();
      pi.leader = p->leader();
      pi.leader_epoch = p->leader_epoch();
      if (p->replicas() != nullptr) pi.replicas.assign(p->replicas()->begin(), p->replicas()->end());
      if (p->isr() != nullptr) pi.isr.assign(p->isr()->begin(), p->isr()->end());
      info.partitions.push_back(std::move(pi));
    }
  }
  return info;
}

}  // namespace

result<std::vector<topic_info>> admin::list_topics() {
  auto r = metadata(*impl_, nullptr);
  if (!r) return std::unexpected(r.error());
  std::vector<topic_info> out;
  const auto* m = r->envelope->body_as_MetadataResponse();
  if (m->topics() != nullptr) {
    for (const auto* t : *m->topics()) out.push_back(to_info(*t));
  }
  return out;
}

result<topic_info> admin::describe_topic(const std::string& name) {
  std::vector<std::string> names{name};
  auto r = metadata(*impl_, &names);
  if (!r) return std::unexpected(r.error());
  const auto* m = r->envelope->body_as_MetadataResponse();
  if (m->topics() == nullptr || m->topics()->size() != 1) return std::unexpected(error{errc::bad_response, "Metadata"});
  const auto* t = m->topics()->Get(0);
  if (t->error() != wire::ErrorCode::NONE) {
    auto e = client::make_error(t->error(), nullptr);
    e.message = "topic " + name;
    return std::unexpected(e);
  }
  return to_info(*t);
}

result<cluster_info> admin::describe_cluster() {
  std::vector<std::string> none;
  auto r = metadata(*impl_, &none);
  if (!r) return std::unexpected(r.error());
  const auto* m = r->envelope->body_as_MetadataResponse();
  cluster_info c;
  c.mode = m->mode() != nullptr ? m->mode()->str() : "";
  c.controller = m->controller_id();
  if (m->brokers() != nullptr) {
    for (const auto* b : *m->brokers()) {
      c.brokers.push_back({b->id(), b->host() != nullptr ? b->host()->str() : "", b->port(),
                           b->rack() != nullptr ? b->rack()->str() : ""});
    }
  }
  return c;
}

namespace {

// A topic's request goes to any broker; a share group's to its coordinator
// (found again while it moves). `error_of`: the one item's error in the answer.
result<client::response> call_for(admin::impl& a, const std::string& name, bool group, const client::request_builder& build,
                                  const client::group_error_of& error_of) {
  if (group) return client::call_coordinator(*a.pool, name, build, error_of);
  flatbuffers::FlatBufferBuilder fbb;
  auto [body, type] = build(fbb);
  return a.call(std::move(fbb), type, body);
}

// DescribeConfigs of one topic or (group) one share group.
result<std::map<std::string, config_value>> describe_one(admin::impl& a, const std::string& name, bool group) {
  auto results_of = [group](const client::response& r) {
    const auto* resp = r.envelope->body_as_DescribeConfigsResponse();
    return resp == nullptr ? nullptr : group ? resp->groups() : resp->results();
  };
  auto r = call_for(
      a, name, group,
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        std::vector<std::string> names{name};
        auto list = fbb.CreateVectorOfStrings(names);
        auto body = group ? wire::CreateDescribeConfigsRequest(fbb, 0, list) : wire::CreateDescribeConfigsRequest(fbb, list);
        return std::pair{body.Union(), wire::Request::DescribeConfigsRequest};
      },
      [&](const client::response& resp) -> std::optional<error> {
        const auto* results = results_of(resp);
        if (results == nullptr || results->size() != 1 || results->Get(0)->error() == wire::ErrorCode::NONE) return std::nullopt;
        return client::make_error(results->Get(0)->error(), results->Get(0)->message());
      });
  if (!r) return std::unexpected(r.error());
  const auto* results = results_of(*r);
  if (results == nullptr || results->size() != 1) return std::unexpected(error{errc::bad_response, "DescribeConfigs"});
  const auto* t = results->Get(0);
  if (t->error() != wire::ErrorCode::NONE) return std::unexpected(client::make_error(t->error(), t->message()));
  std::map<std::string, config_value> out;
  if (t->configs() != nullptr) {
    for (const auto* c : *t->configs()) out[c->key()->str()] = config_value{c->value()->str(), c->is_default()};
  }
  return out;
}

// AlterConfigs of one topic or (group) one share group.
result<void> alter_one(admin::impl& a, const std::string& name, const std::map<std::string, std::string>& configs,
                       bool group) {
  auto results_of = [group](const client::response& r) {
    const auto* resp = r.envelope->body_as_AlterConfigsResponse();
    return resp == nullptr ? nullptr : group ? resp->groups() : resp->results();
  };
  auto r = call_for(
      a, name, group,
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        std::vector<flatbuffers::Offset<wire::ConfigEntry>> entries;
        for (const auto& [k, v] : configs) entries.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str()));
        std::vector<flatbuffers::Offset<wire::TopicConfigs>> items{
            wire::CreateTopicConfigsDirect(fbb, name.c_str(), wire::ErrorCode::NONE, nullptr, &entries)};
        auto list = fbb.CreateVector(items);
        auto body = group ? wire::CreateAlterConfigsRequest(fbb, 0, false, list) : wire::CreateAlterConfigsRequest(fbb, list);
        return std::pair{body.Union(), wire::Request::AlterConfigsRequest};
      },
      [&](const client::response& resp) -> std::optional<error> {
        const auto* results = results_of(resp);
        if (results == nullptr || results->size() != 1) return std::nullopt;
        return result_error(results->Get(0));
      });
  if (!r) return std::unexpected(r.error());
  const auto* results = results_of(*r);
  if (results == nullptr || results->size() != 1) return std::unexpected(error{errc::bad_response, "AlterConfigs"});
  if (auto e = result_error(results->Get(0))) return std::unexpected(*e);
  return {};
}

}  // namespace

result<std::map<std::string, config_value>> admin::describe_configs(const std::string& topic) {
  return describe_one(*impl_, topic, false);
}

result<void> admin::alter_configs(const std::string& topic, const std::map<std::string, std::string>& configs) {
  return alter_one(*impl_, topic, configs, false);
}

result<std::map<std::string, config_value>> admin::describe_group_configs(const std::string& group_id) {
  return describe_one(*impl_, group_id, true);
}

result<void> admin::alter_group_configs(const std::string& group_id, const std::map<std::string, std::string>& configs) {
  return alter_one(*impl_, group_id, configs, true);
}

result<std::int64_t> admin::list_offset(const std::string& topic, std::int32_t partition, std::int64_t timestamp) {
  client::response keep;
  auto p = client::list_offsets_at_leader(*impl_->pool, *impl_->meta, topic, partition, timestamp, keep);
  if (!p) return std::unexpected(p.error());
  return (*p)->offset();
}

result<std::int64_t> admin::partition_size(const std::string& topic, std::int32_t partition) {
  client::response keep;
  auto p = client::list_offsets_at_leader(*impl_->pool, *impl_->meta, topic, partition, latest_offset, keep);
  if (!p) return std::unexpected(p.error());
  return (*p)->log_size_bytes();
}

// --- Consumer groups ---------------------------------------------------------

namespace {

std::string str_of(const flatbuffers::String* s) { return s != nullptr ? s->str() : std::string(); }

std::vector<topic_partition_ref> refs_of(const flatbuffers::Vector<flatbuffers::Offset<wire::TopicPartitions>>* v) {
  std::vector<topic_partition_ref> out;
  if (v == nullptr) return out;
  for (const auto* t : *v) {
    if (t->partitions() == nullptr) continue;
    for (auto p : *t->partitions()) out.push_back({t->topic()->str(), p});
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string name_of(const topic_partition_ref& tp) { return tp.topic + "/" + std::to_string(tp.partition); }

// Timestamps of the first record at or after each partition's offset, read
// with a consumer; a partition that gave no record within the admin's
// timeout is left out.
result<std::map<topic_partition_ref, std::int64_t>> first_timestamps(const admin_config& acfg,
                                                                    const std::map<topic_partition_ref, std::int64_t>& at) {
  consumer_config cfg;
  cfg.bootstrap = acfg.bootstrap;
  cfg.client_id = acfg.client_id;
  cfg.request_timeout = acfg.timeout;
  cfg.fetch_max_wait = std::chrono::milliseconds(100);
  auto c = consumer::connect(cfg);
  if (!c) return std::unexpected(c.error());
  std::vector<topic_partition_ref> parts;
  for (const auto& [tp, o] : at) parts.push_back(tp);
  if (auto r = (*c)->assign(parts); !r) return std::unexpected(r.error());
  for (const auto& [tp, o] : at) {
    if (auto r = (*c)->seek(tp, o); !r) return std::unexpected(r.error());
  }
  std::map<topic_partition_ref, std::int64_t> out;
  const auto deadline = std::chrono::steady_clock::now() + acfg.timeout;
  while (out.size() < at.size() && std::chrono::steady_clock::now() < deadline) {
    auto records = (*c)->poll(std::chrono::milliseconds(200));
    if (!records) return std::unexpected(records.error());
    for (const auto& r : *records) out.try_emplace(topic_partition_ref{std::string(r.topic), r.partition}, r.timestamp_ms);
  }
  return out;
}

}  // namespace

result<std::vector<group_listing>> admin::list_groups() {
  auto c = describe_cluster();
  if (!c) return std::unexpected(c.error());
  std::map<std::string, group_listing> by_id;  // a group moving between coordinators may show twice
  for (const auto& b : c->brokers) {
    if (b.port <= 0 || b.port > 65535) return std::unexpected(error{errc::bad_response, "Metadata: broker without a port"});
    flatbuffers::FlatBufferBuilder fbb;
    auto body = wire::CreateListGroupsRequest(fbb);
    auto& w = impl_->pool->at(client::host_port{b.host, static_cast<std::uint16_t>(b.port)});
    auto r = w.call_sync(std::move(fbb), wire::Request::ListGroupsRequest, body.Union());
    const auto* resp = r ? r->envelope->body_as_ListGroupsResponse() : nullptr;
    std::optional<error> e;
    if (!r) {
      e = r.error();
    } else if (resp == nullptr) {
      e = error{errc::bad_response, "ListGroups"};
    } else if (resp->error() != wire::ErrorCode::NONE) {
      e = client::make_error(resp->error(), resp->message());
    }
    if (e) {
      e->message = "broker " + std::to_string(b.id) + (e->message.empty() ? "" : ": " + e->message);
      return std::unexpected(*e);
    }
    if (resp->groups() == nullptr) continue;
    for (const auto* g : *resp->groups()) {
      group_listing l{str_of(g->group_id()), str_of(g->state()), g->group_epoch(), g->members()};
      by_id.try_emplace(l.group_id, std::move(l));
    }
  }
  std::vector<group_listing> out;
  for (auto& [id, l] : by_id) out.push_back(std::move(l));
  return out;
}

result<group_description> admin::describe_group(const std::string& group_id) {
  auto r = client::call_coordinator(
      *impl_->pool, group_id,
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        std::vector<std::string> ids{group_id};
        auto body = wire::CreateDescribeGroupsRequest(fbb, fbb.CreateVectorOfStrings(ids));
        return std::pair{body.Union(), wire::Request::DescribeGroupsRequest};
      },
      [](const client::response& resp) -> std::optional<error> {
        const auto* b = resp.envelope->body_as_DescribeGroupsResponse();
        if (b == nullptr || b->groups() == nullptr || b->groups()->size() != 1) return std::nullopt;
        const auto* g = b->groups()->Get(0);
        if (g->error() == wire::ErrorCode::NONE) return std::nullopt;
        return client::make_error(g->error(), g->message());
      });
  if (!r) return std::unexpected(r.error());
  const auto* b = r->envelope->body_as_DescribeGroupsResponse();
  if (b == nullptr || b->groups() == nullptr || b->groups()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "DescribeGroups"});
  }
  const auto* g = b->groups()->Get(0);
  if (g->error() != wire::ErrorCode::NONE) return std::unexpected(client::make_error(g->error(), g->message()));
  group_description d;
  d.group_id = group_id;
  d.state = str_of(g->state());
  d.group_epoch = g->group_epoch();
  d.assignment_epoch = g->assignment_epoch();
  d.assignor = str_of(g->assignor());
  if (g->members() != nullptr) {
    for (const auto* m : *g->members()) {
      group_member_description md;
      md.member_id = str_of(m->member_id());
      md.instance_id = str_of(m->instance_id());
      md.client_id = str_of(m->client_id());
      md.client_host = str_of(m->client_host());
      md.member_epoch = m->member_epoch();
      if (m->subscribed_topic_names() != nullptr) {
        for (const auto* t : *m->subscribed_topic_names()) md.subscribed_topics.push_back(t->str());
      }
      md.subscribed_regex = str_of(m->subscribed_topic_regex());
      md.assignment = refs_of(m->assignment());
      md.target_assignment = refs_of(m->target_assignment());
      md.revoking = refs_of(m->revoking());
      d.members.push_back(std::move(md));
    }
  }
  std::sort(d.members.begin(), d.members.end(),
            [](const auto& x, const auto& y) { return x.member_id < y.member_id; });
  d.type = g->group_type() != nullptr ? g->group_type()->str() : "consumer";
  d.share_partitions = refs_of(g->share_partitions());
  // Asked once more: call_coordinator does not say whom it reached.
  auto node = client::find_coordinator_node(*impl_->pool, group_id);
  if (!node) return std::unexpected(node.error());
  d.coordinator = node->node_id;
  return d;
}

result<void> admin::delete_group(const std::string& group_id) {
  auto result_of = [](const client::response& resp) -> const wire::GroupResult* {
    const auto* b = resp.envelope->body_as_DeleteGroupsResponse();
    if (b == nullptr || b->results() == nullptr || b->results()->size() != 1) return nullptr;
    return b->results()->Get(0);
  };
  auto r = client::call_coordinator(
      *impl_->pool, group_id,
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        std::vector<std::string> ids{group_id};
        auto body = wire::CreateDeleteGroupsRequest(fbb, fbb.CreateVectorOfStrings(ids));
        return std::pair{body.Union(), wire::Request::DeleteGroupsRequest};
      },
      [&](const client::response& resp) -> std::optional<error> {
        const auto* g = result_of(resp);
        if (g == nullptr || g->error() == wire::ErrorCode::NONE) return std::nullopt;
        return client::make_error(g->error(), g->message());
      });
  if (!r) return std::unexpected(r.error());
  const auto* g = result_of(*r);
  if (g == nullptr) return std::unexpected(error{errc::bad_response, "DeleteGroups"});
  if (g->error() != wire::ErrorCode::NONE) return std::unexpected(client::make_error(g->error(), g->message()));
  return {};
}

result<std::map<topic_partition_ref, offset_and_metadata>> admin::committed_offsets(
    const std::string& group_id, const std::vector<topic_partition_ref>& partitions) {
  return client::fetch_committed(*impl_->pool, group_id, partitions);
}

result<void> admin::alter_group_offsets(const std::string& group_id,
                                        const std::map<topic_partition_ref, offset_and_metadata>& offsets) {
  if (offsets.empty()) return std::unexpected(error{errc::invalid_argument, "no offsets to commit"});
  auto r = client::commit_offsets(*impl_->pool, group_id, "", -1, offsets);
  if (!r) return std::unexpected(r.error());
  for (const auto& [tp, o] : offsets) {
    auto it = r->find(tp);
    if (it == r->end()) return std::unexpected(error{errc::bad_response, "OffsetCommit without " + name_of(tp)});
    if (!it->second) continue;
    error e = *it->second;
    // Name the partition unless the broker's message already does.
    if (e.message.find(name_of(tp)) == std::string::npos) {
      e.message = name_of(tp) + (e.message.empty() ? "" : ": " + e.message);
    }
    return std::unexpected(e);
  }
  return {};
}

result<std::vector<partition_lag>> admin::group_lag(const std::string& group_id) {
  auto d = describe_group(group_id);
  if (!d) return std::unexpected(d.error());
  return group_lag(*d);
}

result<std::vector<partition_lag>> admin::group_lag(const group_description& group) {
  auto committed = committed_offsets(group.group_id);
  if (!committed) return std::unexpected(committed.error());
  std::map<topic_partition_ref, partition_lag> rows;
  for (const auto& [tp, o] : *committed) rows[tp].committed_offset = o.offset;
  // A partition being revoked is still its old owner's until released.
  for (const auto& m : group.members) {
    for (const auto& tp : m.revoking) rows[tp].owner = m.member_id;
  }
  for (const auto& m : group.members) {
    for (const auto& tp : m.assignment) rows[tp].owner = m.member_id;
  }
  std::map<topic_partition_ref, std::int64_t> first_unread;
  for (auto& [tp, row] : rows) {
    row.partition = tp;
    auto end = list_offset(tp.topic, tp.partition, latest_offset);
    if (!end) {
      // Offsets of a deleted topic stay until the group goes: no end to show.
      if (end.error().code == errc::unknown_topic_or_partition) continue;
      return std::unexpected(end.error());
    }
    row.log_end_offset = *end;
    if (row.committed_offset < 0) continue;
    row.lag = std::max<std::int64_t>(0, *end - row.committed_offset);
    if (row.lag == 0) {
      row.lag_seconds = 0;
      continue;
    }
    auto start = list_offset(tp.topic, tp.partition, earliest_offset);
    if (!start) return std::unexpected(start.error());
    // Retention may have removed the committed record: the oldest left is next.
    const std::int64_t next = std::max(row.committed_offset, *start);
    if (next >= *end) {
      row.lag_seconds = 0;  // nothing left to read
      continue;
    }
    first_unread[tp] = next;
  }
  if (!first_unread.empty()) {
    auto ts = first_timestamps(impl_->cfg, first_unread);
    if (!ts) return std::unexpected(ts.error());
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    for (const auto& [tp, t] : *ts) rows[tp].lag_seconds = static_cast<double>(std::max<std::int64_t>(0, now - t)) / 1000.0;
  }
  std::vector<partition_lag> out;
  for (auto& [tp, row] : rows) out.push_back(std::move(row));
  return out;
}

namespace {

// One DescribeSharePartitions to one leader: the stats it has, and the
// partitions whose leader may have moved (asked again after a refresh).
result<void> describe_share_at(client::wire_client& w, const std::string& group,
                               const std::vector<topic_partition_ref>& tps, std::vector<share_partition_stats>& out,
                               std::vector<topic_partition_ref>& again) {
  flatbuffers::FlatBufferBuilder fbb;
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const auto& tp : tps) by_topic[tp.topic].push_back(tp.partition);
  std::vector<flatbuffers::Offset<wire::TopicPartitions>> list;
  for (const auto& [t, ps] : by_topic) list.push_back(wire::CreateTopicPartitionsDirect(fbb, t.c_str(), &ps));
  auto body = wire::CreateDescribeSharePartitionsRequestDirect(fbb, group.c_str(), &list);
  auto r = w.call_sync(std::move(fbb), wire::Request::DescribeSharePartitionsRequest, body.Union());
  if (!r) {
    if (!client::leader_may_have_moved(r.error().code)) return std::unexpected(r.error());
    again.insert(again.end(), tps.begin(), tps.end());
    return {};
  }
  const auto* resp = r->envelope->body_as_DescribeSharePartitionsResponse();
  if (resp == nullptr || resp->partitions() == nullptr) {
    return std::unexpected(error{errc::bad_response, "DescribeSharePartitions"});
  }
  for (const auto* p : *resp->partitions()) {
    const std::string topic = str_of(p->topic());
    if (p->error() != wire::ErrorCode::NONE) {
      auto e = client::make_error(p->error(), p->message());
      if (client::leader_may_have_moved(e.code)) {
        again.push_back({topic, p->partition()});
        continue;
      }
      e.message = topic + "/" + std::to_string(p->partition()) + ": " + e.message;
      return std::unexpected(e);
    }
    out.push_back({{topic, p->partition()}, p->start_offset(), p->end_offset(), p->available(), p->acquired(),
                   p->acknowledged(), p->archived(), p->oldest_lock_age_ms()});
  }
  return {};
}

}  // namespace

result<std::vector<share_partition_stats>> admin::describe_share_partitions(const group_description& group) {
  if (group.type != "share") {
    return std::unexpected(error{errc::invalid_argument, "group " + group.group_id + " is a consumer group, not a share group"});
  }
  std::set<topic_partition_ref> wanted(group.share_partitions.begin(), group.share_partitions.end());
  for (const auto& m : group.members) wanted.insert(m.assignment.begin(), m.assignment.end());
  std::vector<topic_partition_ref> pending(wanted.begin(), wanted.end());
  std::vector<share_partition_stats> out;
  // A leader that died is named in Metadata until its session expires:
  // ask again, after a fresh Metadata, until the client's timeout.
  const auto deadline = std::chrono::steady_clock::now() + impl_->pool->timeout();
  auto backoff = std::chrono::milliseconds(100);
  while (!pending.empty()) {
    std::set<std::string> topics;
    for (const auto& tp : pending) topics.insert(tp.topic);
    if (auto r = impl_->meta->refresh({topics.begin(), topics.end()}); !r) return std::unexpected(r.error());
    auto routes = impl_->meta->route(pending);
    std::vector<topic_partition_ref> again;
    error last{errc::not_leader, "no leader"};
    for (auto& [tp, e] : routes.unroutable) {
      if (!client::leader_may_have_moved(e.code)) return std::unexpected(e);
      again.push_back(tp);
      last = e;
    }
    for (const auto& [broker, tps] : routes.by_leader) {
      if (auto r = describe_share_at(impl_->pool->at(routes.addresses.at(broker)), group.group_id, tps, out, again);
          !r) {
        return std::unexpected(r.error());
      }
    }
    pending = std::move(again);
    if (pending.empty()) break;
    if (std::chrono::steady_clock::now() + backoff >= deadline) {
      return std::unexpected(error{last.code, pending.front().topic + "/" + std::to_string(pending.front().partition) +
                                                  ": no leader answered"});
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1'000));
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.partition < y.partition; });
  return out;
}

}  // namespace runnel
