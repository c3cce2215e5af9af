#include "client/src/metadata_cache.h"

#include <future>

namespace runnel::client {

namespace {

// An error after which another broker may well answer the same Metadata.
bool try_next_broker(const error& e) {
  return e.code == errc::connection_failed || e.code == errc::disconnected ||
         e.code == errc::timed_out || e.code == errc::broker_shutting_down;
}

}  // namespace

result<std::int32_t> metadata_cache::partitions(const std::string& topic,
                                                std::optional<std::chrono::milliseconds> max_wait) {
  {
    std::lock_guard lock(mu_);
    if (auto t = view_.topics.find(topic); t != view_.topics.end() && t->second) {
      return static_cast<std::int32_t>(t->second->size());
    }
  }
  auto v = fetch_sync({topic}, max_wait);
  if (!v) return std::unexpected(v.error());
  auto t = v->topics.find(topic);
  if (t == v->topics.end())
    return std::unexpected(error{errc::bad_response, "Metadata does not describe topic " + topic});
  if (!t->second) return std::unexpected(t->second.error());
  return static_cast<std::int32_t>(t->second->size());
}

result<leader_route> metadata_cache::leader(const std::string& topic, std::int32_t partition) {
  {
    std::lock_guard lock(mu_);
    if (auto t = view_.topics.find(topic); t != view_.topics.end() && t->second) {
      return find_leader(view_, topic, partition);
    }
  }
  auto v = fetch_sync({topic});
  if (!v) return std::unexpected(v.error());
  return find_leader(*v, topic, partition);
}

result<leader_route> metadata_cache::cached_leader(std::string_view topic,
                                                   std::int32_t partition) const {
  std::lock_guard lock(mu_);
  return find_leader(view_, topic, partition);
}

routes metadata_cache::route(std::span<const topic_partition_ref> partitions) const {
  std::lock_guard lock(mu_);
  return route_by_leader(view_, partitions);
}

result<void> metadata_cache::refresh(const std::vector<std::string>& topics) {
  auto v = fetch_sync(topics);
  if (!v) return std::unexpected(v.error());
  return {};
}

bool metadata_cache::maybe_refresh(const std::string& topic, std::chrono::milliseconds min_interval,
                                   std::move_only_function<void()> done) {
  {
    std::lock_guard lock(mu_);
    auto& st = refreshes_[topic];
    if (!st.in_flight && std::chrono::steady_clock::now() - st.ended < min_interval) return false;
    st.waiting.push_back(std::move(done));
    if (st.in_flight) return true;
    st.in_flight = true;
  }
  fetch({topic}, pool_.candidates(), 0, {}, [this, topic](result<cluster_view> r) {
    if (r) apply(std::move(*r));
    std::vector<std::move_only_function<void()>> waiting;
    {
      std::lock_guard lock(mu_);
      auto& st = refreshes_[topic];
      st.in_flight = false;
      st.ended = std::chrono::steady_clock::now();
      waiting = std::exchange(st.waiting, {});
    }
    for (auto& w : waiting) w();
  });
  return true;
}

void metadata_cache::forget(const std::string& topic) {
  std::lock_guard lock(mu_);
  view_.topics.erase(topic);
}

void metadata_cache::fetch(std::vector<std::string> topics, std::vector<host_port> candidates,
                           std::size_t next, std::string failures, fetched_fn done) {
  if (next >= candidates.size()) {
    done(std::unexpected(
        error{errc::connection_failed, "no broker answered Metadata (" + failures + ")"}));
    return;
  }
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb, fbb.CreateVectorOfStrings(topics));
  auto& connection = pool_.at(candidates[next]);
  connection.call(
      std::move(fbb), wire::Request::MetadataRequest, body.Union(), {},
      [this, topics = std::move(topics), candidates = std::move(candidates), next,
       failures = std::move(failures), done = std::move(done)](result<response> r) mutable {
        const auto e = request_error(r);
        if (e && try_next_broker(*e)) {
          if (!failures.empty()) failures += "; ";
          // A failed connect's message starts with the address already.
          failures += e->code == errc::connection_failed
                          ? e->message
                          : candidates[next].str() + ": " + e->what();
          fetch(std::move(topics), std::move(candidates), next + 1, std::move(failures),
                std::move(done));
          return;
        }
        if (e) return done(std::unexpected(*e));
        const auto* m = r->envelope->body_as_MetadataResponse();
        if (m == nullptr) return done(std::unexpected(error{errc::bad_response, "Metadata"}));
        auto v = parse_metadata(*m);
        if (v) pool_.answered(candidates[next]);
        done(std::move(v));
      });
}

result<cluster_view> metadata_cache::fetch_sync(const std::vector<std::string>& topics,
                                                std::optional<std::chrono::milliseconds> max_wait) {
  if (pool_.on_io_thread()) {
    // Waiting here would block the only thread that can answer.
    return std::unexpected(
        error{errc::invalid_argument,
              "blocking metadata lookup from the client's I/O thread (a callback)"});
  }
  // Shared with the callback: it may run after this call gave up waiting.
  auto p = std::make_shared<std::promise<result<cluster_view>>>();
  auto f = p->get_future();
  fetch(topics, pool_.candidates(), 0, {}, [this, p](result<cluster_view> r) {
    if (r) apply(*r);
    p->set_value(std::move(r));
  });
  if (max_wait && f.wait_for(*max_wait) != std::future_status::ready) {
    return std::unexpected(error{errc::timed_out, "no broker answered Metadata within " +
                                                      std::to_string(max_wait->count()) + " ms"});
  }
  return f.get();
}

void metadata_cache::apply(cluster_view view) {
  std::vector<host_port> brokers;
  for (const auto& [id, address] : view.brokers) brokers.push_back(address);
  pool_.learn(std::move(brokers));
  std::lock_guard lock(mu_);
  merge(view_, std::move(view));
}

}  // namespace runnel::client
