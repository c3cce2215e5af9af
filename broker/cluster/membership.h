#pragma once
// membership: this broker's place in the cluster. Connects to ZooKeeper
// (creating the chroot when missing), registers /brokers/ids/<id>, campaigns
// for controller, follows the live broker list and every topic's
// assignment and partition state (topic_watch). When the session expires it
// starts over: new session, registration, campaign, watches.
//
// As controller it elects partition leaders (plan_elections) whenever
// brokers or partition states change, writing through fenced_multi. Any
// broker writes topic admin changes; a partition's leader writes its ISR;
// every partition state write is a compare-and-set on the znode version.
//
// Lives on one executor (shard 0); not thread-safe.

#include <chrono>
#include <functional>
#include <expected>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "broker/cluster/controller.h"
#include "broker/cluster/errc.h"
#include "broker/cluster/topic_state.h"
#include "broker/cluster/topic_watch.h"
#include "broker/meta/errc.h"

namespace runnel::cluster {

class membership {
 public:
  struct view {
    std::vector<broker_registration> brokers;  // live, by id
    std::int32_t controller = -1;
  };

  struct hooks {
    // Every change of the topics view (on the membership's executor).
    std::function<void(const topics_view&)> topics_changed;
    // Whether unclean leader election is allowed for a topic.
    std::function<bool(const topic_view&)> unclean_allowed;
    // On every join, before registering: the cluster's id (/cluster/id,
    // made by the first broker that joined). An error refuses the join
    // with it (errc::wrong_cluster: a data directory of another cluster).
    std::function<asio::awaitable<std::optional<error>>(std::string cluster_id)> check_cluster_id;
  };

  // Errors name what failed: errc::zookeeper_unavailable, broker_id_in_use,
  // wrong_cluster (from check_cluster_id), zookeeper_failed, stopping.
  static asio::awaitable<std::expected<std::unique_ptr<membership>, error>> start(
      asio::any_io_executor ex, std::string connect, std::chrono::milliseconds session_timeout, broker_registration me,
      hooks h);

  ~membership();
  membership(const membership&) = delete;             // owns a session
  membership& operator=(const membership&) = delete;  // owns a session
  membership(membership&&) = delete;                  // callbacks hold `this`
  membership& operator=(membership&&) = delete;       // callbacks hold `this`

  [[nodiscard]] view snapshot() const;
  [[nodiscard]] const topics_view& topics() const;
  // Whether topics() is a complete view yet (false until the first one).
  [[nodiscard]] bool topics_complete() const { return topics_complete_; }
  // With topics(): every name under /topics, also topics whose node did
  // not decode (a topic missing here was deleted).
  [[nodiscard]] const std::set<std::string>& topic_names() const { return published_names_; }

  // Topic admin, from any broker; the caller validated names and configs.
  // Replicas are assigned over the live brokers; each partition starts led
  // by its first replica with every replica in the ISR (all logs empty).
  asio::awaitable<std::expected<void, meta::error>> create_topic(const std::string& name, std::int32_t partitions,
                                                                 std::int32_t replication_factor,
                                                                 const meta::config_overrides& config);
  asio::awaitable<std::expected<void, meta::error>> delete_topic(const std::string& name);
  // Read-modify-write of /topics/<t> by compare-and-set; `edit` changes the
  // overrides or refuses them.
  asio::awaitable<std::expected<void, meta::error>> alter_topic(
      const std::string& name, const std::function<std::expected<void, meta::error>(meta::config_overrides&)>& edit);

  // A leader's ISR change: compare-and-set on the state version it knows.
  // Fails (bad_version) when the state moved on (new leader or epoch).
  asio::awaitable<std::error_code> write_state(const state_change& c);

  // Reserves `count` idempotent producer ids for this broker: the first of
  // them, from /producer_ids (the next free id, as decimal text) by
  // compare-and-set, so no two brokers ever get the same block.
  asio::awaitable<std::expected<std::int64_t, std::error_code>> reserve_producer_ids(std::int64_t count);

  // Controlled shutdown: moves leadership of this broker's partitions to
  // other live ISR members. Returns how many moved.
  asio::awaitable<std::size_t> hand_over_leadership();

 private:
  membership(asio::any_io_executor ex, std::string connect, std::chrono::milliseconds timeout, broker_registration me,
             hooks h);
  asio::awaitable<std::optional<error>> join();  // nullopt on success, else why not
  asio::awaitable<void> rejoin();       // after an expiry: join() until it works
  // co_spawn of a member coroutine that starts only if this still exists.
  void spawn_if_alive(asio::awaitable<void> (membership::*fn)());
  asio::awaitable<void> refresh_brokers();
  // Controller: elect leaders where needed (serialized; re-runs when asked again meanwhile).
  void reconcile();
  asio::awaitable<void> reconcile_loop();

  asio::any_io_executor ex_;
  std::string connect_;
  std::chrono::milliseconds timeout_;
  broker_registration me_;
  std::unique_ptr<zk::session> session_;
  hooks hooks_;
  std::unique_ptr<controller_election> election_;
  std::unique_ptr<topic_watch> topics_;
  topics_view published_;  // the last complete view (topics_ may be filling after an expiry)
  bool topics_complete_ = false;
  std::set<std::string> published_names_;
  bool joining_ = false;
  std::shared_ptr<zk::subscription> brokers_watch_;
  bool reconciling_ = false;
  bool reconcile_again_ = false;
  std::vector<broker_registration> live_;
  // Sessions (and what uses them) replaced after an expiry: kept until the
  // membership goes, so operations still pending on them never dangle.
  std::vector<std::unique_ptr<controller_election>> retired_elections_;
  std::vector<std::unique_ptr<topic_watch>> retired_topic_watches_;
  std::vector<std::unique_ptr<zk::session>> retired_sessions_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards late callbacks
};

}  // namespace runnel::cluster
