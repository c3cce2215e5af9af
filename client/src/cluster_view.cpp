#include "client/src/cluster_view.h"

namespace runnel::client {

namespace {

error wire_error(wire::ErrorCode code, std::string message) {
  return error{make_error_code(static_cast<errc>(static_cast<int>(code))), std::move(message)};
}

}  // namespace

result<cluster_view> parse_metadata(const wire::MetadataResponse& m) {
  cluster_view v;
  v.controller = m.controller_id();
  if (m.brokers() != nullptr) {
    for (const auto* b : *m.brokers()) {
      if (b->host() == nullptr || b->port() <= 0 || b->port() > 65535) {
        return std::unexpected(error{
            errc::bad_response, "Metadata: broker " + std::to_string(b->id()) + " has no address"});
      }
      v.brokers[b->id()] = host_port{b->host()->str(), static_cast<std::uint16_t>(b->port())};
    }
  }
  if (m.topics() == nullptr) return v;
  for (const auto* t : *m.topics()) {
    if (t->name() == nullptr)
      return std::unexpected(error{errc::bad_response, "Metadata: a topic without a name"});
    const std::string name = t->name()->str();
    if (t->error() != wire::ErrorCode::NONE) {
      v.topics.insert_or_assign(name, std::unexpected(wire_error(t->error(), "topic " + name)));
      continue;
    }
    std::vector<partition_leader> parts(t->partitions() != nullptr ? t->partitions()->size() : 0);
    if (parts.empty()) {
      v.topics.insert_or_assign(name,
                                std::unexpected(error{errc::unknown_topic_or_partition,
                                                      "topic " + name + " has no partitions"}));
      continue;
    }
    for (const auto* p : *t->partitions()) {
      if (p->partition() < 0 || static_cast<std::size_t>(p->partition()) >= parts.size()) {
        return std::unexpected(error{errc::bad_response, "Metadata: " + name + " partition " +
                                                             std::to_string(p->partition()) +
                                                             " out of place"});
      }
      // A partition with its own error (offline) has no usable leader.
      const auto leader = p->error() == wire::ErrorCode::NONE ? p->leader() : no_leader;
      parts[static_cast<std::size_t>(p->partition())] = partition_leader{leader, p->leader_epoch()};
    }
    v.topics.insert_or_assign(name, std::move(parts));
  }
  return v;
}

void merge(cluster_view& into, cluster_view&& newer) {
  into.brokers = std::move(newer.brokers);
  into.controller = newer.controller;
  for (auto& [name, t] : newer.topics) {
    if (!t && t.error().code == errc::unknown_topic_or_partition) {
      into.topics.erase(name);
    } else {
      into.topics.insert_or_assign(name, std::move(t));
    }
  }
}

result<leader_route> find_leader(const cluster_view& view, std::string_view topic,
                                 std::int32_t partition) {
  auto t = view.topics.find(topic);
  if (t == view.topics.end()) {
    return std::unexpected(error{errc::unknown_topic_or_partition, "topic " + std::string(topic)});
  }
  if (!t->second) return std::unexpected(t->second.error());
  const auto& parts = *t->second;
  auto name = [&] { return std::string(topic) + "/" + std::to_string(partition); };
  if (partition < 0 || static_cast<std::size_t>(partition) >= parts.size()) {
    return std::unexpected(error{errc::unknown_topic_or_partition, name()});
  }
  const auto& p = parts[static_cast<std::size_t>(partition)];
  if (p.leader == no_leader)
    return std::unexpected(error{errc::not_leader, name() + " has no leader (election pending)"});
  auto b = view.brokers.find(p.leader);
  if (b == view.brokers.end()) {
    return std::unexpected(error{errc::not_leader, name() + ": leader " + std::to_string(p.leader) +
                                                       " is not a live broker"});
  }
  return leader_route{p.leader, b->second, p.leader_epoch};
}

routes route_by_leader(const cluster_view& view, std::span<const topic_partition_ref> partitions) {
  routes out;
  for (const auto& tp : partitions) {
    auto r = find_leader(view, tp.topic, tp.partition);
    if (r) {
      out.by_leader[r->broker].push_back(tp);
      out.addresses.try_emplace(r->broker, std::move(r->address));
    } else {
      out.unroutable.emplace_back(tp, r.error());
    }
  }
  return out;
}

bool leader_may_have_moved(std::error_code ec) noexcept {
  if (ec.category() != error_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::not_leader:
    case errc::fenced_leader_epoch:
    case errc::broker_shutting_down:
    case errc::connection_failed:
    case errc::disconnected:
    case errc::timed_out:
      return true;
    default:
      return false;
  }
}

}  // namespace runnel::client
