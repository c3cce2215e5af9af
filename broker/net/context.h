#pragma once
// What a request handler sees. Handlers run on the connection's shard
// ("home"), reach partitions through their owner shards (gather/run_on),
// build the response body into `fbb`, and never touch the socket.

#include <atomic>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <flatbuffers/flatbuffers.h>

#include "broker/cluster/membership.h"
#include "broker/config.h"
#include "broker/meta/topic_store.h"
#include "broker/net/shard.h"
#include "broker/storage/types.h"
#include "schemas/protocol_generated.h"

namespace runnel::net {

// Changes of the standalone topic store waiting for their turn
// (topic_writes.cpp; shard 0 only).
struct topic_store_queue {
  bool busy = false;
  std::deque<std::shared_ptr<asio::steady_timer>> waiting;
};

// State shared by every shard. `store` is touched on shard 0 only.
struct broker_state {
  broker_config cfg;
  std::vector<std::unique_ptr<shard>> shards;
  std::optional<meta::topic_store> store;
  topic_store_queue store_queue;  // its changes, one at a time (shard 0)
  std::unique_ptr<cluster::membership> cluster;  // shard 0 only; null in standalone mode
  bool publishing = false;                       // publish_cluster in progress (shard 0)
  bool publish_again = false;                    // ... and asked again meanwhile (shard 0)
  std::atomic<std::uint64_t> inflight_produce_bytes{0};
  // Request bodies being read or handled, every connection (bounded by
  // queued.max.request.bytes).
  std::atomic<std::uint64_t> request_bytes{0};
  // Connections open, and refused at accept (max.connections[.per.ip]);
  // the per-IP counts are kept by the accept loop (shard 0) under a lock
  // because connections end on their own shards.
  // Disk space (storage.min.free.bytes): the data directory's free bytes
  // as last measured (statvfs, every 100 ms on shard 0) less what produce
  // queued since; below min_free_bytes produce answers STORAGE_FULL and
  // followers stop fetching, until space is back.
  std::atomic<std::int64_t> free_bytes{std::numeric_limits<std::int64_t>::max()};
  std::int64_t min_free_bytes = 0;  // resolved at start
  [[nodiscard]] bool storage_full() const { return free_bytes.load(std::memory_order_relaxed) < min_free_bytes; }
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::mutex per_ip_mu;
  std::unordered_map<std::string, std::uint32_t> connections_per_ip;
  std::atomic<bool> stopping{false};
  // Cluster mode: local logs of partitions this broker is not a replica of
  // (topics deleted or re-created while it was down) are removed. Set once
  // the data directory's cluster.id matched ZooKeeper's, i.e. from the
  // second start in a cluster on.
  std::atomic<bool> remove_stray_logs{false};
  // Test hook (EmbeddedBroker): every response waits this long before it is sent.
  std::atomic<std::int32_t> response_delay_ms{0};

  [[nodiscard]] shard& owner(const topic_partition& tp) {
    return *shards[shard::owner_of(tp, static_cast<unsigned>(shards.size()))];
  }
  [[nodiscard]] shard& controller() { return *shards[0]; }
  [[nodiscard]] bool cluster_mode() const { return !cfg.zookeeper.empty(); }

  // Idempotent producer ids reserved and not yet handed out (shard 0 only;
  // handlers/init_producer_id.cpp).
  std::int64_t producer_ids_next = 0;
  std::int64_t producer_ids_end = 0;
};

struct request_context {
  broker_state& broker;
  shard& home;
  const wire::RequestEnvelope& envelope;
  std::span<std::byte> payload;  // produce batches; stamped in place
  flatbuffers::FlatBufferBuilder& fbb;
  std::vector<storage::file_range>& files;  // fetch: payload sent from files, in order
  std::string_view peer_host;               // the client's IP address
};

// A constructor, not an aggregate (docs/adr/0004-gcc12-coroutine-temporaries.md).
struct handler_result {
  handler_result() = default;
  handler_result(wire::Response t, flatbuffers::Offset<void> b) : type(t), body(b) {}
  // The request as a whole is refused; the envelope carries the error.
  static handler_result refuse(wire::ErrorCode e, std::string msg) {
    handler_result r;
    r.error = e;
    r.message = std::move(msg);
    return r;
  }
  // Produce with acks=0: no response at all.
  static handler_result silent() {
    handler_result r;
    r.no_response = true;
    return r;
  }

  wire::Response type = wire::Response::NONE;
  flatbuffers::Offset<void> body;
  bool no_response = false;
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
};

using handler_fn = asio::awaitable<handler_result> (*)(request_context&);

// The dispatch table: handler for a request type, nullptr when unknown.
handler_fn find_handler(wire::Request type);

// The one mapping from internal errors to wire error codes.
wire::ErrorCode to_wire(const std::error_code& ec);

// Pushes a new topic snapshot to every shard (from shard 0).
asio::awaitable<void> publish_topics(broker_state& b, meta::topics_snapshot snap);

// Cluster mode (on shard 0): pushes the membership's current topics, partition
// states and live brokers to every shard, whose replica managers apply them.
// Serialized: a call while one runs makes it go round once more.
void publish_cluster(broker_state& b);

// Cluster mode, on shard 0: whether its snapshot shows topic `name` with
// every partition's state (a created topic is usable).
bool topic_visible(broker_state& b, const std::string& name);

// The topics snapshot of a ZooKeeper view, configs resolved over `defaults`.
meta::topics_snapshot cluster_topics(const cluster::topics_view& v, const meta::topic_config& defaults);

}  // namespace runnel::net
