#pragma once
// membership: this broker's place in the cluster. Connects to ZooKeeper
// (creating the chroot when missing), registers /brokers/ids/<id>, campaigns
// for controller and follows the live broker list. When the session
// expires it starts over: new session, registration, campaign.
//
// Lives on one executor (shard 0); not thread-safe.

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "broker/cluster/controller.h"

namespace runnel::cluster {

class membership {
 public:
  struct view {
    std::vector<broker_registration> brokers;  // live, by id
    std::int32_t controller = -1;
  };

  // Errors name what failed (ZooKeeper unreachable, id taken).
  static asio::awaitable<std::expected<std::unique_ptr<membership>, std::string>> start(
      asio::any_io_executor ex, std::string connect, std::chrono::milliseconds session_timeout, broker_registration me);

  ~membership();
  membership(const membership&) = delete;             // owns a session
  membership& operator=(const membership&) = delete;  // owns a session
  membership(membership&&) = delete;                  // callbacks hold `this`
  membership& operator=(membership&&) = delete;       // callbacks hold `this`

  [[nodiscard]] view snapshot() const;

 private:
  membership(asio::any_io_executor ex, std::string connect, std::chrono::milliseconds timeout, broker_registration me);
  asio::awaitable<std::string> join();  // "" on success, else why not
  asio::awaitable<void> refresh_brokers();

  asio::any_io_executor ex_;
  std::string connect_;
  std::chrono::milliseconds timeout_;
  broker_registration me_;
  std::unique_ptr<zk::session> session_;
  std::unique_ptr<controller_election> election_;
  std::shared_ptr<zk::subscription> brokers_watch_;
  std::vector<broker_registration> live_;
  // Sessions (and what uses them) replaced after an expiry: kept until the
  // membership goes, so operations still pending on them never dangle.
  std::vector<std::unique_ptr<controller_election>> retired_elections_;
  std::vector<std::unique_ptr<zk::session>> retired_sessions_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards late callbacks
};

}  // namespace runnel::cluster
