#pragma once
// server: a whole standalone broker. Loads topic metadata, starts one shard
// per core, opens every partition log (in parallel), listens, accepts and
// spreads connections over the shards round-robin, runs retention, and
// stops gracefully: stop accepting, answer what was read, close every log
// (flush + index sync), join the shard threads.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "broker/config.h"
#include "broker/net/error.h"

namespace runnel::net {

class server {
 public:
  // Errors (bad data directory, corrupt metadata, port in use, ZooKeeper
  // unreachable, a data directory of another cluster) carry the failing
  // part's code (std::errc::address_in_use, meta::errc::malformed_store,
  // cluster::errc::wrong_cluster, ...) and name what failed.
  static std::expected<std::unique_ptr<server>, error> start(broker_config cfg);
  ~server();
  server(const server&) = delete;             // owns threads
  server& operator=(const server&) = delete;  // owns threads
  server(server&&) = delete;                  // threads hold `this`
  server& operator=(server&&) = delete;       // threads hold `this`

  // The bound port (useful with listen port 0).
  [[nodiscard]] std::uint16_t port() const;
  // Graceful stop; safe to call twice and from any thread but a shard's.
  void stop();
  // Fault injection for tests: delay every response by `ms` (0: off).
  void set_response_delay(std::chrono::milliseconds ms);

  struct impl;

 private:
  explicit server(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel::net
