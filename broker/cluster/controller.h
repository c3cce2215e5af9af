#pragma once
// Broker membership and controller election on ZooKeeper (DESIGN.md §6).
//
//   /brokers/ids/<id>    ephemeral, "host:port[ rack]": a live broker
//   /controller          ephemeral, "<id>": the current controller
//   /controller_epoch    persistent, "<epoch>": bumped by every new controller
//
// Election: every broker tries to create /controller; the one that succeeds
// bumps /controller_epoch by compare-and-set and is controller for that
// epoch. The others watch /controller and try again when it goes (its
// owner's session ended). A controller's metadata writes go through
// fenced_multi(), which checks /controller_epoch's version in the same
// atomic multi: a deposed controller's writes fail with bad_version.
//
// All on the executor of the zk::session; not thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "zk/session.h"

namespace runnel::cluster {

struct broker_registration {
  std::int32_t id = 0;
  std::string host;
  std::uint16_t port = 0;
  std::string rack;
};

// "host:port[ rack]" <-> registration (the id comes from the node name).
std::string encode_registration(const broker_registration& r);
std::optional<broker_registration> decode_registration(std::int32_t id, const std::string& data);

// Registers this broker: ephemeral /brokers/ids/<id>. A node left by this
// broker's previous session (not yet expired) is waited out, up to `patience`.
asio::awaitable<std::error_code> register_broker(zk::session& zk, const broker_registration& me,
                                                 std::chrono::milliseconds patience);

// The live brokers, sorted by id.
asio::awaitable<std::expected<std::vector<broker_registration>, std::error_code>> live_brokers(zk::session& zk);

class controller_election {
 public:
  using elected_fn = std::function<void(std::int64_t epoch)>;

  controller_election(zk::session& zk, std::int32_t broker_id, elected_fn on_elected);
  ~controller_election() { *alive_ = false; }
  controller_election(const controller_election&) = delete;             // coroutines hold `this`
  controller_election& operator=(const controller_election&) = delete;  // coroutines hold `this`
  controller_election(controller_election&&) = delete;                  // coroutines hold `this`
  controller_election& operator=(controller_election&&) = delete;       // coroutines hold `this`

  // Starts campaigning: tries now, and again whenever /controller goes.
  void start();

  [[nodiscard]] bool is_controller() const { return epoch_.has_value(); }
  [[nodiscard]] std::optional<std::int64_t> epoch() const { return epoch_; }
  // The controller's id as last seen (-1: none).
  [[nodiscard]] std::int32_t controller_id() const { return controller_id_; }

  // Atomic metadata write, fenced by this controller's epoch.
  asio::awaitable<std::error_code> fenced_multi(std::vector<zk::op> ops);

 private:
  asio::awaitable<void> campaign();

  zk::session& zk_;
  std::int32_t id_;
  elected_fn on_elected_;
  std::optional<std::int64_t> epoch_;
  std::int32_t epoch_version_ = -1;  // znode version of /controller_epoch we wrote
  std::int32_t controller_id_ = -1;
  bool campaigning_ = false;
  std::shared_ptr<zk::subscription> watch_;
  // A campaign resumed after this object is gone touches nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace runnel::cluster
