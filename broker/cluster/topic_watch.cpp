#include "broker/cluster/topic_watch.h"

#include <set>

#include <asio/post.hpp>

#include "broker/cluster/logger.h"

namespace runnel::cluster {

topic_watch::topic_watch(zk::session& zk, changed_fn changed) : zk_(zk), changed_(std::move(changed)) {}

void topic_watch::start() {
  std::weak_ptr<bool> alive = alive_;
  list_ = zk_.watch_children("/topics", [this, alive](std::optional<std::vector<std::string>> names) {
    if (alive.expired() || !*alive.lock()) return;
    on_topic_list(names.value_or(std::vector<std::string>{}));
  });
}

bool topic_watch::complete() const {
  if (!list_read_) return false;
  for (const auto& [name, subs] : subs_) {
    auto it = read_.find(name);
    if (it == read_.end()) return false;  // its node not delivered yet
    for (bool r : it->second) {
      if (!r) return false;
    }
  }
  return true;
}

void topic_watch::on_topic_list(const std::vector<std::string>& names) {
  list_read_ = true;
  const std::set<std::string> now(names.begin(), names.end());
  listed_ = now;
  for (auto it = subs_.begin(); it != subs_.end();) {
    if (now.contains(it->first)) {
      ++it;
      continue;
    }
    view_.erase(it->first);
    read_.erase(it->first);
    it = subs_.erase(it);
    changed();
  }
  std::weak_ptr<bool> alive = alive_;
  for (const auto& name : now) {
    if (subs_.contains(name)) continue;
    subs_[name].topic = zk_.watch_data(topic_path(name), [this, alive, name](std::optional<zk::node> n) {
      if (alive.expired() || !*alive.lock()) return;
      on_topic(name, n);
    });
  }
}

void topic_watch::on_topic(const std::string& name, const std::optional<zk::node>& n) {
  auto sit = subs_.find(name);
  if (sit == subs_.end()) return;
  if (!n) {  // being deleted
    view_.erase(name);
    read_[name].clear();
    sit->second.states.clear();
    changed();
    return;
  }
  auto a = decode_topic(n->data);
  if (!a) {
    logger().error("{} in ZooKeeper is malformed ({}); the topic is ignored", topic_path(name), a.error().message);
    read_[name].clear();
    changed();
    return;
  }
  auto& t = view_[name];
  t.assignment = std::move(*a);
  t.partitions.resize(t.assignment.replicas.size());
  read_[name].resize(t.partitions.size(), false);
  auto& states = sit->second.states;
  std::weak_ptr<bool> alive = alive_;
  for (auto p = static_cast<std::int32_t>(states.size()); p < static_cast<std::int32_t>(t.partitions.size()); ++p) {
    states.push_back(zk_.watch_data(state_path(name, p), [this, alive, name, p](std::optional<zk::node> sn) {
      if (alive.expired() || !*alive.lock()) return;
      on_state(name, p, sn);
    }));
  }
  changed();
}

void topic_watch::on_state(const std::string& name, std::int32_t partition, const std::optional<zk::node>& n) {
  auto it = view_.find(name);
  if (it == view_.end() || partition >= static_cast<std::int32_t>(it->second.partitions.size())) return;
  auto& pv = it->second.partitions[static_cast<std::size_t>(partition)];
  if (auto r = read_.find(name); r != read_.end() && partition < static_cast<std::int32_t>(r->second.size())) {
    r->second[static_cast<std::size_t>(partition)] = true;
  }
  if (!n) {
    pv = partition_view{};
    changed();
    return;
  }
  auto s = decode_state(n->data);
  if (!s) {
    logger().error("{} in ZooKeeper is malformed ({}); the partition is treated as offline", state_path(name, partition),
                   s.error().message);
    pv = partition_view{};
  } else {
    pv = partition_view{std::move(*s), n->stat.version, true};
  }
  changed();
}

void topic_watch::changed() {
  if (notify_pending_) return;
  notify_pending_ = true;
  std::weak_ptr<bool> alive = alive_;
  asio::post(zk_.executor(), [this, alive] {
    if (alive.expired() || !*alive.lock()) return;
    notify_pending_ = false;
    if (changed_ && complete()) changed_(view_, listed_);
  });
}

}  // namespace runnel::cluster
