#include "runnel/admin.h"

#include "client/src/connection_pool.h"
#include "client/src/metadata_cache.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"

namespace runnel {

// Topic and config requests go to any broker; ListOffsets to the leader.
struct admin::impl {
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

result<std::map<std::string, config_value>> admin::describe_configs(const std::string& topic) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::string> names{topic};
  auto body = wire::CreateDescribeConfigsRequest(fbb, fbb.CreateVectorOfStrings(names));
  auto r = impl_->call(std::move(fbb), wire::Request::DescribeConfigsRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_DescribeConfigsResponse();
  if (resp == nullptr || resp->results() == nullptr || resp->results()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "DescribeConfigs"});
  }
  const auto* t = resp->results()->Get(0);
  if (t->error() != wire::ErrorCode::NONE) return std::unexpected(client::make_error(t->error(), t->message()));
  std::map<std::string, config_value> out;
  if (t->configs() != nullptr) {
    for (const auto* c : *t->configs()) out[c->key()->str()] = config_value{c->value()->str(), c->is_default()};
  }
  return out;
}

result<void> admin::alter_configs(const std::string& topic, const std::map<std::string, std::string>& configs) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::ConfigEntry>> entries;
  for (const auto& [k, v] : configs) entries.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str()));
  std::vector<flatbuffers::Offset<wire::TopicConfigs>> topics{
      wire::CreateTopicConfigsDirect(fbb, topic.c_str(), wire::ErrorCode::NONE, nullptr, &entries)};
  auto body = wire::CreateAlterConfigsRequestDirect(fbb, &topics);
  auto r = impl_->call(std::move(fbb), wire::Request::AlterConfigsRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* resp = r->envelope->body_as_AlterConfigsResponse();
  if (resp == nullptr || resp->results() == nullptr || resp->results()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "AlterConfigs"});
  }
  if (auto e = result_error(resp->results()->Get(0))) return std::unexpected(*e);
  return {};
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

}  // namespace runnel
